package pipeline_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/concord-sync/concord/config"
	"github.com/concord-sync/concord/dlq"
	"github.com/concord-sync/concord/internal/hostile"
	"github.com/concord-sync/concord/internal/testenv"
	"github.com/concord-sync/concord/pipeline"
	"github.com/concord-sync/concord/pipeline/state"
)

// blockedCases are corpus cases the pipeline cannot pass yet, and why: they are
// reported as skipped subtests, not run.
var blockedCases = map[string]string{}

var hostileOnly = flag.String("hostile.case", "", "run only the hostile cases whose name matches this regular expression (with a leading !, those whose name does not)")

// hostileConfig is testConfig with billing's topic carrying ExtractNewRecordState
// rows, so that the corpus reaches both decoders.
func hostileConfig(t *testing.T, brokers []string) *config.Config {
	t.Helper()
	cfg, err := config.Parse(fmt.Appendf(nil, `
name: contacts
kafka: {brokers: [%q]}
systems:
  crm:
    topic: %s
    key: [id]
    fields: {email: email_address}
  billing:
    topic: %s
    key: [id]
    envelope: unwrapped
    fields: {id: cust_id, name: full_name}
    apply: {format: flat}
resolution:
  loop_guard: {max_applies: 1000000, window: 1m}
authority: {name: crm, email: crm, payment_status: billing, notes: shared, phone: shared}
`, brokers[0], crmTopic, billingTopic))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// hostileEnv is an env whose input topics take messages of up to 16 MiB, as a
// connector's topics must for the corpus's 5 MiB value to reach concord at all.
func hostileEnv(t *testing.T) *env {
	t.Helper()
	brokers := testenv.Kafka(t, 1)
	client := &kafka.Client{Addr: kafka.TCP(brokers...)}
	var topics []kafka.TopicConfig
	for _, topic := range []string{crmTopic, billingTopic} {
		topics = append(topics, kafka.TopicConfig{
			Topic: topic, NumPartitions: 1, ReplicationFactor: 1,
			ConfigEntries: []kafka.ConfigEntry{{ConfigName: "max.message.bytes", ConfigValue: strconv.Itoa(16 << 20)}},
		})
	}
	if _, err := client.CreateTopics(context.Background(), &kafka.CreateTopicsRequest{Topics: topics}); err != nil {
		t.Fatal(err)
	}
	rdb := testenv.Redis(t).Client(t)
	e := &env{
		t: t, brokers: brokers, cfg: hostileConfig(t, brokers), metrics: map[string]*pipeline.Metrics{},
		store: state.NewRedis(rdb, "contacts"), rdb: rdb, dlq: dlq.NewStore(rdb, "contacts"),
	}
	e.writer = &kafka.Writer{
		Addr: kafka.TCP(brokers...), Balancer: &kafka.Murmur2Balancer{}, BatchTimeout: time.Millisecond,
		RequiredAcks: kafka.RequireAll, BatchBytes: 16 << 20,
	}
	t.Cleanup(func() { _ = e.writer.Close() })
	return e
}

// control is the valid change produced after each hostile message on the same topic:
// each must be applied to the other system, so a stalled partition or a lost change
// shows.
func control(system string, n int) (record string, m kafka.Message) {
	record = fmt.Sprintf("ok-%s-%d", system, n)
	if system == "crm" {
		m = change("id", record, "c", int64(10_000+n), 1_700_000_000_000, map[string]any{"notes": "control " + record})
		return record, m
	}
	return record, kafka.Message{
		Key: fmt.Appendf(nil, `{"cust_id":%q}`, record),
		Value: fmt.Appendf(nil, `{"cust_id":%q,"notes":"control %s","__op":"c","__source_ts_ms":1700000000000,"__lsn":%d}`,
			record, record, 20_000+n),
	}
}

// TestHostileInput runs every message of testdata/hostile through a processor, each
// followed by a valid change on its topic, and checks that each bad message lands on
// the poison topic with the reason the corpus names (and nothing else does), that
// messages that are legitimately not changes are counted as their kind, that every
// valid change after them is applied (the partition does not stall and nothing valid
// is lost), and that the heap stays bounded.
func TestHostileInput(t *testing.T) {
	cases, err := hostile.Load("../testdata/hostile")
	if err != nil {
		t.Fatal(err)
	}
	if *hostileOnly != "" {
		pattern, exclude := strings.CutPrefix(*hostileOnly, "!")
		re := regexp.MustCompile(pattern)
		kept := cases[:0]
		for _, c := range cases {
			if re.MatchString(c.Name) != exclude {
				kept = append(kept, c)
			}
		}
		cases = kept
	}
	kept := cases[:0]
	for _, c := range cases {
		if why, blocked := blockedCases[c.Name]; blocked {
			t.Run(c.Name, func(t *testing.T) { t.Skip(why) })
			continue
		}
		kept = append(kept, c)
	}
	cases = kept
	e := hostileEnv(t)
	e.start("p1")

	// Produce each topic's messages in order: case, control, case, control, ...
	type sent struct {
		c      *hostile.Case // nil for a control
		record string        // the control's record, or an applied case's
	}
	byTopic := map[string][]sent{}
	msgs := map[string][]kafka.Message{}
	wantApplied := map[string]map[string]bool{"crm": {}, "billing": {}} // target -> records
	for i := range cases {
		c := &cases[i]
		topic := e.cfg.Systems[c.System].Topic
		if topic == "" {
			t.Fatalf("case %s: unknown system %q", c.Name, c.System)
		}
		target := otherSystem(c.System)
		byTopic[topic] = append(byTopic[topic], sent{c: c})
		msgs[topic] = append(msgs[topic], kafka.Message{Key: c.Key, Value: c.Value})
		if c.Outcome == hostile.Applied {
			wantApplied[target][c.Name] = true
		}
		record, m := control(c.System, i)
		byTopic[topic] = append(byTopic[topic], sent{record: record})
		msgs[topic] = append(msgs[topic], m)
		wantApplied[target][record] = true
	}
	for topic, ms := range msgs {
		e.produce(topic, ms...)
	}

	// Every control, and every case that is a valid change, is applied.
	for target, records := range wantApplied {
		if len(records) == 0 {
			continue
		}
		topic := e.cfg.Systems[target].Apply.Topic
		missing := func(got []kafka.Message) map[string]bool {
			left := map[string]bool{}
			for r := range records {
				left[r] = true
			}
			for _, m := range got {
				for r := range left {
					if q := []byte(strconv.Quote(r)); bytes.Contains(m.Key, q) || bytes.Contains(m.Value, q) {
						delete(left, r)
					}
				}
			}
			return left
		}
		got := readUntil(t, e.brokers, topic, func(got []kafka.Message) bool { return len(missing(got)) == 0 })
		if left := missing(got); len(left) > 0 {
			t.Errorf("%s: not applied: %v", topic, left)
		}
	}

	// Each poison message is the case at its topic and offset, with the expected reason.
	var wantPoison int
	for _, c := range cases {
		if c.Outcome == hostile.Poison {
			wantPoison++
		}
	}
	poisoned := map[*hostile.Case]kafka.Message{}
	if wantPoison > 0 {
		for _, p := range readUntil(t, e.brokers, "contacts.poison", func(got []kafka.Message) bool { return len(got) >= wantPoison }) {
			offset, _ := strconv.Atoi(header(p, pipeline.HeaderOffset))
			sentHere := byTopic[header(p, pipeline.HeaderTopic)]
			if offset >= len(sentHere) || sentHere[offset].c == nil {
				t.Errorf("poison message of %s@%d is not a hostile case (reason %q)", header(p, pipeline.HeaderTopic), offset, header(p, pipeline.HeaderReason))
				continue
			}
			poisoned[sentHere[offset].c] = p
		}
	}
	counts := map[[2]string]float64{}
	for i := range cases {
		c := &cases[i]
		p, isPoison := poisoned[c]
		switch {
		case c.Outcome == hostile.Poison && !isPoison:
			t.Errorf("%s: not poison (want a reason containing %q)", c.Name, c.Reason)
		case c.Outcome == hostile.Poison:
			reason := header(p, pipeline.HeaderReason)
			if !strings.Contains(reason, c.Reason) {
				t.Errorf("%s: poison reason %q does not say %q", c.Name, reason, c.Reason)
			}
			if header(p, pipeline.HeaderOmitted) == "value" {
				// Too large to copy: reported without its value, which stays on the input topic.
				if n, _ := strconv.Atoi(header(p, pipeline.HeaderValueBytes)); n != len(c.Value) || len(p.Value) != 0 || !bytes.Equal(p.Key, c.Key) {
					t.Errorf("%s: poison without its value says %d bytes (want %d), key %.60q", c.Name, n, len(c.Value), p.Key)
				}
				break
			}
			if header(p, pipeline.HeaderSystem) != c.System || !bytes.Equal(p.Key, c.Key) || !bytes.Equal(p.Value, c.Value) {
				t.Errorf("%s: the poison message is not the message as it came (system %q, key %.60q, value %.60q)",
					c.Name, header(p, pipeline.HeaderSystem), p.Key, p.Value)
			}
		case isPoison:
			t.Errorf("%s: poison (%q), want %s", c.Name, header(p, pipeline.HeaderReason), c.Outcome)
		case c.Outcome != hostile.Applied:
			counts[[2]string{c.System, c.Outcome}]++
		}
	}
	metrics := e.metrics["p1"]
	testenv.Eventually(t, fmt.Sprintf("%d poison messages counted", wantPoison), func() bool {
		return sumCounter(metrics.Poison) == float64(wantPoison)
	})
	for k, n := range counts {
		testenv.Eventually(t, fmt.Sprintf("%v %s messages of %s counted", n, k[1], k[0]), func() bool {
			return sumCounter(metrics.Events, "system", k[0], "op", k[1]) == n
		})
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if ms.HeapInuse > 512<<20 {
		t.Errorf("heap in use after the corpus: %d MiB", ms.HeapInuse>>20)
	}
}

func otherSystem(s string) string {
	if s == "crm" {
		return "billing"
	}
	return "crm"
}

// readUntil reads a topic from the start until done holds or testenv.Deadline passes.
func readUntil(t *testing.T, brokers []string, topic string, done func([]kafka.Message) bool) []kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: brokers, Topic: topic, MaxWait: 50 * time.Millisecond, StartOffset: kafka.FirstOffset, MaxBytes: 32 << 20,
	})
	defer func() { _ = r.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Deadline)
	defer cancel()
	var out []kafka.Message
	for !done(out) {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Errorf("reading %s after %d messages: %v", topic, len(out), err)
			return out
		}
		out = append(out, m)
	}
	return out
}
