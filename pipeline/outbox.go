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

// NewWriter returns the Kafka writer concord produces with: batches flushed as soon
// as WriteMessages has handed them over, every replica acknowledging, murmur2 partitioning by key (as Java producers),
// except messages to the review topic, which name their partition. transport (nil
// for plain TCP) carries TLS and SASL; errors are logged to log.
func NewWriter(brokers []string, batchSize int, transport *kafka.Transport, log *zap.Logger) *kafka.Writer {
	w := &kafka.Writer{
		ErrorLogger: KafkaLogger(log, "writer"),
		Addr:        kafka.TCP(brokers...),
		Balancer:    explicitOrMurmur2{},
		// kafka-go adds all of one WriteMessages call's messages for a partition to
		// its batch under the partition writer's lock, and a batch's timer can only
		// flush it once that lock is free (writer.go, partitionWriter.writeMessages
		// and awaitBatch): so a tiny timeout still sends each call's messages of a
		// partition together, without the wait a 2 ms timeout added to every call.
		BatchTimeout: time.Microsecond,
		BatchSize:    batchSize,
		RequiredAcks: kafka.RequireAll,
		MaxAttempts:  5,
	}
	if transport != nil {
		w.Transport = transport
	}
	return w
}

// explicitOrMurmur2 keeps a message's own partition when it names one (the review
// topic's messages go to their record's partition), else hashes the key.
type explicitOrMurmur2 struct{ kafka.Murmur2Balancer }

// Balance implements kafka.Balancer.
func (b explicitOrMurmur2) Balance(msg kafka.Message, partitions ...int) int {
	for _, h := range msg.Headers {
		if h.Key == headerExplicitPartition {
			return msg.Partition
		}
	}
	return b.Murmur2Balancer.Balance(msg, partitions...)
}

const headerExplicitPartition = "concord.partition"

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
func DrainOutbox(ctx context.Context, cfg *config.Config, box Outbox, w *kafka.Writer) error {
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
		if err := w.WriteMessages(ctx, msgs...); err != nil {
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
		if err := DrainOutbox(ctx, p.cfg, p.opts.DLQ, p.writer); err != nil && ctx.Err() == nil {
			p.log.Warn("producing review decisions and audit entries; retrying", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
