package dlq

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/concord-sync/concord/codecs"
)

// Command is a reviewer's decision on its way to the pipeline, on the <name>.review
// topic, in the partition of the record's state (Partition): the record's owner
// applies it in order with the record's events.
type Command struct {
	EntryID   string                     `json:"entry_id"`
	Record    string                     `json:"record"`
	Rev       int64                      `json:"rev"` // the revision decided on
	Reviewer  string                     `json:"reviewer"`
	Values    map[string]json.RawMessage `json:"values,omitempty"` // field -> value for every system
	Delete    bool                       `json:"delete,omitempty"` // delete the record everywhere
	Dismiss   bool                       `json:"dismiss,omitempty"`
	Partition int32                      `json:"partition"`
	At        time.Time                  `json:"at"`
}

// Service is the review side of the DLQ: what the CLI and the web page call.
// It is safe for concurrent use.
type Service struct {
	store  *Store
	shared []string // shared canonical fields, for authority suggestions
	now    func() time.Time
	// flush, when set, produces the outbox right after a decision, so the pipeline
	// gets it at once; the pipeline also drains the outbox on its own.
	flush func(context.Context) error
}

// NewService returns the review service over a store. shared lists the fields whose
// authority is shared (pattern suggestions are made for them); flush may be nil.
func NewService(store *Store, shared []string, flush func(context.Context) error) *Service {
	return &Service{store: store, shared: shared, now: time.Now, flush: flush}
}

// List implements the review page's and CLI's listing, oldest first.
func (s *Service) List(ctx context.Context, f Filter) ([]*Entry, error) { return s.store.List(ctx, f) }

// Get returns one entry.
func (s *Service) Get(ctx context.Context, id string) (*Entry, error) { return s.store.Get(ctx, id) }

// Audit returns the audit trail, newest first.
func (s *Service) Audit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	return s.store.Audit(ctx, f)
}

// Patterns returns the recurring conflicts and authority suggestions.
func (s *Service) Patterns(ctx context.Context) (*Patterns, error) {
	return s.store.Patterns(ctx, s.shared)
}

// History returns the last minutes' events, conflicts and DLQ depth, oldest first.
func (s *Service) History(ctx context.Context, minutes int) ([]Point, error) {
	return s.store.History(ctx, s.now(), minutes)
}

// Summary returns the DLQ depth, the age of the oldest pending entry and the
// conflict rate.
func (s *Service) Summary(ctx context.Context) (*Summary, error) {
	return s.store.Summary(ctx, s.now())
}

// Resolve applies a reviewer's decision: exactly once even if several reviewers
// decide at the same moment (ErrDecided for the others), and never on an entry that
// changed since the reviewer loaded it (ErrStale). The values go to every system
// whose value differs, through the pipeline, with rule review.
func (s *Service) Resolve(ctx context.Context, r Resolution) (*Outcome, error) {
	e, err := s.store.Get(ctx, r.EntryID)
	if err != nil {
		return nil, err
	}
	values, del, choice, winner, err := decideValues(e, &r)
	if err != nil {
		return nil, err
	}
	now := s.now()
	cmd := Command{
		EntryID: e.ID, Record: e.Record, Rev: r.Rev, Reviewer: r.Reviewer, Values: values,
		Delete: del, Partition: e.Partition, At: now,
	}
	audit := AuditEntry{
		At: now, Kind: "resolve", Record: e.Record, EntryID: e.ID, Reviewer: r.Reviewer,
		Fields: e.Fields, Winner: winner, Losers: losers(e, &r, values), Rule: "review", Choice: choice, Values: values,
		Reason: r.Note,
	}
	if err := s.decide(ctx, e, StatusResolved, choice, "", cmd, audit); err != nil {
		return nil, err
	}
	e.Status, e.DecidedBy, e.Choice, e.DecidedAt = StatusResolved, r.Reviewer, choice, now
	return &Outcome{Entry: e, Values: values}, nil
}

// Dismiss closes an entry without applying anything; the held fields are released.
func (s *Service) Dismiss(ctx context.Context, d Dismissal) error {
	if strings.TrimSpace(d.Reason) == "" {
		return fmt.Errorf("%w: a dismissal needs a reason", ErrInvalid)
	}
	e, err := s.store.Get(ctx, d.EntryID)
	if err != nil {
		return err
	}
	now := s.now()
	cmd := Command{EntryID: e.ID, Record: e.Record, Rev: d.Rev, Reviewer: d.Reviewer, Dismiss: true, Partition: e.Partition, At: now}
	audit := AuditEntry{
		At: now, Kind: "dismiss", Record: e.Record, EntryID: e.ID, Reviewer: d.Reviewer,
		Fields: e.Fields, Reason: d.Reason, Choice: "dismiss",
	}
	return s.decide(ctx, e, StatusDismissed, "dismiss", d.Reason, cmd, audit)
}

// decide records the decision cmd carries (its revision, reviewer and time) on e.
func (s *Service) decide(ctx context.Context, e *Entry, status, choice, reason string, cmd Command, audit AuditEntry) error {
	b, err := json.Marshal(cmd)
	if err != nil {
		return fmt.Errorf("dlq: review command: %w", err)
	}
	err = s.store.decide(ctx, decision{
		entryID: e.ID, status: status, reviewer: cmd.Reviewer, choice: choice,
		dismissReason: reason, rev: cmd.Rev, at: cmd.At, command: b, audit: audit,
	})
	if err != nil {
		return err
	}
	if err := s.store.countReview(ctx, &audit); err != nil {
		return err
	}
	if s.flush != nil {
		// The decision is recorded; if producing fails now the pipeline's own outbox
		// drain sends it later.
		_ = s.flush(ctx)
	}
	return nil
}

// decideValues checks a resolution against the entry and returns the value of every
// field, whether the record is deleted instead, a text for the audit trail and the
// winning system (when one system's version won every field).
func decideValues(e *Entry, r *Resolution) (map[string]json.RawMessage, bool, string, string, error) {
	if r.Pick != "" && (len(r.Fields) > 0 || len(r.Values) > 0) {
		return nil, false, "", "", fmt.Errorf("%w: pick one system or choose per field, not both", ErrInvalid)
	}
	if r.Pick != "" {
		v, ok := e.Versions[r.Pick]
		if !ok {
			return nil, false, "", "", fmt.Errorf("%w: the entry has no version of %q (it has %s)", ErrInvalid, r.Pick, strings.Join(slices.Sorted(maps.Keys(e.Versions)), ", "))
		}
		if v.Deleted {
			return nil, true, "pick:" + r.Pick, r.Pick, nil
		}
		values := map[string]json.RawMessage{}
		for _, f := range e.Fields {
			val, ok := v.Values[f]
			if !ok && !e.WholeRecord() {
				return nil, false, "", "", fmt.Errorf("%w: %s's version has no value of %s; choose per field", ErrInvalid, r.Pick, f)
			}
			if ok {
				values[f] = val
			}
		}
		for f, val := range v.Values { // a whole-record entry: the version's every field
			if e.WholeRecord() {
				values[f] = val
			}
		}
		return values, false, "pick:" + r.Pick, r.Pick, nil
	}
	values := map[string]json.RawMessage{}
	var parts []string
	for _, f := range e.Fields {
		sys, bySystem := r.Fields[f]
		raw, byValue := r.Values[f]
		switch {
		case bySystem && byValue:
			return nil, false, "", "", fmt.Errorf("%w: field %s has both a system and a value", ErrInvalid, f)
		case bySystem:
			v, ok := e.Versions[sys].Values[f]
			if !ok {
				return nil, false, "", "", fmt.Errorf("%w: %s has no version of field %s", ErrInvalid, sys, f)
			}
			values[f] = v
			parts = append(parts, f+"="+sys)
		case byValue:
			canon, err := codecs.Canonicalize(raw)
			if err != nil {
				return nil, false, "", "", fmt.Errorf("%w: the value of %s is not JSON (a string needs quotes): %w", ErrInvalid, f, err)
			}
			values[f] = canon
			parts = append(parts, f+"=value")
		default:
			return nil, false, "", "", fmt.Errorf("%w: no choice for field %s", ErrInvalid, f)
		}
	}
	for f := range r.Fields {
		if !slices.Contains(e.Fields, f) {
			return nil, false, "", "", fmt.Errorf("%w: %s is not a field of the entry (%s)", ErrInvalid, f, strings.Join(e.Fields, ", "))
		}
	}
	for f := range r.Values {
		if !slices.Contains(e.Fields, f) {
			return nil, false, "", "", fmt.Errorf("%w: %s is not a field of the entry (%s)", ErrInvalid, f, strings.Join(e.Fields, ", "))
		}
	}
	winner := ""
	if systems := slices.Compact(slices.Sorted(maps.Values(r.Fields))); len(systems) == 1 && len(r.Values) == 0 {
		winner = systems[0]
	}
	return values, false, strings.Join(parts, ","), winner, nil
}

// losers are the systems whose version of some field was not chosen.
func losers(e *Entry, r *Resolution, values map[string]json.RawMessage) []string {
	var out []string
	for _, sys := range slices.Sorted(maps.Keys(e.Versions)) {
		v := e.Versions[sys]
		for f, val := range values {
			if have, ok := v.Values[f]; ok && string(have) != string(val) {
				out = append(out, sys)
				break
			}
		}
		if r.Pick != "" && sys != r.Pick && v.Deleted {
			out = append(out, sys)
		}
	}
	return slices.Compact(out)
}
