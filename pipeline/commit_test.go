package pipeline_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/concord-sync/concord/internal/testenv"
	"github.com/concord-sync/concord/pipeline"
)

// committed are the group's committed offsets of crm's topic, by partition.
func (e *env) committed(partitions int) map[int]int64 {
	e.t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(e.brokers...)}
	parts := make([]int, partitions)
	for i := range parts {
		parts[i] = i
	}
	res, err := c.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: e.cfg.Name, Topics: map[string][]int{crmTopic: parts}})
	if err != nil || res.Error != nil {
		return nil
	}
	out := map[int]int64{}
	for _, p := range res.Topics[crmTopic] {
		if p.Error == nil {
			out[p.Partition] = p.CommittedOffset
		}
	}
	return out
}

// TestGroupOffsetsCommitted: the input positions reach the consumer group in the
// background (commit.go), not one commit per batch, and a processor that stops
// commits what it had decided, so that the group's lag as Kafka tools show it is 0.
func TestGroupOffsetsCommitted(t *testing.T) {
	t.Run("in the background", func(t *testing.T) {
		e := newEnv(t, 1)
		e.start("p1")
		var msgs []kafka.Message
		for i := range 20 {
			msgs = append(msgs, change("id", fmt.Sprint(i), "c", int64(100+i), 1_700_000_000_000, map[string]any{"email_address": "a@x", "notes": "n0"}))
		}
		e.produce(crmTopic, msgs...)
		readApplies(t, e.brokers, "contacts.apply.billing", 20)
		testenv.Eventually(t, "the group's offset at the end of crm's partition", func() bool { return e.committed(1)[0] == 20 })
	})
	t.Run("on stopping", func(t *testing.T) {
		// An interval longer than the test: the first batch's positions are committed
		// at once, the second's only as the processor stops.
		e := newEnv(t, 1)
		_, stop := e.startOpts("p1", e.store, func(o *pipeline.Options) { o.CommitInterval = time.Hour })
		e.produce(crmTopic, change("id", "1", "c", 100, 1_700_000_000_000, map[string]any{"email_address": "a@x"}))
		readApplies(t, e.brokers, "contacts.apply.billing", 1)
		testenv.Eventually(t, "the first batch's commit", func() bool { return e.committed(1)[0] == 1 })
		e.produce(crmTopic, change("id", "2", "c", 101, 1_700_000_000_000, map[string]any{"email_address": "b@x"}))
		readApplies(t, e.brokers, "contacts.apply.billing", 2)
		if got := e.committed(1)[0]; got != 1 {
			t.Fatalf("before stopping, the group's offset is %d, want 1 (the second batch's waits out the interval)", got)
		}
		stop()
		if got := e.committed(1)[0]; got != 2 {
			t.Errorf("after the processor stopped, the group's offset is %d, want 2", got)
		}
	})
}
