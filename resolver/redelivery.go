package resolver

import (
	"slices"

	"github.com/concord-sync/concord/codecs"
)

// land records an apply the event was taken for the echo of as written to the
// system, so that a sink writing it again later is recognised (see Landed).
func (ss *SystemState) land(a *Apply) {
	if a.Delete {
		return
	}
	var fields []string
	if len(ss.Landed) == maxLanded {
		fields = ss.Landed[0].Fields[:0] // the oldest is forgotten: reuse its memory
		ss.Landed = append(ss.Landed[:0], ss.Landed[1:]...)
	}
	var fp uint64
	for _, f := range a.Fields {
		fields = append(fields, f.Name)
		fp = LandedFP(fp, f.FP)
	}
	ss.Landed = append(ss.Landed, Landed{EventID: a.EventID, SentMs: a.SentMs, Fields: fields, FP: fp})
}

// pruneLanded forgets landed applies older than a late echo may be (lateEchoMs).
func (r *Resolver) pruneLanded(nowMs int64, ss *SystemState) {
	kept := ss.Landed[:0]
	for _, l := range ss.Landed {
		if l.SentMs+r.lateEchoMs() > nowMs {
			kept = append(kept, l)
		}
	}
	ss.Landed = kept
}

// rewritten returns the landed apply this event writes again, or nil: its changes
// are some of that apply's fields set back to the apply's values, it changes nothing
// else, and (with an origin marker) it carries that apply's id. changes are the
// event's changed fields.
func (d *decider) rewritten(changes []Value) *Landed {
	if len(changes) == 0 || d.ch.Op == codecs.OpRead {
		return nil
	}
	marker := d.r.system(d.ch.System).marker != ""
	for i := len(d.ss.Landed) - 1; i >= 0; i-- {
		l := &d.ss.Landed[i]
		if marker && d.ch.Marker != l.EventID {
			continue
		}
		if writes(l, changes, d.ch.After, d.ch.Op == codecs.OpCreate) {
			return l
		}
	}
	return nil
}

// rewritesLanded reports whether an insert is a landed apply written again: every
// value it shows but NULLs is that apply's.
func (d *decider) rewritesLanded() bool {
	if d.ch.Op != codecs.OpCreate {
		return false
	}
	return d.rewritten(d.ch.After) != nil
}

// writes reports whether an image is what writing the landed apply again commits:
// each change is one of its fields (or, for an insert re-creating a deleted row, a
// NULL the insert leaves in the columns it does not set), and the image shows every
// one of its fields at its value. A sink's rewrite assigns each of the apply's
// columns, and PostgreSQL logs a column an UPDATE assigns in full, even to the value
// it had and even when TOASTed (internal/world's
// TestPostgreSQLLogsToastedColumnsAsTheEmulationDoes, against a real server); an
// image without one of them is another write. changes' values are the image's.
func writes(l *Landed, changes, after []Value, insert bool) bool {
	for _, c := range changes {
		if insert && c.FP == nullFP {
			continue // a column the insert leaves NULL
		}
		if !slices.ContainsFunc(l.Fields, func(n string) bool { return sameName(n, c.Name) }) {
			return false
		}
	}
	var fp uint64
	for _, name := range l.Fields {
		v, ok := findValue(after, name)
		if !ok {
			return false
		}
		fp = LandedFP(fp, v.FP)
	}
	return fp == l.FP
}

// redelivered decides a rewrite of a landed apply (an at-least-once sink writing it
// again after a restart): it is never the system's change, never wins and is never
// propagated. What it overwrote is put right as a late echo's is (repairLate: the
// agreed values re-applied, rule repair) when the rewrite is certain: the system's
// origin marker named another apply before, and the rewrite put this one's id back,
// which no user's edit does. Otherwise (no marker, or the marker unchanged, as a
// user's edit of a row leaves it) an edit setting those fields back to those values
// cannot be told from it, and the fields it set back go to review with reason
// possible_redelivery. A rewrite that sets nothing but agreed values changes nothing
// that matters. gone says the system had deleted the row the rewrite re-created.
func (d *decider) redelivered(l *Landed, prevMarkerFP uint64, gone bool) {
	// The image shows the apply's values (writes): they are what it wrote.
	written := pick(d.ch.After, l.Fields)
	var stale []string
	for _, f := range written {
		if ag := d.st.agreed(f.Name); ag != nil && ag.FP != f.FP {
			stale = append(stale, f.Name)
		}
	}
	reborn := gone || d.st.Deleted
	if len(stale) == 0 && !reborn {
		d.out.add(Decision{Kind: KindDuplicate, Record: d.st.Record, System: d.ch.System, Reason: ReasonRedelivery, EventID: l.EventID})
		return
	}
	if d.r.system(d.ch.System).marker != "" && prevMarkerFP != fingerprintText(l.EventID) {
		d.repairLate(&Apply{EventID: l.EventID, SentMs: l.SentMs, Fields: written, Expired: true}, gone)
		return
	}
	if reborn {
		stale = d.st.agreedNames()
	}
	d.raise(ReasonPossibleRedelivery, stale, []Version{{System: d.ch.System, TsUs: d.ch.TsUs, Fields: pick(d.ch.After, stale)}}, d.st.agreedValues())
}
