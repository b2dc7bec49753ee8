package dlq

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Pattern thresholds.
const (
	// A record is "coming back" once it has been in conflict this often.
	recurringRecord = 2
	// A suggestion needs this many decided conflicts of the field...
	suggestMinDecided = 20
	// ...and one system winning at least this share of them.
	suggestMinShare = 0.9
	topN            = 10
)

func (s *Store) patKey(what string) string { return s.prefix + ":pat:" + what }

// count adds an audit entry to the pattern counters.
func (s *Store) count(ctx context.Context, pipe redis.Pipeliner, a *AuditEntry) {
	switch a.Kind {
	case "conflict", "resolve":
		pipe.ZIncrBy(ctx, s.patKey("records"), 1, a.Record)
		for _, f := range a.Fields {
			pipe.ZIncrBy(ctx, s.patKey("fields"), 1, f)
			pipe.HIncrBy(ctx, s.patKey("decided"), f, 1)
			if a.Winner != "" {
				pipe.HIncrBy(ctx, s.patKey("wins"), f+"\x1f"+a.Winner, 1)
			}
		}
		for _, l := range a.Losers {
			pipe.ZIncrBy(ctx, s.patKey("losers"), 1, l)
		}
	case "dlq":
		pipe.ZIncrBy(ctx, s.patKey("records"), 1, a.Record)
		for _, f := range a.Fields {
			pipe.ZIncrBy(ctx, s.patKey("fields"), 1, f)
		}
	case "skip":
		pipe.ZIncrBy(ctx, s.patKey("losers"), 1, a.System)
	}
}

// Patterns reads the pattern counters: records that keep coming back, fields that
// keep conflicting, systems that keep losing, and for the shared fields given, a
// suggested owner where one system wins almost every decided conflict.
func (s *Store) Patterns(ctx context.Context, shared []string) (*Patterns, error) {
	pipe := s.client.Pipeline()
	records := pipe.ZRevRangeWithScores(ctx, s.patKey("records"), 0, topN-1)
	fields := pipe.ZRevRangeWithScores(ctx, s.patKey("fields"), 0, topN-1)
	losers := pipe.ZRevRangeWithScores(ctx, s.patKey("losers"), 0, topN-1)
	decided := pipe.HGetAll(ctx, s.patKey("decided"))
	wins := pipe.HGetAll(ctx, s.patKey("wins"))
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("dlq: reading pattern counters: %w", err)
	}
	p := &Patterns{
		Records: counts(records.Val(), recurringRecord),
		Fields:  counts(fields.Val(), 1),
		Losers:  counts(losers.Val(), 1),
	}
	p.Suggestions = suggest(shared, decided.Val(), wins.Val())
	return p, nil
}

func counts(zs []redis.Z, least int64) []Count {
	out := []Count{}
	for _, z := range zs {
		if n := int64(z.Score); n >= least {
			out = append(out, Count{Name: fmt.Sprint(z.Member), Count: n})
		}
	}
	return out
}

func suggest(shared []string, decided, wins map[string]string) []Suggestion {
	out := []Suggestion{}
	for _, f := range shared {
		total := atoi(decided[f])
		if total < suggestMinDecided {
			continue
		}
		var best string
		var bestWins int64
		for k, v := range wins {
			field, system, ok := strings.Cut(k, "\x1f")
			if ok && field == f && atoi(v) > bestWins {
				best, bestWins = system, atoi(v)
			}
		}
		share := float64(bestWins) / float64(total)
		if share < suggestMinShare {
			continue
		}
		out = append(out, Suggestion{
			Field: f, Owner: best, Wins: bestWins, Of: total, Share: share,
			Message: fmt.Sprintf("%s won %d of %d conflicts on %s (%.0f%%): consider authority %s: %s", best, bestWins, total, f, 100*share, f, best),
		})
	}
	slices.SortFunc(out, func(a, b Suggestion) int { return strings.Compare(a.Field, b.Field) })
	return out
}

func atoi(s string) int64 {
	var n int64
	_, _ = fmt.Sscan(s, &n)
	return n
}

// countReview adds a review decision to the pattern counters.
func (s *Store) countReview(ctx context.Context, a *AuditEntry) error {
	pipe := s.client.Pipeline()
	s.count(ctx, pipe, a)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("dlq: counting a review for patterns: %w", err)
	}
	return nil
}
