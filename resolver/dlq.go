package resolver

import "slices"

// HoldsRecord reports whether a DLQ reason holds the whole record, not only the
// fields named: a delete against an update, a delete of a record under review, a
// loop, a delete that may be concord's own landing late.
func HoldsRecord(reason string) bool {
	switch reason {
	case ReasonDeleteVsUpdate, ReasonDeleteHeld, ReasonLoop, ReasonPossibleRedelivery:
		return true
	}
	return false
}

// raise sends fields to the DLQ and holds them: one entry per record, so a record
// already under review gains the fields in its existing entry. Reasons that concern
// the whole record (a delete against an update, a loop) hold every field.
func (d *decider) raise(reason string, fields []string, versions []Version, base []Value) {
	st := d.st
	if st.Hold == nil {
		st.Hold = &Hold{EntryID: entryID(st.Record, d.origin, d.pos, reason)}
	}
	if HoldsRecord(reason) {
		st.Hold.Record = true
	}
	st.Hold.Changes++
	for _, f := range fields {
		if !slices.Contains(st.Hold.Fields, f) {
			st.Hold.Fields = append(st.Hold.Fields, f)
		}
	}
	d.out.add(Decision{
		Kind: KindDLQ, Record: st.Record, System: d.origin, EntryID: st.Hold.EntryID,
		ConflictFields: fields, Reason: reason, Versions: versions, Base: base,
	})
}

// attach adds a later change to held fields to the record's DLQ entry, so the entry
// always shows each system's latest version and nothing is lost while it waits.
func (d *decider) attach(vals []Value) {
	d.st.Hold.Changes++
	names := make([]string, len(vals))
	for i, v := range vals {
		names[i] = v.Name
	}
	d.out.add(Decision{
		Kind: KindDLQ, Record: d.st.Record, System: d.origin, EntryID: d.st.Hold.EntryID,
		ConflictFields: names, Reason: ReasonAttached,
		Versions: []Version{{System: d.origin, TsUs: d.originTs, Fields: vals}},
	})
}

// unconfirmed reports an apply that was never seen back within apply_timeout. The
// fields are not held (the sink may simply have been down); the entry asks a person
// to check the target.
func (d *decider) unconfirmed(target string, a *Apply) {
	names := make([]string, len(a.Fields))
	for i, v := range a.Fields {
		names[i] = v.Name
	}
	var id string
	switch {
	case d.st.Hold != nil:
		id = d.st.Hold.EntryID
		d.st.Hold.Changes++
	case d.st.Unconfirmed != "":
		id = d.st.Unconfirmed // one open entry per record
	default:
		id = entryID(d.st.Record, target, d.pos, a.EventID)
		d.st.Unconfirmed = id
	}
	d.out.add(Decision{
		Kind: KindDLQ, Record: d.st.Record, System: a.Origin, EntryID: id,
		ConflictFields: names, Reason: ReasonApplyUnconfirmed, Target: target, EventID: a.EventID,
		Versions: []Version{{System: a.Origin, TsUs: a.TsUs, Deleted: a.Delete, Fields: a.Fields}},
	})
}

// repairLate puts right what an apply that landed late overwrote. An expired apply
// (past apply_timeout, or passed by an event taken for a later apply's echo) may
// land after newer values were agreed: the system is sent the agreed values again
// (rule repair), or the delete again; where the agreed values are not kept, the
// fields go to review (reason stale_write), and so does a late delete of a record
// that lives on (possible_redelivery). gone says the system had deleted the row the
// late write re-created.
func (d *decider) repairLate(a *Apply, gone bool) {
	st, ss := d.st, d.ss
	switch {
	case (st.Deleted || gone && !a.Recreate) && !a.Delete:
		if d.reviveGhostDelete() {
			return
		}
		if ss.lastLive() == nil && !d.loopGuard(1) {
			d.sendAs(d.origin, d.originTs, ss.Name, true, nil, RuleRepair, ReasonStaleWrite)
		}
		return
	case a.Delete && !st.Deleted:
		// The row lives on elsewhere: this delete is concord's landing late (then
		// the row should be re-created) or the system's own delete of the row it
		// has (then it should propagate), and nothing tells which.
		d.raise(ReasonPossibleRedelivery, st.agreedNames(), []Version{{System: ss.Name, TsUs: d.ch.TsUs, Deleted: true}}, nil)
		return
	case a.Delete:
		return
	}
	var fix []Value
	var stale []string
	writer, ts := d.origin, d.originTs
	for _, v := range a.Fields {
		ag := st.agreed(v.Name)
		switch {
		case ag == nil || ag.FP == v.FP || ss.holds(v.Name, ag.FP):
		case ag.Value == nil:
			stale = append(stale, v.Name)
		default:
			fix = append(fix, Value{Name: v.Name, FP: ag.FP, Value: ag.Value})
			writer, ts = ag.Writer, ag.TsUs
		}
	}
	if len(stale) > 0 {
		d.raise(ReasonStaleWrite, stale, []Version{{System: ss.Name, TsUs: d.ch.TsUs, Fields: pick(d.ch.After, stale)}}, nil)
	}
	if len(fix) > 0 && ss.present() && !d.loopGuard(1) {
		d.sendAs(writer, ts, ss.Name, false, fix, RuleRepair, ReasonStaleWrite)
	}
}

// reviveGhostDelete makes a delete taken as landed (an expired, uncertain one: the
// system's own delete was taken for its echo) expected again: a late write just
// re-created the row, so that delete, still to land, removes it. It reports whether
// there was one.
func (d *decider) reviveGhostDelete() bool {
	for i := range d.ss.InFlight {
		if a := &d.ss.InFlight[i]; a.Delete && !a.live() && a.Uncertain {
			a.Expired = false
			return true
		}
	}
	return false
}
