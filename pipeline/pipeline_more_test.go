package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap/zaptest"

	"github.com/concord-sync/concord/dlq"
	"github.com/concord-sync/concord/internal/testenv"
	"github.com/concord-sync/concord/pipeline"
	"github.com/concord-sync/concord/pipeline/state"
	"github.com/concord-sync/concord/resolver"
)

func TestRefusesTopicsNotCopartitioned(t *testing.T) {
	brokers := testenv.Kafka(t, 2, crmTopic)
	cfg := testConfig(t, brokers)
	// billing's topic gets 3 partitions.
	client := &kafka.Client{Addr: kafka.TCP(brokers...)}
	if _, err := client.CreateTopics(context.Background(), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: billingTopic, NumPartitions: 3, ReplicationFactor: 1}}}); err != nil {
		t.Fatal(err)
	}
	res, _ := resolver.New(cfg)
	p, err := pipeline.New(pipeline.Options{
		Config: cfg, Rules: pipeline.StaticRules{R: res}, Store: state.NewMemory(), DLQ: dlq.NewStore(testenv.Redis(t).Client(t), "contacts"),
		Logger: zaptest.NewLogger(t), Metrics: pipeline.NewMetrics(prometheus.NewRegistry()),
	})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Run(context.Background())
	if !errors.Is(err, pipeline.ErrNotCopartitioned) {
		t.Fatalf("Run = %v, want ErrNotCopartitioned", err)
	}
	for _, want := range []string{"billing.public.customers has 3", "crm.public.contacts has 2", "same partition count"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestPoisonGoesToPoisonTopicAndPartitionKeepsFlowing(t *testing.T) {
	e := newEnv(t, 1)
	e.start("p1")
	e.produce(crmTopic,
		kafka.Message{Key: []byte(`{"id":"1"}`), Value: []byte(`{"op":"u","after":`)},
		change("id", "2", "c", 10, 1_700_000_000_000, map[string]any{"notes": "after the poison"}),
	)
	poison := readApplies(t, e.brokers, "contacts.poison", 1)[0]
	if !bytes.Equal(poison.Value, []byte(`{"op":"u","after":`)) {
		t.Errorf("poison value = %s", poison.Value)
	}
	if header(poison, "concord.topic") != crmTopic || header(poison, "concord.partition") != "0" ||
		header(poison, "concord.offset") != "0" || !strings.Contains(header(poison, "concord.reason"), "not JSON") {
		t.Errorf("poison headers = %v", poison.Headers)
	}
	apply := readApplies(t, e.brokers, "contacts.apply.billing", 1)[0]
	if !strings.Contains(string(apply.Value), "after the poison") {
		t.Errorf("the message after the poison was not applied: %s", apply.Value)
	}
}

func TestFencedProcessorCannotWriteState(t *testing.T) {
	e := newEnv(t, 1)
	puts := &putLog{Store: e.store}
	p, _ := e.startWith("p1", puts)
	testenv.Eventually(t, "p1 ready", func() bool { return p.Ready() && len(p.Partitions()) == 1 })
	e.produce(crmTopic, change("id", "1", "c", 10, 1_700_000_000_000, map[string]any{"notes": "first"}))
	readApplies(t, e.brokers, "contacts.apply.billing", 1)
	// A newer generation claims the partition, as after a rebalance the old owner missed.
	if _, err := e.store.Claim(context.Background(), state.Fence{Partition: 0, Generation: 1 << 30}, ""); err != nil {
		t.Fatal(err)
	}
	puts.fenced.Store(true)
	e.produce(crmTopic, change("id", "1", "u", 11, 1_700_000_001_000, map[string]any{"notes": "second"}))
	testenv.Eventually(t, "the fenced write to be refused", func() bool { return testutil.ToFloat64(e.metrics["p1"].Fenced) == 1 })
	// The member rejoins at once and, since the group's coordinator takes its commits,
	// takes the partition over in its next generation (worker.claim), which may write.
	// The generation that was fenced must not have written anything.
	if n := puts.landed.Load(); n != 0 {
		t.Errorf("%d state writes of generation 1 landed after the partition was claimed by a newer one", n)
	}
}

// putLog counts the state writes of generation 1 that land once fenced is set.
type putLog struct {
	state.Store
	fenced atomic.Bool
	landed atomic.Int32
}

func (s *putLog) Put(ctx context.Context, f state.Fence, writes []state.Write, box *state.Outbox) error {
	fenced := s.fenced.Load()
	err := s.Store.Put(ctx, f, writes, box)
	if fenced && err == nil && f.Generation == 1 {
		s.landed.Add(1)
	}
	return err
}

// TestRestartLosesNothing stops the processor mid-stream and starts another: every
// change reaches billing, and an event id is never produced twice with different content.
func TestRestartLosesNothing(t *testing.T) {
	e := newEnv(t, 2)
	const records, rounds = 20, 10
	_, stop := e.start("first")
	produced := 0
	for round := range rounds {
		var msgs []kafka.Message
		for r := range records {
			lsn := int64(round*records + r + 1)
			msgs = append(msgs, change("id", fmt.Sprint(r), op(round), lsn, 1_700_000_000_000+lsn, map[string]any{"notes": fmt.Sprintf("v%d", round)}))
		}
		e.produce(crmTopic, msgs...)
		produced += len(msgs)
		if round == rounds/2 {
			stop()
			e.start("second")
		}
	}
	applies := readAll(t, e.brokers, "contacts.apply.billing", func(ms []kafka.Message) bool {
		last := map[string]string{}
		for _, m := range ms {
			last[string(m.Key)] = string(m.Value)
		}
		if len(last) < records {
			return false
		}
		for _, v := range last {
			if !strings.Contains(v, fmt.Sprintf(`"v%d"`, rounds-1)) {
				return false
			}
		}
		return true
	})
	byID := map[string][]byte{}
	for _, m := range applies {
		id := header(m, "concord.event_id")
		if prev, ok := byID[id]; ok && !bytes.Equal(stripTs(prev), stripTs(m.Value)) {
			t.Errorf("event id %s produced twice with different content:\n%s\n%s", id, prev, m.Value)
		}
		byID[id] = m.Value
	}
	if len(byID) != produced {
		t.Errorf("%d distinct applies for %d changes", len(byID), produced)
	}
}

func op(round int) string {
	if round == 0 {
		return "c"
	}
	return "u"
}

// stripTs removes nothing for flat applies (they carry no processing time).
func stripTs(b []byte) []byte { return b }

// readAll reads a topic until done says the messages so far are complete.
func readAll(t *testing.T, brokers []string, topic string, done func([]kafka.Message) bool) []kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, GroupID: fmt.Sprintf("test-%s-%d", topic, time.Now().UnixNano()), Topic: topic, MaxWait: 50 * time.Millisecond, StartOffset: kafka.FirstOffset})
	defer func() { _ = r.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []kafka.Message
	for !done(out) {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("reading %s after %d messages: %v", topic, len(out), err)
		}
		out = append(out, m)
	}
	return out
}

// TestTwoProcessorsSplitAndTakeOver: two processors in one group split the partitions;
// when one stops the other takes its partitions over and nothing is lost.
func TestTwoProcessorsSplitAndTakeOver(t *testing.T) {
	e := newEnv(t, 4)
	p1, _ := e.start("p1")
	p2, stop2 := e.start("p2")
	testenv.Eventually(t, "the partitions to be split", func() bool {
		return len(p1.Partitions()) == 2 && len(p2.Partitions()) == 2
	})
	var msgs []kafka.Message
	for r := range 40 {
		msgs = append(msgs, change("id", fmt.Sprint(r), "c", int64(r+1), 1_700_000_000_000, map[string]any{"notes": "before"}))
	}
	e.produce(crmTopic, msgs...)
	readApplies(t, e.brokers, "contacts.apply.billing", 40)
	stop2()
	testenv.Eventually(t, "p1 to take over every partition", func() bool { return len(p1.Partitions()) == 4 })
	msgs = msgs[:0]
	for r := range 40 {
		msgs = append(msgs, change("id", fmt.Sprint(r), "u", int64(r+100), 1_700_000_001_000, map[string]any{"notes": "after"}))
	}
	e.produce(crmTopic, msgs...)
	all := readApplies(t, e.brokers, "contacts.apply.billing", 80)
	after := 0
	for _, m := range all {
		if strings.Contains(string(m.Value), `"after"`) {
			after++
		}
	}
	if after != 40 {
		t.Errorf("%d of 40 changes made after the takeover were applied", after)
	}
}

// TestConcurrentEdits: both systems change a shared field before seeing each other's
// change. Far apart in time, the later one wins and is applied to both; within the
// clock-skew tolerance, the field goes to the DLQ.
func TestConcurrentEdits(t *testing.T) {
	e := newEnv(t, 1)
	e.start("p1")
	const t0 = 1_700_000_000_000
	e.produce(crmTopic,
		change("id", "lww", "c", 1, t0, map[string]any{"notes": "crm"}),
		change("id", "dlq", "c", 2, t0, map[string]any{"notes": "crm"}),
	)
	readApplies(t, e.brokers, "contacts.apply.billing", 2)
	// billing writes before our applies land (no echo in between): concurrent.
	e.produce(billingTopic,
		change("cust_id", "lww", "c", 1, t0+5000, map[string]any{"notes": "billing", "updated_at": t0 + 5000}),
		change("cust_id", "dlq", "c", 2, t0+100, map[string]any{"notes": "billing", "updated_at": t0 + 100}),
	)
	toCrm := readApplies(t, e.brokers, "contacts.apply.crm", 1)
	if !strings.Contains(string(toCrm[0].Value), `"notes":"billing"`) || header(toCrm[0], "concord.rule") != "lww" {
		t.Errorf("the later write did not win on crm: %s %v", toCrm[0].Value, toCrm[0].Headers)
	}
	testenv.Eventually(t, "a DLQ entry for record dlq", func() bool {
		entries, err := e.dlq.List(context.Background(), dlq.Filter{Status: dlq.StatusPending})
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range entries {
			if en.Record == "dlq" && en.Reason == "clock_skew" && len(en.Versions) == 2 {
				return true
			}
		}
		return false
	})
	back := readApplies(t, e.brokers, "contacts.apply.billing", 3)
	if !strings.Contains(string(back[2].Value), `"notes":"billing"`) || string(payload(t, back[2].Key)) != `{"cust_id":"lww"}` {
		t.Errorf("the winner was not re-applied to its own system over our in-flight apply: %s %s", back[2].Key, back[2].Value)
	}
}

// TestPairWindowSurvivesRestart: a change held in the pairing window lives in the
// state store; a processor that takes over after a stop closes the window and applies it.
func TestPairWindowSurvivesRestart(t *testing.T) {
	e := newEnv(t, 1)
	e.cfg.Resolution.PairWindow.Duration = 2 * time.Second
	_, stop := e.start("first")
	e.produce(crmTopic, change("id", "held", "c", 1, 1_700_000_000_000, map[string]any{"notes": "created"}))
	readApplies(t, e.brokers, "contacts.apply.billing", 1) // a create is never held
	e.produce(crmTopic, change("id", "held", "u", 2, 1_700_000_001_000, map[string]any{"notes": "held"}))
	testenv.Eventually(t, "the change to be held in the state store", func() bool {
		st, err := e.store.Get(context.Background(), 0, []string{"held"})
		return err == nil && st[0] != nil && len(st[0].Pending) == 1
	})
	stop()
	e.start("second")
	apply := readApplies(t, e.brokers, "contacts.apply.billing", 2)[1]
	if !strings.Contains(string(apply.Value), `"notes":"held"`) {
		t.Errorf("the held change was not applied after the restart: %s", apply.Value)
	}
}

// TestParityMetrics: concord_records counts what each system holds, and a record one
// system lacks past the grace period is parity drift until it arrives.
func TestParityMetrics(t *testing.T) {
	e := newEnv(t, 2)
	e.cfg.Operations.ParityGrace.Duration = time.Millisecond
	p, _ := e.start("p1")
	parity := p.ParityCollector()
	value := func(metric, system string) float64 {
		t.Helper()
		return testutil.ToFloat64(filtered{parity, metric, system})
	}
	e.produceTo(crmTopic, 1, change("id", "7", "c", 1, 1_700_000_000_000, map[string]any{"notes": "x"}))
	readApplies(t, e.brokers, "contacts.apply.billing", 1)
	testenv.Eventually(t, "billing's drift", func() bool { return value("concord_parity_drift_records", "billing") == 1 })
	if got := value("concord_records", "crm"); got != 1 {
		t.Errorf("concord_records{crm} = %v, want 1", got)
	}
	// The sink writes it: billing's echo ends the drift.
	e.produceTo(billingTopic, 1, change("cust_id", "7", "c", 1, 1_700_000_000_500, map[string]any{"notes": "x", "updated_at": 1_700_000_000_500}))
	testenv.Eventually(t, "the drift to end", func() bool {
		return value("concord_parity_drift_records", "billing") == 0 && value("concord_records", "billing") == 1
	})
}

// filtered is one series of a collector, for testutil.ToFloat64.
type filtered struct {
	c              prometheus.Collector
	metric, system string
}

func (f filtered) Describe(ch chan<- *prometheus.Desc) { f.c.Describe(ch) }

func (f filtered) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric, 16)
	go func() { f.c.Collect(all); close(all) }()
	for m := range all {
		var d dto.Metric
		if err := m.Write(&d); err == nil && strings.Contains(m.Desc().String(), `"`+f.metric+`"`) && hasLabels(&d, []string{"system", f.system}) {
			ch <- m
		}
	}
}

// failOnce makes the first pipeline whose command fails with WRONGTYPE clear the key
// that caused it, so that the next attempt succeeds.
type failOnce struct {
	rdb   redis.UniversalClient
	key   string
	fails atomic.Int64
}

func (*failOnce) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (*failOnce) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (f *failOnce) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, c := range cmds {
			if c.Err() != nil && strings.Contains(c.Err().Error(), "WRONGTYPE") && f.fails.Add(1) == 1 {
				f.rdb.Del(ctx, f.key)
			}
		}
		return err
	}
}

// TestBatchNoteFailingWithStates: a batch's DLQ note goes ahead of its states' write
// in one round trip. When the note fails there and the states are written all the
// same, the note is made again on its own before the batch's applies are produced,
// and counted once.
func TestBatchNoteFailingWithStates(t *testing.T) {
	e := newEnv(t, 1)
	stats := "{contacts:dlq}:stats"
	if err := e.rdb.Set(context.Background(), stats, "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	hook := &failOnce{rdb: e.rdb, key: stats}
	e.rdb.AddHook(hook)
	e.start("p1")
	e.produce(crmTopic, change("id", "7", "c", 100, 1_700_000_000_000, map[string]any{"email_address": "a@x", "name": "Ann"}))
	readApplies(t, e.brokers, "contacts.apply.billing", 1)
	if n := hook.fails.Load(); n != 1 {
		t.Fatalf("the note failed %d times, want once", n)
	}
	if n, err := e.rdb.HGet(context.Background(), stats, "events").Int(); err != nil || n != 1 {
		t.Errorf("events noted: %d (%v), want 1", n, err)
	}
	if got, err := e.store.Get(context.Background(), 0, []string{"7"}); err != nil || got[0] == nil {
		t.Errorf("the record's state was not written: %v", err)
	}
}
