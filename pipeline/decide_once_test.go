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

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/concord-sync/concord/internal/testenv"
	"github.com/concord-sync/concord/pipeline/state"
)

// faultyStore makes the first Put that carries outgoing messages misbehave: written
// and then "crash" (the worker gives up the partition as if its process died right
// after the write, before producing), written and then report a failure (the reply
// was lost), or not written and report a failure.
type faultyStore struct {
	state.Store
	mode  string // "crash", "lost reply", "not written"
	skip  int    // batches with messages written before the fault
	fired atomic.Bool

	after   chan struct{} // "late": closed once the batch decided again is written
	lateErr chan error    // "late": what the server answered the late write
}

// Claim refuses once a "crash" has fired: the crashed process claims nothing again
// (its worker giving up the partition ends the generation at once, and the member
// would otherwise rejoin and finish the batch itself before the test stops it).
func (s *faultyStore) Claim(ctx context.Context, f state.Fence, supersede string) (state.Claimed, error) {
	if s.mode == "crash" && s.fired.Load() {
		return state.Claimed{}, errors.New("simulated: the process crashed")
	}
	return s.Store.Claim(ctx, f, supersede)
}

func (s *faultyStore) Put(ctx context.Context, f state.Fence, writes []state.Write, box *state.Outbox) error {
	if box == nil || len(box.Messages) == 0 || s.fired.Load() {
		err := s.Store.Put(ctx, f, writes, box)
		if s.after != nil {
			close(s.after) // let the late write run
			s.after = nil
		}
		return err
	}
	if s.skip > 0 {
		s.skip--
		return s.Store.Put(ctx, f, writes, box)
	}
	s.fired.Store(true)
	if s.mode == "late" {
		// The write is on its way when its reply is lost: the server runs it after
		// the worker has decided the batch again and written that.
		after := make(chan struct{})
		s.after = after
		go func() {
			<-after
			s.lateErr <- s.Store.Put(context.WithoutCancel(ctx), f, writes, box)
		}()
		return errors.New("simulated: i/o timeout")
	}
	if s.mode != "not written" {
		if err := s.Store.Put(ctx, f, writes, box); err != nil {
			return err
		}
	}
	if s.mode == "crash" {
		return fmt.Errorf("%w: simulated crash after the state write", state.ErrFenced)
	}
	return errors.New("simulated: connection reset by peer")
}

// TestCrashAfterTheStateWriteProducesTheOutbox is the in-batch crash of issue 10:
// the batch's decisions are written, nothing is produced. The next owner produces
// the outbox byte for byte, and never decides the batch's events again (they are
// behind the stored input positions): no second apply with another id.
func TestCrashAfterTheStateWriteProducesTheOutbox(t *testing.T) {
	e := newEnv(t, 1)
	faulty := &faultyStore{Store: e.store, mode: "crash"}
	_, stop1 := e.startWith("p1", faulty)
	e.produce(crmTopic, change("id", "1", "c", 10, 1_700_000_000_000, map[string]any{"notes": "one"}))
	testenv.Eventually(t, "the state write and the simulated crash", faulty.fired.Load)
	stop1()
	if n := highWatermark(t, e.brokers, "contacts.apply.billing"); n != 0 {
		t.Fatalf("%d applies produced before the crash; the test wants none", n)
	}
	box, err := e.store.Outbox(context.Background(), 0)
	if err != nil || len(box.Messages) != 1 {
		t.Fatalf("outbox after the crash = %+v, %v; want the batch's one apply", box, err)
	}

	e.start("p2")
	e.produce(crmTopic, change("id", "1", "u", 11, 1_700_000_001_000, map[string]any{"notes": "two"}))
	applies := readApplies(t, e.brokers, "contacts.apply.billing", 2)
	if !bytes.Equal(applies[0].Value, box.Messages[0].Value) || !bytes.Equal(applies[0].Key, box.Messages[0].Key) {
		t.Errorf("the apply produced after the crash is not the outbox's:\n got %s\nwant %s", applies[0].Value, box.Messages[0].Value)
	}
	if !strings.Contains(string(applies[1].Value), `"two"`) {
		t.Errorf("second apply = %s, want the update", applies[1].Value)
	}
	m := e.metrics["p2"]
	if got := testutil.ToFloat64(m.Redelivered); got != 1 {
		t.Errorf("concord_outbox_redelivered_total = %v, want 1", got)
	}
	if got := sumCounter(m.Duplicates); got != 0 {
		t.Errorf("the new owner read %v events of the decided batch again", got)
	}
	settle(t, e, "contacts.apply.billing", 2)
}

// TestUncertainStateWriteIsDecidedOnce: when the state write's reply is lost, the
// worker reads the outbox to find out whether it landed, and decides the batch again
// only when it did not. Either way one apply is produced.
func TestUncertainStateWriteIsDecidedOnce(t *testing.T) {
	for _, mode := range []string{"lost reply", "not written"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, 1)
			faulty := &faultyStore{Store: e.store, mode: mode}
			e.startWith("p1", faulty)
			e.produce(crmTopic, change("id", "1", "c", 10, 1_700_000_000_000, map[string]any{"notes": "one"}))
			applies := readApplies(t, e.brokers, "contacts.apply.billing", 1)
			if !faulty.fired.Load() || testutil.ToFloat64(e.metrics["p1"].Retries) < 1 {
				t.Fatal("the faulty write did not happen or was not retried")
			}
			box, err := e.store.Outbox(context.Background(), 0)
			if err != nil || box.Seq != 1 {
				t.Errorf("outbox seq = %d (%v), want 1: the batch written once", box.Seq, err)
			}
			if header(applies[0], "concord.event_id") == "" {
				t.Error("apply without an event id")
			}
			settle(t, e, "contacts.apply.billing", 1)
		})
	}
}

// TestLateWriteIsFenced: a state write whose reply was lost can still be run by the
// server later, after the worker found it missing and decided the batch again. The
// worker claims the partition again before looking, so that the late write is
// refused by the fence rather than overwriting the states and outbox of the batch
// decided again (whose messages are the ones produced).
func TestLateWriteIsFenced(t *testing.T) {
	e := newEnv(t, 1)
	faulty := &faultyStore{Store: e.store, mode: "late", lateErr: make(chan error, 1)}
	e.startWith("p1", faulty)
	e.produce(crmTopic, change("id", "1", "c", 10, 1_700_000_000_000, map[string]any{"notes": "one"}))
	applies := readApplies(t, e.brokers, "contacts.apply.billing", 1)
	select {
	case err := <-faulty.lateErr:
		if !errors.Is(err, state.ErrFenced) {
			t.Fatalf("the late write got %v, want it fenced", err)
		}
	case <-time.After(testenv.Deadline):
		t.Fatal("the late write never ran")
	}
	box, err := e.store.Outbox(context.Background(), 0)
	if err != nil || box.Seq != 1 || len(box.Messages) == 0 {
		t.Fatalf("outbox = seq %d, %d messages (%v); want the batch decided again", box.Seq, len(box.Messages), err)
	}
	if got := header(applies[0], "concord.event_id"); string(box.Messages[0].Value) != string(applies[0].Value) {
		t.Errorf("the stored outbox is not what was produced (apply %s)", got)
	}
	settle(t, e, "contacts.apply.billing", 1)
}

// TestFailedBatchDropsTheStateCache: the worker keeps the states it wrote between
// batches, and a batch's decisions change them in place. When the write of a batch
// fails and the batch is decided again, it must start from the states as stored, not
// from the cached ones holding the failed decisions (which would take the update for
// a duplicate of itself and apply nothing).
func TestFailedBatchDropsTheStateCache(t *testing.T) {
	e := newEnv(t, 1)
	faulty := &faultyStore{Store: e.store, mode: "not written", skip: 1}
	e.startWith("p1", faulty)
	e.produce(crmTopic, change("id", "1", "c", 10, 1_700_000_000_000, map[string]any{"notes": "one"}))
	readApplies(t, e.brokers, "contacts.apply.billing", 1)
	e.produce(crmTopic, change("id", "1", "u", 11, 1_700_000_001_000, map[string]any{"notes": "two"}))
	applies := readApplies(t, e.brokers, "contacts.apply.billing", 2)
	if !faulty.fired.Load() {
		t.Fatal("the faulty write did not happen")
	}
	if !strings.Contains(string(applies[1].Value), `"two"`) {
		t.Errorf("second apply = %s, want the update", applies[1].Value)
	}
}

// TestRecreatedGroupTakesThePartitionInOneClaim: the stored fence is of generation
// 300 (a consumer group deleted and created again numbers its generations from 1).
// The member proves its generation current by an offset commit and supersedes the
// fence in one claim, instead of a rebalance per generation up to 300.
func TestRecreatedGroupTakesThePartitionInOneClaim(t *testing.T) {
	e := newEnv(t, 1)
	_, stop1 := e.start("p1")
	e.produce(crmTopic, change("id", "1", "c", 10, 1_700_000_000_000, map[string]any{"notes": "one"}))
	readApplies(t, e.brokers, "contacts.apply.billing", 1)
	stop1()
	rs, ok := e.store.(*state.Redis)
	if !ok {
		t.Fatalf("the env's store is a %T", e.store)
	}
	fenceKey := rs.FenceKey(0)
	if err := e.rdb.Set(context.Background(), fenceKey, "300:5", 0).Err(); err != nil {
		t.Fatal(err)
	}
	e.start("p2")
	e.produce(crmTopic, change("id", "1", "u", 11, 1_700_000_001_000, map[string]any{"notes": "two"}))
	applies := readApplies(t, e.brokers, "contacts.apply.billing", 2)
	if !strings.Contains(string(applies[1].Value), `"two"`) {
		t.Errorf("second apply = %s", applies[1].Value)
	}
	fence, err := e.rdb.Get(context.Background(), fenceKey).Result()
	if err != nil {
		t.Fatal(err)
	}
	var gen, epoch int
	if _, err := fmt.Sscanf(fence, "%d:%d", &gen, &epoch); err != nil || gen >= 300 || epoch != 6 {
		t.Errorf("fence = %q, want the group's own generation and epoch 6 (one claim over 300:5)", fence)
	}
}

// highWatermark is the number of messages in partition 0 of topic.
func highWatermark(t *testing.T, brokers []string, topic string) int64 {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	res, err := client.ListOffsets(context.Background(), &kafka.ListOffsetsRequest{
		Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(0)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	pos := res.Topics[topic]
	if len(pos) == 0 || pos[0].Error != nil {
		return 0 // not created yet
	}
	return pos[0].LastOffset
}

// settle waits a little and checks that topic has exactly n messages: nothing was
// produced a second time behind the ones the test read.
func settle(t *testing.T, e *env, topic string, n int64) {
	t.Helper()
	time.Sleep(2 * time.Second)
	if got := highWatermark(t, e.brokers, topic); got != n {
		t.Errorf("%s has %d messages, want %d", topic, got, n)
	}
}

// TestMaxMessageBytesFromTheConfig: kafka.max_message_bytes bounds what is decoded;
// a larger message is poison with the reason, and the partition goes on.
func TestMaxMessageBytesFromTheConfig(t *testing.T) {
	e := newEnv(t, 1)
	e.cfg.Kafka.MaxMessageBytes = 2048
	e.start("p1")
	e.produce(crmTopic,
		change("id", "1", "c", 10, 1_700_000_000_000, map[string]any{"notes": strings.Repeat("x", 4096)}),
		change("id", "2", "c", 11, 1_700_000_000_000, map[string]any{"notes": "small"}),
	)
	poison := readApplies(t, e.brokers, "contacts.poison", 1)[0]
	if !strings.Contains(header(poison, "concord.reason"), "more than the 2048") {
		t.Errorf("poison reason = %q", header(poison, "concord.reason"))
	}
	if apply := readApplies(t, e.brokers, "contacts.apply.billing", 1)[0]; !strings.Contains(string(apply.Value), "small") {
		t.Errorf("apply = %s", apply.Value)
	}
}

// TestUnmappedFieldsAreBounded: a producer sending ever-new column names does not grow
// the metric series (and the log) without bound: past 100 fields per system they
// count as field _other.
func TestUnmappedFieldsAreBounded(t *testing.T) {
	e := newEnv(t, 1)
	e.start("p1")
	row := map[string]any{"notes": "n"}
	for i := range 150 {
		row[fmt.Sprintf("x%03d", i)] = i
	}
	e.produce(crmTopic, change("id", "1", "c", 10, 1_700_000_000_000, row))
	readApplies(t, e.brokers, "contacts.apply.billing", 1)
	m := e.metrics["p1"].Unmapped
	testenv.Eventually(t, "the unmapped fields counted", func() bool { return sumCounter(m) == 150 })
	if n := testutil.CollectAndCount(m); n != 101 {
		t.Errorf("%d unmapped-field series, want 100 and _other", n)
	}
	if got := testutil.ToFloat64(m.WithLabelValues("crm", "_other")); got != 50 {
		t.Errorf("_other = %v, want 50", got)
	}
}
