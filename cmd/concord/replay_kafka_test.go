package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/concord-sync/concord/config"
	"github.com/concord-sync/concord/dlq"
	"github.com/concord-sync/concord/internal/testenv"
	"github.com/concord-sync/concord/pipeline"
	"github.com/concord-sync/concord/pipeline/replay"
)

// TestReplayFromKafkaDiff: the pipeline decides three conflicts by last-write-wins
// (notes twice, phone once); replayed from the topics under an authority map that
// gives notes to crm, --diff names exactly the two notes conflicts as flipped, and
// under the running configuration it names none.
func TestReplayFromKafkaDiff(t *testing.T) {
	brokers := testenv.Kafka(t, 1, "crm.public.contacts", "billing.public.customers")
	rs := testenv.Redis(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "concord.yaml")
	writeConfig := func(path, notes string) {
		t.Helper()
		if err := os.WriteFile(path, fmt.Appendf(nil, `name: contacts
kafka: {brokers: [%q]}
redis: {addr: %q, db: %d}
systems:
  crm: {topic: crm.public.contacts, key: [id]}
  billing: {topic: billing.public.customers, key: [id], fields: {id: cust_id}}
authority: {notes: %s, phone: shared}
`, brokers[0], rs.Addr, rs.DB, notes), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig(cfgPath, "shared")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfgPath, cfg, "", zap.NewNop()) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { _ = stop() })

	w := &kafka.Writer{Addr: kafka.TCP(brokers...), BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer func() { _ = w.Close() }()
	const t0 = 1_700_000_000_000
	br := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: "contacts.apply.billing", GroupID: "t-billing", MaxWait: 50 * time.Millisecond})
	defer func() { _ = br.Close() }()
	bctx, bcancel := context.WithTimeout(context.Background(), testenv.Deadline)
	defer bcancel()
	event := func(topic, keyCol string, id int, field, value string, tsMs int64) kafka.Message {
		return kafka.Message{
			Topic: topic, Key: fmt.Appendf(nil, `{%q:%d}`, keyCol, id),
			Value: fmt.Appendf(nil, `{"before":null,"after":{%q:%d,%q:%q},"source":{"connector":"postgresql","lsn":%d,"ts_ms":%d},"op":"u","ts_ms":%d}`,
				keyCol, id, field, value, tsMs, tsMs, tsMs),
		}
	}
	for i, c := range []struct {
		id    int
		field string
		gapMs int64
	}{{1, "notes", 1000}, {2, "notes", 2000}, {3, "phone", 1500}, {4, "notes", 100}} {
		ts := t0 + int64(i)*10_000
		// crm's change is decided before billing's is even sent, so the pipeline's
		// order is the replay's (message time), whatever its readers deliver first.
		if err := w.WriteMessages(context.Background(), event("crm.public.contacts", "id", c.id, c.field, fmt.Sprint("crm ", c.id), ts)); err != nil {
			t.Fatal(err)
		}
		for {
			m, err := br.FetchMessage(bctx)
			if err != nil {
				t.Fatalf("no apply of crm's change to record %d: %v", c.id, err)
			}
			if strings.Contains(string(m.Value), fmt.Sprint("crm ", c.id)) {
				break
			}
		}
		if err := w.WriteMessages(context.Background(), event("billing.public.customers", "cust_id", c.id, c.field, fmt.Sprint("billing ", c.id), ts+c.gapMs)); err != nil {
			t.Fatal(err)
		}
	}
	// The three conflicts, decided, are in the audit topic.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: "contacts.audit", GroupID: "t", MaxWait: 50 * time.Millisecond})
	defer func() { _ = r.Close() }()
	rctx, rcancel := context.WithTimeout(context.Background(), testenv.Deadline)
	defer rcancel()
	for conflicts := 0; conflicts < 3; {
		m, err := r.FetchMessage(rctx)
		if err != nil {
			t.Fatalf("audit topic after %d conflicts: %v", conflicts, err)
		}
		if strings.Contains(string(m.Value), `"kind":"conflict"`) {
			conflicts++
		}
	}
	// Record 4's edits are within the tolerance: a reviewer takes billing's version,
	// and the pipeline applies the decision from the review topic.
	store := dlq.NewStore(rs.Client(t), "contacts")
	var entry *dlq.Entry
	testenv.Eventually(t, "record 4's DLQ entry", func() bool {
		entries, err := store.List(context.Background(), dlq.Filter{Status: dlq.StatusPending})
		if err == nil && len(entries) == 1 {
			entry = entries[0]
		}
		return entry != nil
	})
	pw, err := pipeline.NewProducer(brokers, 1<<20, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	svc := dlq.NewService(store, []string{"notes", "phone"}, func(ctx context.Context) error { return pipeline.DrainOutbox(ctx, cfg, store, pw) })
	if _, err := svc.Resolve(context.Background(), dlq.Resolution{EntryID: entry.ID, Rev: entry.Rev, Pick: "billing", Reviewer: "ann"}); err != nil {
		t.Fatal(err)
	}
	ar := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: "contacts.apply.crm", GroupID: "t", MaxWait: 50 * time.Millisecond})
	defer func() { _ = ar.Close() }()
	for {
		m, err := ar.FetchMessage(rctx)
		if err != nil {
			t.Fatalf("no review apply: %v", err)
		}
		if strings.Contains(string(m.Value), "billing 4") {
			break
		}
	}
	time.Sleep(500 * time.Millisecond) // the applies of the last batch
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	diff := func(path string, extra ...string) replay.Diff {
		t.Helper()
		var out, errOut bytes.Buffer
		cmd := newRootCommand()
		cmd.SetOut(&out)
		cmd.SetErr(&errOut)
		cmd.SetArgs(append([]string{"replay", "--config", path, "--from-kafka", "--diff", "--json"}, extra...))
		if err := cmd.Execute(); err != nil {
			t.Fatalf("replay --diff: %v\n%s", err, errOut.String())
		}
		var d replay.Diff
		if err := json.Unmarshal(out.Bytes(), &d); err != nil {
			t.Fatalf("--diff --json: %v\n%s", err, out.String())
		}
		if !strings.Contains(errOut.String(), "replay: 9/9 events (100%)") {
			t.Errorf("progress = %q", errOut.String())
		}
		return d
	}
	hwm := func() int64 {
		t.Helper()
		client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
		res, err := client.ListOffsets(context.Background(), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
			"contacts.apply.crm": {kafka.LastOffsetOf(0)}, "contacts.apply.billing": {kafka.LastOffsetOf(0)},
		}})
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, pos := range res.Topics {
			n += pos[0].LastOffset
		}
		return n
	}
	before := hwm()
	if d := diff(cfgPath); len(d.ConflictsFlipped)+len(d.ConflictsNowDecided)+len(d.ReviewsNew) != 0 || len(d.AppliesDiffer) != 0 {
		t.Errorf("replayed under the running configuration, something differs: %+v", d)
	}
	changed := filepath.Join(dir, "changed.yaml")
	writeConfig(changed, "crm")
	d := diff(changed)
	want := []replay.Flip{{Conflict: "1 notes", Then: "billing", Now: "crm"}, {Conflict: "2 notes", Then: "billing", Now: "crm"}}
	if fmt.Sprint(d.ConflictsFlipped) != fmt.Sprint(want) {
		t.Errorf("conflicts flipped = %+v, want exactly %+v", d.ConflictsFlipped, want)
	}
	if w := []replay.Flip{{Conflict: "4 notes", Then: "review", Now: "crm"}}; fmt.Sprint(d.ConflictsNowDecided) != fmt.Sprint(w) {
		t.Errorf("conflicts now decided = %+v, want %+v", d.ConflictsNowDecided, w)
	}
	// With the states in Redis (its own prefix), the same diff.
	if inRedis := diff(changed, "--state", "redis", "--state-prefix", "contacts-replay-test"); fmt.Sprint(inRedis) != fmt.Sprint(d) {
		t.Errorf("--state redis diff = %+v\nmemory = %+v", inRedis, d)
	}
	if keys, err := rs.Client(t).Keys(context.Background(), "{contacts-replay-test:p*").Result(); err != nil || len(keys) < 4 {
		t.Errorf("the replay's states in Redis: %v, %v", keys, err)
	}
	found := false
	for _, a := range d.AppliesDiffer {
		if a.Topic == "contacts.apply.crm" && a.Column == "notes" && a.Records == 3 {
			found = true
		}
	}
	if !found {
		t.Errorf("applies differ = %+v, want crm's notes of 3 records (1, 2, 4)", d.AppliesDiffer)
	}
	if after := hwm(); after != before {
		t.Errorf("replays without --apply produced %d messages to the apply topics", after-before)
	}
	var out bytes.Buffer
	cmd := newRootCommand()
	cmd.SetOut(&out)
	cmd.SetErr(&bytes.Buffer{})
	cmd.SetArgs([]string{"replay", "--config", changed, "--from-kafka", "--apply"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	var produced int64
	if _, err := fmt.Sscanf(out.String(), "produced %d apply events", &produced); err != nil || produced == 0 || hwm() != before+produced {
		t.Errorf("--apply: %q, apply topics grew by %d", out.String(), hwm()-before)
	}
}
