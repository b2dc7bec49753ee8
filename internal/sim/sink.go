package sim

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// A sink task commits its consumer offsets now and then, not after every write, as
// Kafka Connect's WorkerSinkTask does (offset.flush.interval.ms, 60 s by default;
// shorter here, DefaultSinkCommitInterval, so that a restart rewrites a little, not a
// minute of applies): after sinkCommitEvery writes, or when its oldest uncommitted
// write is Config.SinkCommitInterval old.
const (
	sinkCommitEvery           = 100
	DefaultSinkCommitInterval = time.Second
)

// ErrSinkFailed is wrapped by the error of a sink task that met an apply event it
// cannot write: the real JDBC sink task fails (errors.tolerance=none), so the
// simulation stops instead of skipping the write.
var ErrSinkFailed = errors.New("sim: sink task failed")

// sink consumes the table's apply topic as a JDBC sink connector's task would, until
// ctx is done: it writes every apply (world.Table.ReadApply, world.Table.Sink), commits
// its offset every sinkCommitEvery messages or sinkCommitInterval, and when restarted
// (RestartSink) it drops what it has not committed and resumes from its last commit,
// so it writes those applies again: JDBC sinks are at-least-once. open returns a
// reader of the sink's consumer group; onApply is called for every message consumed.
func (t *table) sink(ctx context.Context, open func() *kafka.Reader, interval time.Duration, log *zap.Logger, onApply func()) error {
	written := map[int]int64{} // partition -> highest offset written, to count rewrites
	for {
		restarted, err := t.sinkTask(ctx, open(), interval, written, onApply)
		if err != nil || !restarted {
			return err
		}
		t.stats.restarts.Add(1)
		log.Info("sink task restarted: it writes again what it wrote since its last offset commit",
			zap.String("system", t.spec.Name))
	}
}

// sinkTask runs one task of the sink until ctx is done (restarted false) or a restart
// is requested (restarted true). The reader is closed when it returns.
func (t *table) sinkTask(ctx context.Context, r *kafka.Reader, interval time.Duration, written map[int]int64, onApply func()) (restarted bool, err error) {
	taskCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer func() {
		if cerr := r.Close(); cerr != nil && err == nil && ctx.Err() == nil {
			err = fmt.Errorf("sim: %s: closing the sink's reader: %w", t.spec.Name, cerr)
		}
	}()
	go func() {
		select {
		case <-t.restart:
			cancel()
		case <-taskCtx.Done():
		}
	}()
	var uncommitted []kafka.Message
	var oldest time.Time // when the oldest uncommitted write was made
	for {
		m, err := r.FetchMessage(taskCtx)
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return false, nil
		case taskCtx.Err() != nil:
			return true, nil // a crash: what was not committed is written again
		default:
			return false, fmt.Errorf("sim: %s: consuming %s: %w", t.spec.Name, t.spec.ApplyTopic, err)
		}
		t.stats.applies.Add(1)
		onApply()
		if prev, ok := written[m.Partition]; ok && m.Offset <= prev {
			t.stats.rewrites.Add(1)
		} else {
			written[m.Partition] = m.Offset
		}
		if err := t.write(ctx, m); err != nil {
			if ctx.Err() != nil {
				return false, nil
			}
			t.stats.rejected.Add(1)
			return false, fmt.Errorf("%w: %s could not write %s partition %d offset %d: %w",
				ErrSinkFailed, t.spec.Name, t.spec.ApplyTopic, m.Partition, m.Offset, err)
		}
		if len(uncommitted) == 0 {
			oldest = time.Now()
		}
		uncommitted = append(uncommitted, m)
		if len(uncommitted) < sinkCommitEvery && time.Since(oldest) < interval {
			continue
		}
		if err := r.CommitMessages(taskCtx, uncommitted...); err != nil {
			if taskCtx.Err() != nil {
				return ctx.Err() == nil, nil
			}
			return false, fmt.Errorf("sim: %s: committing %s: %w", t.spec.Name, t.spec.ApplyTopic, err)
		}
		uncommitted = uncommitted[:0]
	}
}

// write applies one apply message to the table as the JDBC sink would
// (world.Table.ReadApply, world.Table.Sink).
func (t *table) write(ctx context.Context, m kafka.Message) error {
	a, err := t.db.ReadApply(t.spec.ApplyFormat, m.Key, m.Value)
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
