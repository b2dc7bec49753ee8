package resolver

import (
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/concord-sync/concord/codecs"
)

// Review is a reviewer's decision on a DLQ entry, as the pipeline applies it to the
// record's state.
type Review struct {
	EntryID string
	Rev     uint32  // the entry revision the reviewer decided on
	Values  []Value // field -> the value every system gets (canonical names)
	Delete  bool    // the record is deleted everywhere instead
	Release bool    // dismissed: release the hold, apply nothing
}

// ReasonReviewStale means a change was attached to the entry after the reviewer's decision
// was made and before it reached the record; the decision is not applied and the
// entry goes back to review.
const ReasonReviewStale = "review_stale"

// SystemReview is the origin of applies a review decided.
const SystemReview = "review"

// ApplyReview applies a reviewer's decision to a record: the chosen values become
// agreed and are applied (rule review) to every system whose expected value differs,
// and the held fields are released. A decision on an entry the record is no longer
// held under (already applied, or superseded) changes nothing; one made on an older
// revision than the hold's (a change was attached since) is refused with a DLQ
// decision of reason review_stale, which re-opens the entry.
func (r *Resolver) ApplyReview(now time.Time, st *State, rv *Review, out *Output) {
	r.Expire(now, st, out)
	if st.Unconfirmed == rv.EntryID && (st.Hold == nil || st.Hold.EntryID != rv.EntryID) {
		r.reviewUnconfirmed(now, st, rv, out)
		return
	}
	if st.Hold == nil || st.Hold.EntryID != rv.EntryID {
		out.add(Decision{Kind: KindIgnored, Record: st.Record, System: SystemReview, Reason: "review_applied", EntryID: rv.EntryID})
		return
	}
	d := decider{
		r: r, st: st, out: out, nowMs: now.UnixMilli(), origin: SystemReview,
		originTs: now.UnixMicro(), pos: reviewPosition(rv.EntryID, st.Hold.Changes),
	}
	if rv.Rev < st.Hold.Changes {
		st.Hold.Changes++
		out.add(Decision{
			Kind: KindDLQ, Record: st.Record, System: SystemReview, EntryID: rv.EntryID,
			ConflictFields: st.Hold.Fields, Reason: ReasonReviewStale,
		})
		return
	}
	hold := st.Hold
	st.Hold = nil
	if rv.Release {
		return
	}
	if rv.Delete {
		d.propagateDelete(RuleReview)
		return
	}
	st.Deleted = false
	for i := range rv.Values {
		d.decideFor(SystemReview, d.originTs, &rv.Values[i], RuleReview)
	}
	d.rule = RuleReview
	d.fanOut(rv.Values)
	if !hold.Record {
		// Fields held but not decided by this review stay held under the entry.
		var rest []string
		for _, f := range hold.Fields {
			if _, ok := findValue(rv.Values, f); !ok {
				rest = append(rest, f)
			}
		}
		if len(rest) > 0 {
			hold.Fields = rest
			st.Hold = hold
		}
	}
}

// reviewUnconfirmed applies a decision on the record's apply_unconfirmed entry, which
// holds nothing: the entry closes, and chosen values are applied like any review's.
func (r *Resolver) reviewUnconfirmed(now time.Time, st *State, rv *Review, out *Output) {
	st.Unconfirmed = ""
	d := decider{
		r: r, st: st, out: out, nowMs: now.UnixMilli(), origin: SystemReview,
		originTs: now.UnixMicro(), pos: reviewPosition(rv.EntryID, rv.Rev),
	}
	switch {
	case rv.Release:
	case rv.Delete:
		d.propagateDelete(RuleReview)
	default:
		for i := range rv.Values {
			d.decideFor(SystemReview, d.originTs, &rv.Values[i], RuleReview)
		}
		d.rule = RuleReview
		d.fanOut(rv.Values)
	}
}

// reviewPosition stands in for a source position in the ids of a review's applies.
func reviewPosition(entryID string, rev uint32) codecs.Position {
	return codecs.Position{Kind: codecs.PosNone, A: xxhash.Sum64String(entryID), B: uint64(rev)}
}
