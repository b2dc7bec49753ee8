package dlq

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// auditMaxLen bounds the audit stream in Redis (approximately); the <name>.audit
// Kafka topic keeps the trail for long-term retention.
const auditMaxLen = 100_000

var (
	//go:embed decide.lua
	decideSource string
	decideScript = redis.NewScript(decideSource)
)

func (s *Store) outboxKey() string { return s.prefix + ":outbox" }
func (s *Store) auditKey() string  { return s.prefix + ":audit" }

// decision is a status change of an entry, with what must follow it.
type decision struct {
	entryID, status, reviewer, choice, dismissReason string
	rev                                              int64
	at                                               time.Time
	command                                          []byte // the review command for the pipeline, nil for a dismissal
	audit                                            AuditEntry
}

// decide changes a pending entry's status in one script: exactly one of several
// concurrent reviewers wins; a reviewer who decided on an older revision is refused.
// The audit entry and the command for the pipeline are written to the outbox in the
// same script, so a decision is never recorded without them.
func (s *Store) decide(ctx context.Context, d decision) error {
	auditJSON, err := json.Marshal(d.audit)
	if err != nil {
		return fmt.Errorf("dlq: audit entry: %w", err)
	}
	keys := []string{s.entryKey(d.entryID), s.pendingKey(), s.outboxKey(), s.auditKey()}
	res, err := decideScript.Run(ctx, s.client, keys, d.rev, d.status, d.reviewer, d.choice,
		d.at.UTC().Format(time.RFC3339Nano), d.dismissReason, string(d.command), auditJSON, auditMaxLen).Slice()
	if err != nil {
		return fmt.Errorf("dlq: deciding entry %q: %w", d.entryID, err)
	}
	code, _ := res[0].(int64)
	switch code {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("%w: %q", ErrNotFound, d.entryID)
	case 2:
		return fmt.Errorf("%w (entry %s is %v)", ErrDecided, d.entryID, res[1])
	default:
		return fmt.Errorf("%w (you loaded revision %d, it is now at %v)", ErrStale, d.rev, res[1])
	}
}

// OutboxItem is a message the outbox holds until it is produced to Kafka.
type OutboxItem struct {
	ID      string // stream id, for Ack
	Kind    string // "review" (a command for the pipeline) or "audit"
	Payload []byte
}

// Outbox returns up to limit items waiting to be produced, oldest first.
func (s *Store) Outbox(ctx context.Context, limit int) ([]OutboxItem, error) {
	msgs, err := s.client.XRangeN(ctx, s.outboxKey(), "-", "+", int64(limit)).Result()
	if err != nil {
		return nil, fmt.Errorf("dlq: reading the outbox: %w", err)
	}
	items := make([]OutboxItem, 0, len(msgs))
	for _, m := range msgs {
		kind, _ := m.Values["kind"].(string)
		payload, _ := m.Values["payload"].(string)
		items = append(items, OutboxItem{ID: m.ID, Kind: kind, Payload: []byte(payload)})
	}
	return items, nil
}

// Ack removes produced items from the outbox.
func (s *Store) Ack(ctx context.Context, items []OutboxItem) error {
	if len(items) == 0 {
		return nil
	}
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ID
	}
	if err := s.client.XDel(ctx, s.outboxKey(), ids...).Err(); err != nil {
		return fmt.Errorf("dlq: acknowledging %d outbox items: %w", len(ids), err)
	}
	return nil
}

// Audit returns audit entries, newest first.
func (s *Store) Audit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	var out []AuditEntry
	last := "+"
	for len(out) < limit {
		msgs, err := s.client.XRevRangeN(ctx, s.auditKey(), last, "-", 500).Result()
		if err != nil {
			return nil, fmt.Errorf("dlq: reading the audit trail: %w", err)
		}
		for _, m := range msgs {
			if m.ID == last {
				continue
			}
			var a AuditEntry
			raw, _ := m.Values["entry"].(string)
			if err := json.Unmarshal([]byte(raw), &a); err != nil {
				return nil, fmt.Errorf("dlq: audit entry %s: %w", m.ID, err)
			}
			a.ID = m.ID
			if f.Record == "" || a.Record == f.Record {
				out = append(out, a)
				if len(out) == limit {
					break
				}
			}
		}
		if len(msgs) < 500 {
			break
		}
		last = msgs[len(msgs)-1].ID
	}
	return out, nil
}

// appendAudit queues audit entries and their pattern counts on a pipeline; when an
// entry cannot be encoded it fails and queues none.
func (s *Store) appendAudit(ctx context.Context, pipe redis.Pipeliner, entries []AuditEntry) error {
	encoded := make([][]byte, len(entries))
	for i := range entries {
		b, err := json.Marshal(entries[i])
		if err != nil {
			return fmt.Errorf("dlq: audit entry: %w", err)
		}
		encoded[i] = b
	}
	for i, b := range encoded {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: s.auditKey(), MaxLen: auditMaxLen, Approx: true, Values: []any{"entry", b}})
		s.count(ctx, pipe, &entries[i])
	}
	return nil
}
