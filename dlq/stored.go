package dlq

import (
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/concord-sync/concord/resolver"
)

// ErrNotFound is returned for an entry id that is not in the DLQ.
var ErrNotFound = errors.New("dlq: no such entry")

// Entry is one DLQ entry as stored: every Change recorded under its id, merged.
type Entry struct {
	ID     string `json:"id"`
	Record string `json:"record"`
	// Reason is the reason the entry was created with; Reasons lists every reason
	// recorded into it since, in order of first appearance (Reason first).
	Reason  string   `json:"reason"`
	Reasons []string `json:"reasons"`
	Status  string   `json:"status"` // StatusPending, StatusResolved or StatusDismissed
	// Fields are the canonical fields under review: the union of every Change's fields,
	// in order of first appearance.
	Fields []string `json:"fields"`
	// Versions holds each system's latest version of the fields (the one with the
	// greatest TsUs recorded; attached changes update it too).
	Versions map[string]Version `json:"versions"`
	// Base is the agreed value of each field before the conflict, where known (the
	// first one recorded for a field stays).
	Base map[string]json.RawMessage `json:"base,omitempty"`
	// Attached are the later changes to held fields, in the order recorded.
	Attached []Attached `json:"attached"`
	// Causes are the events whose changes were recorded (Change.Cause), sorted.
	Causes []string `json:"causes,omitempty"`

	QueuedAt  time.Time `json:"queued_at"`  // the first Change's At
	UpdatedAt time.Time `json:"updated_at"` // the last recorded Change's At
	// Rev increases with every change to the entry: a resolution made against an
	// older rev than the stored one was made without seeing the latest versions.
	Rev int64 `json:"rev"`

	// apply_unconfirmed: the system that never confirmed, and the apply's event id
	// (the first recorded, when several joined the entry).
	Target  string `json:"target,omitempty"`
	EventID string `json:"event_id,omitempty"`

	// Partition is the input partition the record's state lives in.
	Partition int32 `json:"partition"`
	// The decision, once the entry is resolved or dismissed.
	DecidedBy     string    `json:"decided_by,omitempty"`
	DecidedAt     time.Time `json:"decided_at,omitzero"`
	Choice        string    `json:"choice,omitempty"`
	DismissReason string    `json:"dismiss_reason,omitempty"`
}

// Attached is a later change to held fields, attached to the entry.
type Attached struct {
	Version
	Cause string    `json:"cause"`
	At    time.Time `json:"at"`
}

// WholeRecord reports whether the entry holds the whole record rather than only its
// fields: a delete against an update, a delete of a held record, or a loop (the
// resolver's Hold.Record).
func (e *Entry) WholeRecord() bool {
	return slices.ContainsFunc(e.Reasons, resolver.HoldsRecord)
}

// Filter selects entries for List. The zero Filter selects every entry.
type Filter struct {
	Status string // only entries with this status; "" for any
	Field  string // only entries holding this canonical field; "" for any
	System string // only entries with a version of this system; "" for any
	Reason string // only entries with this reason among Reasons; "" for any
	// QueuedBefore, when set, keeps only entries queued before it (older than an age).
	QueuedBefore time.Time
}

func (f Filter) match(e *Entry) bool {
	if f.Reason != "" && !slices.Contains(e.Reasons, f.Reason) {
		return false
	}
	if !f.QueuedBefore.IsZero() && !e.QueuedAt.Before(f.QueuedBefore) {
		return false
	}
	if f.Field != "" && !slices.Contains(e.Fields, f.Field) {
		return false
	}
	if _, ok := e.Versions[f.System]; f.System != "" && !ok {
		return false
	}
	return f.Status == "" || e.Status == f.Status
}

// Held returns, per record, the fields held by pending entries, with "*" for a record
// held whole; what a divergence check sets aside.
func Held(entries []*Entry) map[string]map[string]bool {
	held := map[string]map[string]bool{}
	for _, e := range entries {
		if e.Status != StatusPending {
			continue
		}
		if held[e.Record] == nil {
			held[e.Record] = map[string]bool{}
		}
		for _, f := range e.Fields {
			held[e.Record][f] = true
		}
		if e.WholeRecord() {
			held[e.Record]["*"] = true
		}
	}
	return held
}
