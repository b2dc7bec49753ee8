package bench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// passBroker is a broker holding n workload events in pass.crm and pass.billing.
func passBroker(t *testing.T, n int) (string, int) {
	t.Helper()
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "pass.crm", "pass.billing", passOut), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	broker := kc.ListenAddrs()[0]
	wl := newWorkload(1000, 4, 0.01, 1, func() int64 { return 1_700_000_000_000 })
	msgs := generate(wl, n)
	if err := produce(t.Context(), broker, msgs, map[string]string{crmTopic: "pass.crm", billingTopic: "pass.billing"}); err != nil {
		t.Fatal(err)
	}
	return broker, len(msgs)
}

// TestPassthrough checks that the passthrough copies every message to pass.out and
// commits the group past every input message.
func TestPassthrough(t *testing.T) {
	broker, n := passBroker(t, 3000)
	if _, err := passthrough(t.Context(), broker, 4, n, func(string, int64, int64, string) {}); err != nil {
		t.Fatal(err)
	}
	c := &kafka.Client{Addr: kafka.TCP(broker)}
	var copied int64
	for p := range 4 {
		last, err := c.ListOffsets(t.Context(), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{passOut: {kafka.LastOffsetOf(p)}}})
		if err != nil {
			t.Fatal(err)
		}
		copied += last.Topics[passOut][0].LastOffset
	}
	if copied != int64(n) {
		t.Errorf("pass.out holds %d messages, want %d", copied, n)
	}
	topics := map[string][]int{"pass.crm": {0, 1, 2, 3}, "pass.billing": {0, 1, 2, 3}}
	committed, err := c.OffsetFetch(t.Context(), &kafka.OffsetFetchRequest{GroupID: "bench-passthrough", Topics: topics})
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, parts := range committed.Topics {
		for _, p := range parts {
			sum += p.CommittedOffset
		}
	}
	if sum != int64(n) {
		t.Errorf("the group committed past %d messages, want %d", sum, n)
	}
}

// TestPassthroughAB measures the passthrough against the one it replaced (a
// reader per topic and partition, a blocking commit after every batch on the
// group's one coordinator connection), alternating on fresh brokers in one
// process, so both see the same machine. It runs with CONCORD_BENCH_AB=<events>.
func TestPassthroughAB(t *testing.T) {
	var events, rounds int
	if _, err := fmt.Sscan(os.Getenv("CONCORD_BENCH_AB"), &events); err != nil || events <= 0 {
		t.Skip("set CONCORD_BENCH_AB=<events> to run")
	}
	rounds = 5
	var before, after []float64
	for range rounds {
		broker, n := passBroker(t, events)
		secs, err := passthroughSharedCommit(t.Context(), broker, 4, n)
		if err != nil {
			t.Fatal(err)
		}
		before = append(before, float64(n)/secs)
		broker, n = passBroker(t, events)
		secs, err = passthrough(t.Context(), broker, 4, n, func(string, int64, int64, string) {})
		if err != nil {
			t.Fatal(err)
		}
		after = append(after, float64(n)/secs)
	}
	slices.Sort(before)
	slices.Sort(after)
	t.Logf("passthrough events/s over %d rounds of %d events: shared commit median %.0f (%v), per-partition with batched commits median %.0f (%v)",
		rounds, events, before[rounds/2], before, after[rounds/2], after)
}

// passthroughSharedCommit is the passthrough as it was before (kept for
// TestPassthroughAB): a goroutine per topic and partition, each committing after
// every batch, blocking, through the generation's one coordinator connection.
func passthroughSharedCommit(ctx context.Context, broker string, partitions, events int) (float64, error) {
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID: "bench-passthrough", Brokers: []string{broker}, Topics: []string{"pass.crm", "pass.billing"},
		StartOffset: kafka.FirstOffset, HeartbeatInterval: time.Second, SessionTimeout: 10 * time.Second,
	})
	if err != nil {
		return 0, fmt.Errorf("bench: passthrough group: %w", err)
	}
	defer func() { _ = cg.Close() }()
	gen, err := cg.Next(ctx)
	if err != nil {
		return 0, fmt.Errorf("bench: passthrough group: %w", err)
	}
	w := &kafka.Writer{Addr: kafka.TCP(broker), Topic: "pass.out", Balancer: &kafka.Murmur2Balancer{}, BatchTimeout: 2 * time.Millisecond, BatchSize: 500, RequiredAcks: kafka.RequireAll}
	defer func() { _ = w.Close() }()
	var copied atomic.Int64
	var wg sync.WaitGroup
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2*partitions)
	start := time.Now()
	for topic, assigned := range gen.Assignments {
		for _, a := range assigned {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := copyPartitionSharedCommit(runCtx, broker, topic, a, gen, w, &copied); err != nil && runCtx.Err() == nil {
					errs <- err
				}
			}()
		}
	}
	for copied.Load() < int64(events) {
		select {
		case err := <-errs:
			return 0, err
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	took := time.Since(start).Seconds()
	cancel()
	wg.Wait()
	return took, nil
}

// copyPartitionSharedCommit copies one topic's partition for passthroughSharedCommit.
func copyPartitionSharedCommit(ctx context.Context, broker, topic string, a kafka.PartitionAssignment, gen *kafka.Generation, w *kafka.Writer, copied *atomic.Int64) error {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{broker}, Topic: topic, Partition: a.ID, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond})
	defer func() { _ = r.Close() }()
	if err := r.SetOffset(a.Offset); err != nil {
		return err
	}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return err
		}
		batch := []kafka.Message{{Key: m.Key, Value: m.Value}}
		last := m.Offset
		linger, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
		for len(batch) < 500 {
			m, err := r.FetchMessage(linger)
			if err != nil {
				break
			}
			batch, last = append(batch, kafka.Message{Key: m.Key, Value: m.Value}), m.Offset
		}
		cancel()
		if err := w.WriteMessages(ctx, batch...); err != nil {
			return err
		}
		if err := gen.CommitOffsets(map[string]map[int]int64{topic: {a.ID: last + 1}}); err != nil {
			return err
		}
		copied.Add(int64(len(batch)))
	}
}
