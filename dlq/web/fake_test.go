package web

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/concord-sync/concord/dlq"
)

// fakeReviews is an in-memory Reviews that records every decision it is asked for.
// Resolve and Dismiss refuse as the DLQ does: ErrNotFound, ErrDecided for an entry no
// longer pending, ErrStale for an older rev; failWith makes the next one fail with it.
type fakeReviews struct {
	mu          sync.Mutex
	entries     []*dlq.Entry // oldest first
	audit       []dlq.AuditEntry
	summary     dlq.Summary
	patterns    dlq.Patterns
	resolutions []dlq.Resolution
	dismissals  []dlq.Dismissal
	filters     []dlq.Filter
	history     []dlq.Point
	failWith    error
}

var _ Reviews = (*fakeReviews)(nil)

func (f *fakeReviews) List(_ context.Context, flt dlq.Filter) ([]*dlq.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.filters = append(f.filters, flt)
	var out []*dlq.Entry
	for _, e := range f.entries {
		_, hasSystem := e.Versions[flt.System]
		if (flt.Status == "" || e.Status == flt.Status) &&
			(flt.Field == "" || slices.Contains(e.Fields, flt.Field)) &&
			(flt.System == "" || hasSystem) {
			out = append(out, e)
		}
	}
	return out, nil
}

func (f *fakeReviews) Get(_ context.Context, id string) (*dlq.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.get(id)
}

func (f *fakeReviews) get(id string) (*dlq.Entry, error) {
	for _, e := range f.entries {
		if e.ID == id {
			return e, nil
		}
	}
	return nil, fmt.Errorf("get %q: %w", id, dlq.ErrNotFound)
}

// decide applies the checks every decision goes through.
func (f *fakeReviews) decide(id string, rev int64) (*dlq.Entry, error) {
	if err := f.failWith; err != nil {
		f.failWith = nil
		return nil, err
	}
	e, err := f.get(id)
	if err != nil {
		return nil, err
	}
	if e.Status != dlq.StatusPending {
		return nil, fmt.Errorf("entry %s: %w", id, dlq.ErrDecided)
	}
	if rev < e.Rev {
		return nil, fmt.Errorf("entry %s rev %d < %d: %w", id, rev, e.Rev, dlq.ErrStale)
	}
	return e, nil
}

func (f *fakeReviews) Resolve(_ context.Context, r dlq.Resolution) (*dlq.Outcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resolutions = append(f.resolutions, r)
	e, err := f.decide(r.EntryID, r.Rev)
	if err != nil {
		return nil, err
	}
	values := map[string]json.RawMessage{}
	for _, field := range e.Fields {
		switch {
		case r.Pick != "":
			values[field] = e.Versions[r.Pick].Values[field]
		case r.Values[field] != nil:
			values[field] = r.Values[field]
		default:
			values[field] = e.Versions[r.Fields[field]].Values[field]
		}
	}
	e.Status = dlq.StatusResolved
	f.audit = append(f.audit, dlq.AuditEntry{
		ID: fmt.Sprint(len(f.audit)), At: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), Kind: "resolve",
		Record: e.Record, EntryID: e.ID, Reviewer: r.Reviewer, Fields: e.Fields, Rule: "review", Values: values,
	})
	return &dlq.Outcome{Entry: e, Values: values}, nil
}

func (f *fakeReviews) Dismiss(_ context.Context, d dlq.Dismissal) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dismissals = append(f.dismissals, d)
	e, err := f.decide(d.EntryID, d.Rev)
	if err != nil {
		return err
	}
	e.Status = dlq.StatusDismissed
	return nil
}

func (f *fakeReviews) Audit(_ context.Context, flt dlq.AuditFilter) ([]dlq.AuditEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []dlq.AuditEntry
	for i := len(f.audit) - 1; i >= 0; i-- { // newest first
		if a := f.audit[i]; flt.Record == "" || a.Record == flt.Record {
			out = append(out, a)
		}
	}
	return out, nil
}

func (f *fakeReviews) Patterns(context.Context) (*dlq.Patterns, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.patterns
	return &p, nil
}

func (f *fakeReviews) History(context.Context, int) ([]dlq.Point, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.history, nil
}

func (f *fakeReviews) Summary(context.Context) (*dlq.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.summary
	return &s, nil
}

// decisions returns copies of what was asked so far.
func (f *fakeReviews) decisions() ([]dlq.Resolution, []dlq.Dismissal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.resolutions), slices.Clone(f.dismissals)
}

func (f *fakeReviews) lastFilter() dlq.Filter {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.filters[len(f.filters)-1]
}

func (f *fakeReviews) setFail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failWith = err
}

// testNow is the fake clock: entries are queued relative to it.
var testNow = time.Date(2026, 5, 1, 15, 0, 0, 0, time.UTC)

const xss = `<script>alert(1)</script>`

func raw(s string) json.RawMessage { return json.RawMessage(s) }

// newFake returns a queue of three entries:
//   - e1: record 42, notes and email conflict between crm and billing (rev 3), with a
//     <script> value, an attached change and an audit line;
//   - e2: record 7, a delete against an update (whole record);
//   - e3: record 9, already resolved.
func newFake() *fakeReviews {
	e1 := &dlq.Entry{
		ID: "e1", Record: "42", Reason: "clock_skew", Reasons: []string{"clock_skew", "attached"},
		Status: dlq.StatusPending, Fields: []string{"notes", "email"},
		Versions: map[string]dlq.Version{
			"crm": {System: "crm", TsUs: 1777640400000000, Values: map[string]json.RawMessage{
				"notes": raw(`"called, wants annual plan"`), "email": raw(`"ann@example.com"`), "score": raw(`3`),
			}},
			"billing": {System: "billing", TsUs: 1777640400200000, Values: map[string]json.RawMessage{
				"notes": raw(`"` + `<script>alert(1)</script>` + `"`), "email": raw(`"ann@example.org"`), "score": raw(`3`),
			}},
		},
		Base: map[string]json.RawMessage{"notes": raw(`"new lead"`), "email": raw(`"ann@example.com"`)},
		Attached: []dlq.Attached{{
			Version: dlq.Version{System: "billing", TsUs: 1777640400200000, Values: map[string]json.RawMessage{"notes": raw(`"<script>alert(1)</script>"`)}},
			Cause:   "billing/0/17", At: testNow.Add(-3 * time.Hour),
		}},
		QueuedAt: testNow.Add(-(3*time.Hour + 12*time.Minute)), UpdatedAt: testNow.Add(-3 * time.Hour), Rev: 3,
	}
	e2 := &dlq.Entry{
		ID: "e2", Record: "7", Reason: "delete_vs_update", Reasons: []string{"delete_vs_update"},
		Status: dlq.StatusPending, Fields: []string{"name"},
		Versions: map[string]dlq.Version{
			"crm":     {System: "crm", TsUs: 1777640000000000, Deleted: true},
			"billing": {System: "billing", TsUs: 1777640000100000, Values: map[string]json.RawMessage{"name": raw(`"Bo"`)}},
		},
		QueuedAt: testNow.Add(-time.Hour), UpdatedAt: testNow.Add(-time.Hour), Rev: 1,
	}
	e3 := &dlq.Entry{
		ID: "e3", Record: "9", Reason: "clock_skew", Reasons: []string{"clock_skew"},
		Status: dlq.StatusResolved, Fields: []string{"notes"},
		Versions: map[string]dlq.Version{
			"crm":     {System: "crm", TsUs: 1, Values: map[string]json.RawMessage{"notes": raw(`"a"`)}},
			"billing": {System: "billing", TsUs: 2, Values: map[string]json.RawMessage{"notes": raw(`"b"`)}},
		},
		QueuedAt: testNow.Add(-30 * time.Minute), Rev: 2,
	}
	return &fakeReviews{
		entries: []*dlq.Entry{e1, e2, e3},
		audit: []dlq.AuditEntry{{
			ID: "1-0", At: testNow.Add(-3 * time.Hour), Kind: "dlq", Record: "42", EntryID: "e1", System: "billing",
			Fields: []string{"notes"}, Reason: "clock_skew", Values: map[string]json.RawMessage{"notes": raw(`"<script>alert(1)</script>"`)},
		}},
		summary: dlq.Summary{Depth: 2, OldestAge: 3*time.Hour + 12*time.Minute, ConflictRate: 12.5, Events: 8000, Conflicts: 100},
		patterns: dlq.Patterns{
			Records: []dlq.Count{{Name: "42", Count: 5}},
			Fields:  []dlq.Count{{Name: "notes", Count: 9}},
			Losers:  []dlq.Count{{Name: "crm", Count: 19}},
			Suggestions: []dlq.Suggestion{{
				Field: "notes", Owner: "billing", Wins: 19, Of: 20, Share: 0.95,
				Message: "billing wins notes 19 times out of 20: make billing its owner",
			}},
		},
	}
}

// ResolveAll mirrors dlq.Service.ResolveAll (tested against Redis in package dlq):
// each previewed entry on its previewed revision, the changed and decided skipped.
func (f *fakeReviews) ResolveAll(ctx context.Context, preview []dlq.Previewed, choose func(*dlq.Entry) (*dlq.Resolution, string)) (*dlq.BulkResult, error) {
	res := &dlq.BulkResult{}
	for _, p := range preview {
		e, err := f.Get(ctx, p.EntryID)
		if err != nil {
			return nil, err
		}
		switch {
		case e.Status != dlq.StatusPending:
			res.Skipped = append(res.Skipped, dlq.Skip{EntryID: p.EntryID, Why: "decided meanwhile"})
			continue
		case e.Rev != p.Rev:
			res.Skipped = append(res.Skipped, dlq.Skip{EntryID: p.EntryID, Why: "changed since the preview"})
			continue
		}
		r, why := choose(e)
		if r == nil {
			res.Skipped = append(res.Skipped, dlq.Skip{EntryID: p.EntryID, Why: why})
			continue
		}
		r.EntryID, r.Rev = p.EntryID, p.Rev
		if _, err := f.Resolve(ctx, *r); err != nil {
			return nil, err
		}
		res.Decided = append(res.Decided, p.EntryID)
	}
	return res, nil
}

// bump makes an entry change (a later change attached): its revision goes up.
func (f *fakeReviews) bump(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.entries {
		if e.ID == id {
			e.Rev++
		}
	}
}
