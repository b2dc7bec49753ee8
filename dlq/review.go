package dlq

import (
	"encoding/json"
	"errors"
	"time"
)

// Errors of Resolve and Dismiss. Each message says what the reviewer should do next.
var (
	// ErrDecided: the entry is no longer pending (another reviewer resolved or
	// dismissed it first).
	ErrDecided = errors.New("dlq: the entry was already resolved or dismissed; reload it")
	// ErrStale: a change was attached to the entry after the reviewer loaded it, so
	// the decision was made without seeing the latest versions.
	ErrStale = errors.New("dlq: the entry changed since you loaded it (a later change was attached); reload it and decide again")
	// ErrInvalid: the resolution does not say how to decide every field, names a
	// system the entry has no version of, or gives a value that is not JSON.
	ErrInvalid = errors.New("dlq: invalid resolution")
)

// Resolution is a reviewer's decision on a pending entry. Exactly one way of choosing
// must cover every field of the entry: Pick (one system's version of every field),
// or Fields and Values together (per field: a system's version, or a value entered).
type Resolution struct {
	EntryID  string
	Rev      int64                      // the entry revision the reviewer decided on
	Pick     string                     // system whose version wins every field
	Fields   map[string]string          // field -> system whose version wins it
	Values   map[string]json.RawMessage // field -> value entered (canonical JSON)
	Reviewer string                     // the authenticated identity
	// Note goes into the audit entry's reason: why it was decided this way (a bulk
	// choice, the configuration revision of a re-evaluation).
	Note string
}

// Dismissal closes an entry without applying anything.
type Dismissal struct {
	EntryID  string
	Rev      int64
	Reason   string
	Reviewer string
}

// Outcome is what a resolution applied.
type Outcome struct {
	Entry  *Entry                     // the entry, now resolved
	Values map[string]json.RawMessage // field -> the value every system now gets
}

// AuditEntry is one line of the audit trail: a review action, or an automatic
// decision's rule.
type AuditEntry struct {
	ID       string                     `json:"id"` // stream id (time-ordered)
	At       time.Time                  `json:"at"`
	Kind     string                     `json:"kind"` // resolve, dismiss, conflict, dlq, skip, redelivery, repair
	Record   string                     `json:"record"`
	EntryID  string                     `json:"entry_id,omitempty"`
	Reviewer string                     `json:"reviewer,omitempty"`
	System   string                     `json:"system,omitempty"` // the system whose change caused it
	Fields   []string                   `json:"fields,omitempty"`
	Winner   string                     `json:"winner,omitempty"`
	Losers   []string                   `json:"losers,omitempty"`
	Rule     string                     `json:"rule,omitempty"`
	Reason   string                     `json:"reason,omitempty"`
	Choice   string                     `json:"choice,omitempty"` // pick:<system>, or field=<system|value>,...
	Values   map[string]json.RawMessage `json:"values,omitempty"` // values applied
}

// AuditFilter selects audit entries, newest first.
type AuditFilter struct {
	Record string // only this record; "" for all
	Limit  int    // at most this many (default 100)
}

// Patterns are recurring conflicts worth a configuration change.
type Patterns struct {
	Records     []Count      `json:"records"`     // records that keep coming back to the DLQ or conflicting
	Fields      []Count      `json:"fields"`      // fields that keep conflicting
	Losers      []Count      `json:"losers"`      // systems that keep losing (automatic decisions and reviews)
	Suggestions []Suggestion `json:"suggestions"` // authority changes the evidence supports
}

// Count is how often a thing happened.
type Count struct {
	Name  string `json:"name"`
	Count int64  `json:"count"`
}

// Suggestion proposes making a shared field owned by the system that wins it almost
// every time.
type Suggestion struct {
	Field   string  `json:"field"`
	Owner   string  `json:"owner"`
	Wins    int64   `json:"wins"`
	Of      int64   `json:"of"`
	Share   float64 `json:"share"`
	Message string  `json:"message"`
}

// Summary is what the top of the review page shows.
type Summary struct {
	Depth        int64         `json:"depth"`         // pending entries
	OldestAge    time.Duration `json:"oldest_age"`    // age of the oldest pending entry
	ConflictRate float64       `json:"conflict_rate"` // conflicts per 1,000 events since start
	Events       int64         `json:"events"`
	Conflicts    int64         `json:"conflicts"`
}
