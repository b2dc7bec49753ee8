package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/concord-sync/concord/config"
	"github.com/concord-sync/concord/dlq"
)

// Outbox is where decisions made outside the pipeline wait to be produced: the
// review decisions and their audit entries.
type Outbox interface {
	Outbox(ctx context.Context, limit int) ([]dlq.OutboxItem, error)
	Ack(ctx context.Context, items []dlq.OutboxItem) error
}

// DrainOutbox produces what waits in the outbox (review commands to the review topic
// in their record's partition, audit entries to the audit topic) and removes it once
// acknowledged. Several drainers may run at once: a command produced twice is applied
// once (the pipeline ignores a decision on a hold it already released).
func DrainOutbox(ctx context.Context, cfg *config.Config, box Outbox, w *Producer) error {
	for {
		items, err := box.Outbox(ctx, 100)
		if err != nil || len(items) == 0 {
			return err
		}
		msgs := make([]kafka.Message, 0, len(items))
		for _, it := range items {
			m, err := outboxMessage(cfg, it)
			if err != nil {
				return err
			}
			msgs = append(msgs, m)
		}
		if err := w.Produce(ctx, msgs); err != nil {
			return fmt.Errorf("pipeline: producing %d outbox messages: %w", len(msgs), err)
		}
		if err := box.Ack(ctx, items); err != nil {
			return err
		}
	}
}

func outboxMessage(cfg *config.Config, it dlq.OutboxItem) (kafka.Message, error) {
	if it.Kind != "review" {
		var a dlq.AuditEntry
		_ = json.Unmarshal(it.Payload, &a)
		return kafka.Message{Topic: AuditTopic(cfg), Key: []byte(a.Record), Value: it.Payload}, nil
	}
	var c dlq.Command
	if err := json.Unmarshal(it.Payload, &c); err != nil {
		return kafka.Message{}, fmt.Errorf("pipeline: outbox item %s is not a review command: %w", it.ID, err)
	}
	return kafka.Message{
		Topic: ReviewTopic(cfg), Partition: int(c.Partition), Key: []byte(c.Record), Value: it.Payload,
		Headers: []kafka.Header{{Key: headerExplicitPartition, Value: []byte(fmt.Sprint(c.Partition))}},
	}, nil
}

// drainOutbox drains the outbox every second until ctx is done.
func (p *Processor) drainOutbox(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if err := DrainOutbox(ctx, p.cfg, p.opts.DLQ, p.producer); err != nil && ctx.Err() == nil {
			p.log.Warn("producing review decisions and audit entries; retrying", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
