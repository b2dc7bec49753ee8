package sim

import (
	"context"
	"fmt"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/concord-sync/concord/internal/world"
)

// sink consumes the table's apply topic as a JDBC sink connector would, until ctx is
// done. onApply is called for every message consumed.
func (t *table) sink(ctx context.Context, r *kafka.Reader, log *zap.Logger, onApply func()) error {
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("sim: %s: consuming %s: %w", t.spec.Name, t.spec.ApplyTopic, err)
		}
		t.stats.applies.Add(1)
		onApply()
		if err := t.write(ctx, m); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			t.stats.rejected.Add(1)
			log.Warn("apply event skipped", zap.String("system", t.spec.Name),
				zap.Int("partition", m.Partition), zap.Int64("offset", m.Offset), zap.Error(err))
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("sim: %s: committing %s offset %d: %w", t.spec.Name, t.spec.ApplyTopic, m.Offset, err)
		}
	}
}

// write applies one apply message to the table as the JDBC sink would
// (world.DecodeApply, world.Table.Sink).
func (t *table) write(ctx context.Context, m kafka.Message) error {
	a, err := world.DecodeApply(t.spec.ApplyFormat, t.spec.KeyColumn, m.Key, m.Value)
	if err != nil {
		return err
	}
	wrote, err := t.sinkWrite(ctx, &a, headerValue(m, "concord.event_id"))
	if err != nil {
		return err
	}
	if wrote {
		t.stats.sinkWrites.Add(1)
	} else {
		t.stats.sinkNoops.Add(1)
	}
	return nil
}

func headerValue(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
