package dlq

import (
	"encoding/json"
	"time"
)

// Change is one DLQ decision of the resolver to record: a new entry, fields joining an
// entry, or a later change attached to one. Recording the same Change twice (a batch
// reprocessed after a crash) has the effect of recording it once: Cause identifies it.
type Change struct {
	EntryID  string
	Record   string
	Reason   string   // clock_skew, delete_vs_update, initial_divergence, loop, apply_unconfirmed, delete_held, attached, stale_write, possible_redelivery, type_mismatch
	Fields   []string // canonical field names concerned
	Versions []Version
	Base     map[string]json.RawMessage // the value before the conflict, where known
	Cause    string                     // "<system>@<position>" of the event that caused it
	Target   string                     // apply_unconfirmed: the system that never confirmed
	EventID  string                     // apply_unconfirmed: the apply's event id
	At       time.Time                  // processing time of the cause
	// Partition is the input partition the record's state lives in: where a review
	// decision must be sent so the record's owner applies it in order.
	Partition int32
}

// Version is one system's version of the entry's fields.
type Version struct {
	System  string                     `json:"system"`
	TsUs    int64                      `json:"ts_us"`
	Deleted bool                       `json:"deleted,omitempty"`
	Values  map[string]json.RawMessage `json:"values,omitempty"` // canonical field -> canonical JSON
}

// Entry statuses.
const (
	StatusPending   = "pending_review"
	StatusResolved  = "resolved"
	StatusDismissed = "dismissed"
)
