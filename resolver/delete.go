package resolver

import "slices"

// resolveDelete decides a delete from the event's system.
func (d *decider) resolveDelete() {
	acked := d.acked()
	echo := acked != nil && acked.Delete
	if !echo {
		d.closeWindowForDelete() // before the system is marked deleted: it still holds the row
	}
	st, ss := d.st, d.ss
	ss.Known, ss.Deleted = true, true
	ss.Seen = ss.Seen[:0]
	if !echo {
		// The row is gone: a delete on its way to it may delete nothing, and an
		// uncertain upsert has landed already or, landing now, re-creates the row
		// (then it is a late write, repaired).
		// An uncertain upsert after the last delete on its way is certain now: it
		// inserts into a row that is gone.
		lastDelete := -1
		for i := range ss.InFlight {
			if a := &ss.InFlight[i]; a.live() && a.Delete {
				lastDelete = i
			}
		}
		for i := range ss.InFlight {
			switch a := &ss.InFlight[i]; {
			case !a.live():
			case a.Delete:
				a.Uncertain = true
			case a.Uncertain && i < lastDelete:
				a.Expired = true
			case a.Uncertain && lastDelete < 0:
				a.Expired = true
			default:
				a.Uncertain = false
			}
		}
	}
	switch {
	case echo && acked.Expired:
		d.repairLate(acked, false)
		return
	case echo:
		return // the echo of our own delete
	case st.Hold != nil:
		// A delete of a record under review: the whole record waits for the reviewer.
		d.raise(ReasonDeleteHeld, st.agreedNames(), []Version{{System: d.origin, TsUs: d.originTs, Deleted: true}}, nil)
		return
	}
	if up := latestUpsert(st, ss); up != nil {
		d.deleteVersusUpdate(up)
		return
	}
	if st.Deleted || !d.r.propagateDeletes {
		// Not propagated, but an apply on its way would re-create the row the system
		// deleted (an insert with the columns it does not carry NULL): a delete
		// follows it there.
		if ss.present() && !d.loopGuard(1) {
			d.send(ss.Name, true, nil, RuleSync, "")
		}
		return
	}
	d.propagateDelete(RuleSync)
}

// closeWindowForDelete closes the pairing window before a delete is decided: every
// held change is decided now, as it would have been without a window, so the
// deleting system's own earlier changes are not lost and other systems' changes meet
// the delete as concurrent updates.
func (d *decider) closeWindowForDelete() {
	st := d.st
	held := st.Pending
	st.Pending = nil
	// Each flush decides with a decider of its own, which must not reuse the memory
	// of this one's decided values (Output.decided): it gets memory of its own.
	mine := d.out.decided
	d.out.decided = nil
	for i := range held {
		d.r.flushPending(d.nowMs, st, &held[i], d.out)
	}
	d.out.decided = mine
	d.ss = st.system(d.ch.System) // flushing may have grown st.Systems
}

// latestUpsert returns another system's change the system deleted the record without
// having seen: the latest live apply carrying another system's change, unless the
// last live apply is a delete (then the record ends deleted there, as agreed). An
// apply carrying the system's own value back to it is no other system's change.
func latestUpsert(st *State, ss *SystemState) *Apply {
	for i := len(ss.InFlight) - 1; i >= 0; i-- {
		a := &ss.InFlight[i]
		switch {
		case !a.live():
		case a.Delete:
			return nil // what comes before it ends deleted
		case st.carriesOther(a, ss.Name):
			return a
		}
	}
	return nil
}

// propagateDelete makes the delete agreed and sends it to every system that will
// still hold the record, the origin included when an in-flight apply would re-create it.
func (d *decider) propagateDelete(rule Rule) {
	st := d.st
	// The agreed image is kept (marked deleted): a concurrent update that wins
	// (update_wins) or a reviewer re-creates the record from it. A genuine create
	// starts a new one.
	st.Deleted, st.DeletedMs = true, d.nowMs
	targets := 0
	for i := range d.r.systems {
		if st.system(d.r.systems[i].name).present() {
			targets++
		}
	}
	if targets == 0 || d.loopGuard(targets) {
		return
	}
	for i := range d.r.systems {
		name := d.r.systems[i].name
		if st.system(name).present() {
			d.send(name, true, nil, rule, "")
		}
	}
}

// deleteVersusUpdate decides a delete made concurrently with an update (the system
// deleted the record before our apply of another system's update reached it).
func (d *decider) deleteVersusUpdate(up *Apply) {
	st := d.st
	fields := st.agreedNames()
	switch d.r.deletes {
	case DeletesDeleteWins:
		for _, loser := range updaters(st, d.ss) {
			d.out.add(Decision{Kind: KindConflict, Record: st.Record, System: d.origin, ConflictFields: fields, Winner: d.origin, Loser: loser, Rule: RuleDeleteWins})
		}
		d.propagateDelete(RuleDeleteWins)
	case DeletesUpdateWins:
		d.out.add(Decision{Kind: KindConflict, Record: st.Record, System: d.origin, ConflictFields: fields, Winner: up.Origin, Loser: d.origin, Rule: RuleUpdateWins})
		if image := st.agreedValues(); len(image) > 0 && !d.loopGuard(1) {
			d.sendAs(up.Origin, up.TsUs, d.ss.Name, false, image, RuleUpdateWins, "")
		}
	default:
		other := Version{System: up.Origin, TsUs: up.TsUs, Fields: st.agreedValues()}
		if len(other.Fields) == 0 {
			other.Fields = up.Fields
		}
		d.raise(ReasonDeleteVsUpdate, fields, []Version{{System: d.origin, TsUs: d.originTs, Deleted: true}, other}, nil)
	}
}

// updateVersusDelete decides an update made concurrently with a delete (the system
// changed the record before our apply of another system's delete reached it).
func (d *decider) updateVersusDelete(del *Apply) {
	st, ch := d.st, d.ch
	names := make([]string, 0, len(ch.After))
	for _, v := range ch.After {
		if class, _ := d.r.classify(v.Name); class != classUnmapped {
			names = append(names, v.Name)
		}
	}
	switch {
	case d.r.deletes == DeletesDeleteWins:
		d.out.add(Decision{Kind: KindConflict, Record: st.Record, System: d.origin, ConflictFields: names, Winner: del.Origin, Loser: d.origin, Rule: RuleDeleteWins})
	case d.r.deletes == DeletesUpdateWins && d.rowUnknown():
		// The winning row cannot be rebuilt: a field of it was not sent (an
		// unchanged TOASTed column) and its value is not kept. A person decides.
		d.raise(ReasonDeleteVsUpdate, names, []Version{
			{System: d.origin, TsUs: d.originTs, Fields: ch.After},
			{System: del.Origin, TsUs: del.TsUs, Deleted: true},
		}, nil)
	case d.r.deletes == DeletesUpdateWins:
		d.out.add(Decision{Kind: KindConflict, Record: st.Record, System: d.origin, ConflictFields: names, Winner: d.origin, Loser: del.Origin, Rule: RuleUpdateWins})
		st.Deleted = false
		// The update wins over the delete; each of its fields is still decided
		// against other systems' changes it was made concurrently with (another
		// system's create on its way, say), now, not held in the pairing window.
		d.noHold, d.creating = true, true // the row is re-created where the delete lands
		for i := range ch.After {
			v := &ch.After[i]
			if class, _ := d.r.classify(v.Name); class == classUnmapped {
				continue
			}
			if _, changed := findValue(d.changes, v.Name); changed {
				d.resolveField(v)
				continue
			}
			// A field the update left alone: the agreed value stands where the row
			// shows it. Against another value on its way there, the row's value is
			// decided as a change (it was never decided against it, say from a
			// snapshot); with none, the row's own value is the winning version's.
			a := st.agreed(v.Name)
			switch other := d.concurrentWith(v.Name); {
			case a != nil && a.FP == v.FP, st.held(v.Name):
			case other != nil:
				if other.value.FP != v.FP {
					d.resolveField(v)
				}
			case a != nil:
				d.decide(v, RuleUpdateWins)
			}
		}
		if rank(RuleUpdateWins) >= rank(d.rule) {
			d.rule = RuleUpdateWins
		}
		d.fanOut(ch.After)
	default:
		d.raise(ReasonDeleteVsUpdate, names, []Version{
			{System: d.origin, TsUs: d.originTs, Fields: ch.After},
			{System: del.Origin, TsUs: del.TsUs, Deleted: true},
		}, nil)
	}
}

// updaters lists the other systems whose changes on their way to the system would
// leave it holding the record: each loses to a delete that wins.
func updaters(st *State, ss *SystemState) []string {
	var names []string
	for i := len(ss.InFlight) - 1; i >= 0; i-- {
		a := &ss.InFlight[i]
		if !a.live() {
			continue
		}
		if a.Delete {
			return names
		}
		for j := range a.Fields {
			if w, _ := st.writerOf(a, &a.Fields[j]); w != ss.Name && !slices.Contains(names, w) {
				names = append(names, w)
			}
		}
	}
	return names
}

// rowUnknown reports whether the event's system showed a synced field the event does
// not carry (its value was not sent) whose value concord does not keep either.
func (d *decider) rowUnknown() bool {
	for _, f := range d.ss.Seen {
		if _, ok := findValue(d.ch.After, f.Name); ok {
			continue
		}
		if class, _ := d.r.classify(f.Name); class == classUnmapped {
			continue
		}
		if a := d.st.agreed(f.Name); a == nil || a.Value == nil || a.FP != f.FP {
			return true
		}
	}
	return false
}

func (s *State) agreedNames() []string {
	names := make([]string, len(s.Agreed))
	for i := range s.Agreed {
		names[i] = s.Agreed[i].Name
	}
	return names
}

// agreedValues returns the agreed image's values, when they are kept.
func (s *State) agreedValues() []Value {
	vals := make([]Value, 0, len(s.Agreed))
	for _, a := range s.Agreed {
		if a.Value != nil {
			vals = append(vals, Value{Name: a.Name, FP: a.FP, Value: a.Value})
		}
	}
	return vals
}
