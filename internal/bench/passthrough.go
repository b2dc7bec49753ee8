package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
)

// passthrough consumes pass.crm and pass.billing and produces every message to
// pass.out with the same client and batching as the pipeline (a consumer group, one
// reader per partition, batches of up to 500 messages or 5 ms, one write and one
// commit per batch), with no state and no resolution. It returns how long it took
// from holding the partitions to having copied every message.
func passthrough(ctx context.Context, broker string, partitions, events int) (float64, error) {
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
				if err := copyPartition(runCtx, broker, topic, a, gen, w, &copied); err != nil && runCtx.Err() == nil {
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

func copyPartition(ctx context.Context, broker, topic string, a kafka.PartitionAssignment, gen *kafka.Generation, w *kafka.Writer, copied *atomic.Int64) error {
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
