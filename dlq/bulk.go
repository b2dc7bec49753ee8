package dlq

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/concord-sync/concord/resolver"
)

// Previewed is a pending entry as a bulk preview saw it: a bulk decision acts on this
// revision only.
type Previewed struct {
	EntryID string `json:"entry_id"`
	Rev     int64  `json:"rev"`
}

// Preview lists the pending entries a bulk decision with filter f would act on,
// oldest first, each at the revision seen now.
func (s *Service) Preview(ctx context.Context, f Filter) ([]Previewed, error) {
	f.Status = StatusPending
	entries, err := s.store.List(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]Previewed, len(entries))
	for i, e := range entries {
		out[i] = Previewed{EntryID: e.ID, Rev: e.Rev}
	}
	return out, nil
}

// BulkResult is what a bulk decision did: the entries decided, and those skipped with
// why (changed since the preview, decided meanwhile, or not covered by the choice).
type BulkResult struct {
	Decided []string `json:"decided"`
	Skipped []Skip   `json:"skipped"`
}

// Skip is an entry a bulk decision left alone.
type Skip struct {
	EntryID string `json:"entry_id"`
	Why     string `json:"why"`
}

// ResolveAll resolves every previewed entry with the resolution choose gives for it
// (nil to leave it: skipped with why). Each entry keeps its own atomic, stale-safe
// decision and audit line: one that changed since the preview (a later change
// attached) or was decided meanwhile is skipped and reported, never decided blindly.
func (s *Service) ResolveAll(ctx context.Context, preview []Previewed, choose func(*Entry) (*Resolution, string)) (*BulkResult, error) {
	res := &BulkResult{}
	for _, p := range preview {
		e, err := s.store.Get(ctx, p.EntryID)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				res.Skipped = append(res.Skipped, Skip{p.EntryID, "no longer in the DLQ"})
				continue
			}
			return res, err
		}
		if why := unchanged(e, p); why != "" {
			res.Skipped = append(res.Skipped, Skip{p.EntryID, why})
			continue
		}
		r, why := choose(e)
		if r == nil {
			res.Skipped = append(res.Skipped, Skip{p.EntryID, why})
			continue
		}
		r.EntryID, r.Rev = e.ID, p.Rev // decided on the previewed revision, checked atomically
		if _, err := s.Resolve(ctx, *r); err != nil {
			if why := skipped(err); why != "" {
				res.Skipped = append(res.Skipped, Skip{p.EntryID, why})
				continue
			}
			return res, err
		}
		res.Decided = append(res.Decided, p.EntryID)
	}
	return res, nil
}

// DismissAll dismisses every previewed entry, as ResolveAll resolves them.
func (s *Service) DismissAll(ctx context.Context, preview []Previewed, reason, reviewer string) (*BulkResult, error) {
	res := &BulkResult{}
	for _, p := range preview {
		err := s.Dismiss(ctx, Dismissal{EntryID: p.EntryID, Rev: p.Rev, Reason: reason, Reviewer: reviewer})
		if why := skipped(err); why != "" {
			res.Skipped = append(res.Skipped, Skip{p.EntryID, why})
			continue
		}
		if err != nil {
			return res, err
		}
		res.Decided = append(res.Decided, p.EntryID)
	}
	return res, nil
}

// unchanged says why an entry is no longer what the preview saw, or "".
func unchanged(e *Entry, p Previewed) string {
	switch {
	case e.Status != StatusPending:
		return "decided meanwhile (" + e.Status + ")"
	case e.Rev != p.Rev:
		return fmt.Sprintf("changed since the preview (revision %d, previewed %d): review it again", e.Rev, p.Rev)
	}
	return ""
}

// skipped says why a decision error means skip rather than fail, or "".
func skipped(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrStale):
		return "changed since the preview: review it again"
	case errors.Is(err, ErrDecided):
		return "decided meanwhile"
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrNotFound):
		return err.Error()
	}
	return ""
}

// ReviewerConfig is the reviewer of decisions a re-evaluation takes.
const ReviewerConfig = "config"

// ByRules is the choice of a re-evaluation (concord dlq reevaluate): each entry the
// rules of res now decide (an authority change, a new tolerance or delete strategy;
// see resolver.Redecide) is resolved as they decide it, by reviewer "config", the
// audit entry naming the configuration revision; the rest are left (with why).
func ByRules(res *resolver.Resolver, revision string) func(*Entry) (*Resolution, string) {
	return func(e *Entry) (*Resolution, string) {
		d, ok := res.Redecide(e.Reasons, e.Fields, resolverVersions(e), e.WholeRecord())
		if !ok {
			return nil, "the rules do not decide it (" + strings.Join(e.Reasons, ", ") + ")"
		}
		r := &Resolution{Pick: d.Pick, Fields: d.Fields, Reviewer: ReviewerConfig}
		var rules []string
		for _, f := range slices.Sorted(maps.Keys(d.Rules)) {
			if f == "" {
				rules = append(rules, string(d.Rules[f]))
			} else {
				rules = append(rules, f+": "+string(d.Rules[f]))
			}
		}
		r.Note = "re-evaluated under configuration " + revision + " (" + strings.Join(rules, ", ") + ")"
		return r, ""
	}
}

func resolverVersions(e *Entry) []resolver.Version {
	out := make([]resolver.Version, 0, len(e.Versions))
	for _, sys := range slices.Sorted(maps.Keys(e.Versions)) {
		v := e.Versions[sys]
		rv := resolver.Version{System: sys, TsUs: v.TsUs, Deleted: v.Deleted}
		for _, f := range slices.Sorted(maps.Keys(v.Values)) {
			rv.Fields = append(rv.Fields, resolver.Value{Name: f, Value: v.Values[f]})
		}
		out = append(out, rv)
	}
	return out
}
