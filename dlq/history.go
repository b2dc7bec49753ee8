package dlq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The review page's chart reads what the pipeline already counts, per minute: a hash
// {<name>:dlq}:h:<unix minute> with the minute's events and conflicts, and the DLQ
// depth at its last batch. Each bucket expires after historyRetention, so the history
// costs a bounded ~100 bytes per minute.
const historyRetention = 48 * time.Hour

func (s *Store) historyKey(minute int64) string {
	return s.prefix + ":h:" + strconv.FormatInt(minute, 10)
}

// noteHistory adds a batch's counts to its minute's bucket, with the depth now.
var noteHistory = redis.NewScript(`
redis.call('HINCRBY', KEYS[1], 'events', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'conflicts', ARGV[2])
redis.call('HSET', KEYS[1], 'depth', redis.call('ZCARD', KEYS[2]))
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 0`)

func (s *Store) noteHistory(ctx context.Context, pipe redis.Pipeliner, at time.Time, b Batch) {
	minute := at.Unix() / 60
	// EVAL, not EVALSHA: in a pipeline a missing script could not be retried.
	noteHistory.Eval(ctx, pipe, []string{s.historyKey(minute), s.pendingKey()},
		b.Events, b.Conflicts, int64(historyRetention.Seconds()))
}

// Point is one minute of the history.
type Point struct {
	At        time.Time `json:"at"` // the minute's start
	Events    int64     `json:"events"`
	Conflicts int64     `json:"conflicts"`
	Depth     int64     `json:"depth"` // pending entries at the minute's last batch; carried over quiet minutes
}

// History returns the last minutes' points up to now, oldest first: every minute,
// quiet ones with no events (and the depth carried over from the last known one).
func (s *Store) History(ctx context.Context, now time.Time, minutes int) ([]Point, error) {
	if minutes <= 0 {
		return nil, nil
	}
	last := now.Unix() / 60
	pipe := s.client.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, minutes)
	for i := range minutes {
		cmds[i] = pipe.HGetAll(ctx, s.historyKey(last-int64(minutes-1-i)))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("dlq: reading the history: %w", err)
	}
	points := make([]Point, minutes)
	depth := int64(-1)
	for i, c := range cmds {
		m := c.Val()
		p := Point{At: time.Unix((last-int64(minutes-1-i))*60, 0).UTC()}
		p.Events, p.Conflicts = atoi(m["events"]), atoi(m["conflicts"])
		if d, ok := m["depth"]; ok {
			depth = atoi(d)
		}
		p.Depth = max(depth, 0)
		points[i] = p
	}
	return points, nil
}
