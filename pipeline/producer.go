package pipeline

import (
	"context"
	"fmt"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
)

// Producer is how concord produces: applies, review commands and audit entries. It
// is franz-go's client, not kafka-go's Writer, which the pipeline used before: on
// the bench's half-rate latency run (issue 13) a batch's produce had a p99 of 18-24
// ms with the Writer and 10.5-13.5 ms with this client, 4 runs each (README,
// Performance). The readers and the consumer group are still kafka-go's.
type Producer struct {
	client *kgo.Client
}

// NewProducer returns a producer to brokers: each call's records sent at once (no
// linger), acknowledged by every in-sync replica, in order per partition (franz-go's
// idempotent producer), murmur2 partitioning by key as Java producers do, except
// messages to the review topic, which name their partition. A record batch holds at
// most maxMessageBytes (kafka.max_message_bytes), and never less than 1 MiB: the
// broker refuses a batch over its message.max.bytes (1 MiB and 12 bytes by default),
// and the producer splits what it sends into batches under the limit. opts carry TLS
// and SASL (connect.Kafka.Producer). Errors are logged to log.
func NewProducer(brokers []string, maxMessageBytes int, opts []kgo.Opt, log *zap.Logger) (*Producer, error) {
	all := append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// franz-go's default linger is 10 ms: every produce would wait it out.
		kgo.ProducerLinger(0),
		kgo.ProducerBatchMaxBytes(int32(max(maxMessageBytes, 1<<20))),
		kgo.RecordPartitioner(explicitOrMurmur2()),
		kgo.WithLogger(franzLogger{log, "producer"}),
		kgo.DisableClientMetrics(), // no KIP-714 telemetry pushed to the brokers
	}, opts...)
	c, err := kgo.NewClient(all...)
	if err != nil {
		return nil, fmt.Errorf("pipeline: the Kafka producer: %w", err)
	}
	return &Producer{client: c}, nil
}

// Produce sends msgs and returns once every one is acknowledged, or the first
// failure (ctx's end among them). Their order within a partition is kept.
func (p *Producer) Produce(ctx context.Context, msgs []kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	recs := make([]kgo.Record, len(msgs))
	ptrs := make([]*kgo.Record, len(msgs))
	nh := 0
	for i := range msgs {
		nh += len(msgs[i].Headers)
	}
	headers := make([]kgo.RecordHeader, 0, nh)
	for i := range msgs {
		m := &msgs[i]
		start := len(headers)
		for _, h := range m.Headers {
			headers = append(headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		recs[i] = kgo.Record{
			Topic: m.Topic, Partition: int32(m.Partition), Key: m.Key, Value: m.Value, Timestamp: m.Time, // zero: the time of producing
			Headers: headers[start:len(headers):len(headers)],
		}
		ptrs[i] = &recs[i]
	}
	return p.client.ProduceSync(ctx, ptrs...).FirstErr()
}

// Close closes the client; what a Produce call has not had acknowledged is failed.
func (p *Producer) Close() {
	p.client.Close()
}

// explicitOrMurmur2 keeps a record's own partition when it names one (the review
// topic's messages go to their record's partition), else hashes the key with
// murmur2 as Java's default partitioner does (franz-go's StickyKeyPartitioner with
// its default hasher; every message concord produces has a key).
func explicitOrMurmur2() kgo.Partitioner {
	keyed := kgo.StickyKeyPartitioner(nil)
	return kgo.BasicConsistentPartitioner(func(topic string) func(*kgo.Record, int) int {
		byKey := keyed.ForTopic(topic)
		return func(r *kgo.Record, n int) int {
			for _, h := range r.Headers {
				if h.Key == headerExplicitPartition {
					return int(r.Partition)
				}
			}
			return byKey.Partition(r, n)
		}
	})
}

const headerExplicitPartition = "concord.partition"

// franzLogger logs franz-go's warnings and errors to a zap logger.
type franzLogger struct {
	log    *zap.Logger
	client string
}

func (l franzLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (l franzLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	fields := make([]zap.Field, 0, len(keyvals)/2+1)
	fields = append(fields, zap.String("client", l.client))
	for i := 0; i+1 < len(keyvals); i += 2 {
		fields = append(fields, zap.Any(fmt.Sprint(keyvals[i]), keyvals[i+1]))
	}
	if level == kgo.LogLevelError {
		l.log.Error("franz-go: "+msg, fields...)
		return
	}
	l.log.Warn("franz-go: "+msg, fields...)
}
