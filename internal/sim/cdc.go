package sim

import (
	"context"
	"fmt"

	"github.com/segmentio/kafka-go"
)

// maxPublishBatch bounds how many queued change events one WriteMessages call carries.
const maxPublishBatch = 1000

// publish writes queued change events to the system's topic in queue (commit) order
// until ctx is done. One goroutine per table: kafka-go keeps the order of one
// partition's messages across calls, so a record's events stay in commit order.
func (t *table) publish(ctx context.Context, w *kafka.Writer) error {
	for {
		var batch []kafka.Message
		select {
		case <-ctx.Done():
			return nil
		case m := <-t.queue:
			batch = append(batch, m)
		}
	drain:
		for len(batch) < maxPublishBatch {
			select {
			case m := <-t.queue:
				batch = append(batch, m)
			default:
				break drain
			}
		}
		if err := w.WriteMessages(ctx, batch...); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("sim: %s: publishing change events to %s (is the topic there?): %w", t.spec.Name, t.spec.Topic, err)
		}
		for _, m := range batch {
			if m.Value == nil {
				t.stats.tombstones.Add(1)
			} else {
				t.stats.published.Add(1)
			}
		}
		t.unpublished.Add(-int64(len(batch)))
	}
}
