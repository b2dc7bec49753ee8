package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
)

// PartitionReader reads one partition number of several topics, each from its own
// offset and in order within the topic, with one franz-go client: one fetch request
// for all the topics, and the fetched records handed on a fetch at a time. The
// pipeline used a kafka-go Reader per topic before, which hands over one message at
// a time through two goroutines (README, Performance). The consumer group is still
// kafka-go's: the reader only reads where the generation's worker tells it to.
type PartitionReader struct {
	client *kgo.Client
	batch  int // the most messages handed on at a time
	log    *zap.Logger
	lag    map[string]*atomic.Int64 // topic -> the high watermark less the next offset, at the last fetch
	done   chan struct{}            // closed when the reading Start began has ended
}

// Fetched is a message and when it was fetched (for the consume-to-produce latency).
type Fetched struct {
	kafka.Message
	At time.Time
}

// NewPartitionReader returns a reader of partition of every topic in from, each from
// its offset (the next to read; negative: the topic's first). Each fetch it hands on
// has at most batch messages. opts carry TLS and SASL (connect.Kafka.Producer).
func NewPartitionReader(brokers []string, opts []kgo.Opt, partition int, from map[string]int64, batch int, log *zap.Logger) (*PartitionReader, error) {
	parts := make(map[string]map[int32]kgo.Offset, len(from))
	for topic, off := range from {
		start := kgo.NewOffset().AtStart()
		if off >= 0 {
			start = kgo.NewOffset().At(off)
		}
		parts[topic] = map[int32]kgo.Offset{int32(partition): start}
	}
	lag := make(map[string]*atomic.Int64, len(from))
	for topic := range from {
		lag[topic] = new(atomic.Int64)
		lag[topic].Store(-1)
	}
	part := int32(partition)
	all := append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(parts),
		// The broker answers as soon as it has a byte (FetchMinBytes' default of 1),
		// so the wait adds no latency; it only bounds an idle fetch.
		kgo.FetchMaxWait(2 * time.Second),
		kgo.FetchMaxPartitionBytes(4 << 20),
		// franz-go hands a fetch's lag of every partition it reads, those with no new
		// records among them, only to this function; it leaves the fetch order as is.
		kgo.ConsumePreferringLagFn(func(lags map[string]map[int32]int64, _ []string, _ map[string][]int32) ([]string, map[string][]int32) {
			for topic, parts := range lags {
				if l, ok := parts[part]; ok && lag[topic] != nil {
					lag[topic].Store(l)
				}
			}
			return nil, nil
		}),
		kgo.WithLogger(franzLogger{log, "reader"}),
		kgo.DisableClientMetrics(),
	}, opts...)
	c, err := kgo.NewClient(all...)
	if err != nil {
		return nil, fmt.Errorf("pipeline: the Kafka reader of partition %d: %w", partition, err)
	}
	return &PartitionReader{client: c, batch: batch, log: log, lag: lag}, nil
}

// Start reads in the background until ctx ends or the reader is closed, and returns
// the fetches, up to batch messages each. The channel holds two, so that the reader
// fetches on while the one before is worked on. Call it once. Fetch errors are logged; franz-go retries the
// retriable ones itself. An offset out of range is reset to the partition's first
// (ConsumeResetOffset's default): one before it (retention deleted it) as kafka-go's
// Reader did; one past the end (a truncated or recreated topic), where kafka-go
// waited for the partition to grow to it, is read again from the start, and what
// the records' states have already seen is dropped as duplicates.
func (r *PartitionReader) Start(ctx context.Context) <-chan []Fetched {
	out := make(chan []Fetched, 2)
	r.done = make(chan struct{})
	go func() {
		defer close(r.done)
		r.run(ctx, out)
	}()
	return out
}

func (r *PartitionReader) run(ctx context.Context, out chan<- []Fetched) {
	for {
		fs := r.client.PollRecords(ctx, r.batch)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		at := time.Now()
		n, nh := 0, 0
		fs.EachRecord(func(rec *kgo.Record) { n, nh = n+1, nh+len(rec.Headers) })
		chunk := make([]Fetched, 0, n)
		headers := make([]kafka.Header, 0, nh)
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			// An error can come with the records read before it: they are kept.
			if p.Err != nil && !errors.Is(p.Err, context.Canceled) {
				r.log.Warn("reading", zap.String("topic", p.Topic), zap.Int32("partition", p.Partition), zap.Error(p.Err))
			}
			for _, rec := range p.Records {
				start := len(headers)
				for _, h := range rec.Headers {
					headers = append(headers, kafka.Header{Key: h.Key, Value: h.Value})
				}
				chunk = append(chunk, Fetched{Message: kafka.Message{
					Topic: rec.Topic, Partition: int(rec.Partition), Offset: rec.Offset,
					Key: rec.Key, Value: rec.Value, Time: rec.Timestamp,
					Headers: headers[start:len(headers):len(headers)],
				}, At: at})
			}
		})
		if len(chunk) == 0 {
			continue
		}
		select {
		case out <- chunk:
		case <-ctx.Done():
			return
		}
	}
}

// Lag is how far the reader's position in topic's partition was behind the high
// watermark of its last fetch, or -1 before its first fetch request.
func (r *PartitionReader) Lag(topic string) int64 {
	if l := r.lag[topic]; l != nil {
		return l.Load()
	}
	return -1
}

// Close closes the client and waits for the reading Start began to end.
func (r *PartitionReader) Close() {
	r.client.Close()
	if r.done != nil {
		<-r.done
	}
}
