package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/concord-sync/concord/pipeline"
)

// passTopics are the passthrough's inputs (copies of the pipeline's) and its output.
var passTopics = []string{"pass.crm", "pass.billing"}

const passOut = "pass.out"

// passthrough consumes pass.crm and pass.billing and produces every message to
// pass.out, the way the pipeline does minus state and resolution: one consumer-group
// generation, per partition the pipeline's reader of both input topics
// (pipeline.PartitionReader) feeding one worker, batches of what is fetched up to
// 500 messages without a linger, one write per batch with the pipeline's producer
// (pipeline.NewProducer). Offsets are committed by one committer
// every 100 ms, all partitions in one request, and once at the end, so no batch waits
// for a commit and the workers do not queue on the coordinator connection. It returns
// how long it took from holding the partitions to having copied and committed every
// message.
func passthrough(ctx context.Context, broker string, partitions, events int, progress Progress) (float64, error) {
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID: "bench-passthrough", Brokers: []string{broker}, Topics: passTopics,
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
	w, err := pipeline.NewProducer([]string{broker}, 1<<20, nil, zap.NewNop())
	if err != nil {
		return 0, err
	}
	defer w.Close()

	progress(PhasePassthrough, 0, int64(events), "events")
	start := time.Now()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	offsets := &passOffsets{next: map[string]map[int]int64{}}
	var copied atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, partitions)
	for p := range assignedPartitions(gen) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := copyPartition(runCtx, broker, p, gen, w, offsets, &copied); err != nil && runCtx.Err() == nil {
				errs <- err
			}
		}()
	}
	defer func() { cancel(); wg.Wait() }()
	commit := time.NewTicker(100 * time.Millisecond)
	defer commit.Stop()
	for copied.Load() < int64(events) {
		select {
		case err := <-errs:
			return 0, err
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-commit.C:
			if err := offsets.commit(gen); err != nil {
				return 0, err
			}
			progress(PhasePassthrough, copied.Load(), int64(events), "events")
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := offsets.commit(gen); err != nil {
		return 0, err
	}
	return time.Since(start).Seconds(), nil
}

// assignedPartitions are the partitions the generation holds of any input topic.
func assignedPartitions(gen *kafka.Generation) map[int]bool {
	parts := map[int]bool{}
	for _, assigned := range gen.Assignments {
		for _, a := range assigned {
			parts[a.ID] = true
		}
	}
	return parts
}

// passOffsets are the next offsets to commit, set by the workers after each write
// and committed by the committer.
type passOffsets struct {
	mu    sync.Mutex
	next  map[string]map[int]int64
	dirty bool
}

func (o *passOffsets) set(topic string, partition int, next int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.next[topic] == nil {
		o.next[topic] = map[int]int64{}
	}
	o.next[topic][partition], o.dirty = next, true
}

// commit commits what changed since the last commit, in one request.
func (o *passOffsets) commit(gen *kafka.Generation) error {
	o.mu.Lock()
	if !o.dirty {
		o.mu.Unlock()
		return nil
	}
	snapshot := map[string]map[int]int64{}
	for t, parts := range o.next {
		snapshot[t] = map[int]int64{}
		for p, off := range parts {
			snapshot[t][p] = off
		}
	}
	o.dirty = false
	o.mu.Unlock()
	if err := gen.CommitOffsets(snapshot); err != nil {
		return fmt.Errorf("bench: passthrough commit: %w", err)
	}
	return nil
}

// copyPartition copies one partition of both input topics until ctx ends, reading
// with the pipeline's reader (pipeline.PartitionReader).
func copyPartition(ctx context.Context, broker string, partition int, gen *kafka.Generation, w *pipeline.Producer, offsets *passOffsets, copied *atomic.Int64) error {
	from := map[string]int64{}
	for _, topic := range passTopics {
		from[topic] = -1
		for _, a := range gen.Assignments[topic] {
			if a.ID == partition && a.Offset >= 0 {
				from[topic] = a.Offset
			}
		}
	}
	r, err := pipeline.NewPartitionReader([]string{broker}, nil, partition, from, 500, zap.NewNop())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); r.Close() }()
	chunks := r.Start(ctx)
	var pending []pipeline.Fetched
	for {
		if len(pending) == 0 {
			select {
			case pending = <-chunks:
			case <-ctx.Done():
				return nil
			}
		}
		var batch []pipeline.Fetched
		batch, pending = collectPass(ctx, chunks, pending)
		out := make([]kafka.Message, len(batch))
		last := map[string]int64{}
		for i, m := range batch {
			out[i] = kafka.Message{Topic: passOut, Key: m.Key, Value: m.Value}
			last[m.Topic] = m.Offset
		}
		if err := w.Produce(ctx, out); err != nil {
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		}
		for topic, off := range last {
			offsets.set(topic, partition, off+1)
		}
		copied.Add(int64(len(batch)))
	}
}

// collectPass gathers a batch as the pipeline's worker does: what is pending and
// whatever the reader has fetched, up to 500, without waiting. It returns the batch
// and what is left pending.
func collectPass(ctx context.Context, chunks <-chan []pipeline.Fetched, pending []pipeline.Fetched) ([]pipeline.Fetched, []pipeline.Fetched) {
	var batch []pipeline.Fetched
	for {
		k := min(len(pending), 500-len(batch))
		batch, pending = append(batch, pending[:k]...), pending[k:]
		if len(batch) == 500 || ctx.Err() != nil {
			return batch, pending
		}
		select {
		case pending = <-chunks:
		default:
			return batch, pending
		}
	}
}
