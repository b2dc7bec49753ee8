package dlq

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

func (s *Store) statsKey() string { return s.prefix + ":stats" }

// Batch is what the pipeline notes after each batch: its automatic decisions for the
// audit trail and pattern counters, and its event and conflict counts for the
// conflict rate.
type Batch struct {
	Audit     []AuditEntry
	Events    int64
	Conflicts int64
	At        time.Time // when the batch was decided (for the per-minute history); zero for now
}

// Note records a batch's audit entries and counts in one pipelined round trip.
// A batch reprocessed after a crash is noted again: the audit trail is at least once.
func (s *Store) Note(ctx context.Context, b Batch) error {
	if !b.Noted() {
		return nil
	}
	pipe := s.client.Pipeline()
	if err := s.QueueNote(ctx, pipe, b); err != nil {
		return err
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("dlq: noting a batch (%d audit entries): %w", len(b.Audit), err)
	}
	return nil
}

// Noted reports whether Note has anything to record of b.
func (b *Batch) Noted() bool { return len(b.Audit) > 0 || b.Events > 0 }

// QueueNote queues Note's commands on pipe, for a caller that sends them in a round
// trip of its own (see state.Redis.PutAfter). It fails only when an audit entry
// cannot be encoded, and then queues nothing.
func (s *Store) QueueNote(ctx context.Context, pipe redis.Pipeliner, b Batch) error {
	if !b.Noted() {
		return nil
	}
	if err := s.appendAudit(ctx, pipe, b.Audit); err != nil {
		return err
	}
	if b.Events > 0 {
		pipe.HIncrBy(ctx, s.statsKey(), "events", b.Events)
	}
	if b.Conflicts > 0 {
		pipe.HIncrBy(ctx, s.statsKey(), "conflicts", b.Conflicts)
	}
	at := b.At
	if at.IsZero() {
		at = time.Now()
	}
	s.noteHistory(ctx, pipe, at, b)
	return nil
}

// Client is the Redis client the store writes with.
func (s *Store) Client() redis.UniversalClient { return s.client }

// Summary returns the depth, the oldest pending entry's age at now and the conflict
// rate per 1,000 events.
func (s *Store) Summary(ctx context.Context, now time.Time) (*Summary, error) {
	pipe := s.client.Pipeline()
	depth := pipe.ZCard(ctx, s.pendingKey())
	oldest := pipe.ZRangeWithScores(ctx, s.pendingKey(), 0, 0)
	stats := pipe.HMGet(ctx, s.statsKey(), "events", "conflicts")
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("dlq: reading the summary: %w", err)
	}
	sum := &Summary{Depth: depth.Val()}
	if z := oldest.Val(); len(z) == 1 {
		sum.OldestAge = now.Sub(time.UnixMilli(int64(z[0].Score)))
	}
	vals := stats.Val()
	sum.Events, sum.Conflicts = atoi(fmt.Sprint(vals[0])), atoi(fmt.Sprint(vals[1]))
	if sum.Events > 0 {
		sum.ConflictRate = 1000 * float64(sum.Conflicts) / float64(sum.Events)
	}
	return sum, nil
}
