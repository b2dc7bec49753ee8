package resolver

import "slices"

// recordConcurrent reports, for granularity record, whether the event's change is
// concurrent with another system's change to any field of the record: one on its way
// to the event's system, or held in the pairing window. (An apply carrying the
// system's own value back to it, a winner re-applied, is not another's change.)
func (d *decider) recordConcurrent() bool {
	for i := range d.ss.InFlight {
		if d.othersChange(&d.ss.InFlight[i]) {
			return true
		}
	}
	for _, p := range d.st.Pending {
		if p.System != d.ch.System {
			return true
		}
	}
	return false
}

func setWriter(ws [][2]string, field, system string) [][2]string {
	for i := range ws {
		if ws[i][0] == field {
			ws[i][1] = system
			return ws
		}
	}
	return append(ws, [2]string{field, system})
}

type writerFields struct {
	system string
	fields []string
}

// groupByWriter groups fields by the system that wrote each (fallback for a field
// the other side did not set: the row's winner).
func groupByWriter(names []string, writers [][2]string, fallback string) []writerFields {
	var out []writerFields
	for _, n := range names {
		w := fallback
		for _, fw := range writers {
			if fw[0] == n {
				w = fw[1]
			}
		}
		i := slices.IndexFunc(out, func(g writerFields) bool { return g.system == w })
		if i < 0 {
			out = append(out, writerFields{system: w})
			i = len(out) - 1
		}
		out[i].fields = append(out[i].fields, n)
	}
	return out
}

// othersChange reports whether an in-flight apply to the event's system carries
// another system's change.
func (d *decider) othersChange(a *Apply) bool {
	return a.live() && !a.Delete && d.st.carriesOther(a, d.ch.System)
}

// resolveRecord decides a concurrent change with whole-row last-write-wins: the later
// row wins every shared field either side changed. Owned and unmapped fields are
// still decided field by field.
func (d *decider) resolveRecord(changes []Value) {
	st, ch := d.st, d.ch
	// The row to beat is the latest of the other systems' changes (by their own
	// writers' timestamps: one apply may carry values of several).
	otherSys, otherTs := "", int64(0)
	var theirs []Value
	var others []string
	var writers [][2]string // field -> the system whose value theirs carries
	consider := func(system string, ts int64) {
		if otherSys == "" || ts > otherTs {
			otherSys, otherTs = system, ts
		}
		if !slices.Contains(others, system) {
			others = append(others, system)
		}
	}
	for i := range d.ss.InFlight {
		a := &d.ss.InFlight[i]
		if !d.othersChange(a) {
			continue
		}
		for i := range a.Fields {
			system, ts := st.writerOf(a, &a.Fields[i])
			if system != ch.System {
				consider(system, ts)
			}
			writers = setWriter(writers, a.Fields[i].Name, system)
		}
		theirs = mergeValues(theirs, a.Fields)
	}
	for _, p := range st.Pending {
		if p.System != ch.System {
			consider(p.System, p.TsUs)
			theirs = mergeValues(theirs, p.Fields)
			for _, v := range p.Fields {
				writers = setWriter(writers, v.Name, p.System)
			}
		}
	}
	if otherSys == "" {
		otherSys = ch.System // only its own values on their way back: nothing concurrent
	}
	var ours, names []string
	for i := range changes {
		if class, _ := d.r.classify(changes[i].Name); class != classShared || st.held(changes[i].Name) {
			d.resolveField(&changes[i])
			continue
		}
		ours = append(ours, changes[i].Name)
	}
	names = append(names, ours...)
	for _, v := range theirs {
		if class, _ := d.r.classify(v.Name); class == classShared && !slices.Contains(names, v.Name) {
			names = append(names, v.Name)
		}
	}
	if len(names) == 0 {
		d.fanOut(ch.After)
		return
	}
	delta, tol := ch.TsUs-otherTs, d.r.toleranceUs(ch.System, otherSys)
	switch {
	case otherSys == ch.System:
		for _, n := range ours {
			if v, ok := findValue(ch.After, n); ok {
				d.decide(v, RuleSync)
			}
		}
	case delta >= -tol && delta <= tol:
		d.dropOthersPending()
		d.raise(ReasonClockSkew, names, []Version{
			{System: ch.System, TsUs: ch.TsUs, Fields: pick(ch.After, names)},
			{System: otherSys, TsUs: otherTs, Fields: pick(theirs, names)},
		}, nil)
	case delta > 0:
		d.dropOthersPending()
		for _, loser := range others {
			d.out.add(Decision{Kind: KindConflict, Record: st.Record, System: ch.System, ConflictFields: names, Winner: ch.System, Loser: loser, Rule: RuleLWW})
		}
		for _, n := range names {
			// The later row wins; but a field the event did not change whose agreed
			// value is its system's own shows, in the row, what a sink wrote over it
			// since: the system's own value stands.
			if a := st.agreed(n); !slices.Contains(ours, n) && a != nil && a.Writer == ch.System && a.Value != nil {
				v := Value{Name: n, FP: a.FP, Value: a.Value}
				d.decideFor(ch.System, a.TsUs, &v, RuleLWW)
				continue
			}
			if v, ok := findValue(ch.After, n); ok {
				d.decide(v, RuleLWW)
				continue
			}
			// Not sent (an unchanged TOASTed column): the row holds what it showed.
			if a := st.agreed(n); a != nil && a.Value != nil {
				if fp, ok := d.ss.seen(n); ok && fp == a.FP {
					v := Value{Name: n, FP: a.FP, Value: a.Value}
					d.decideFor(ch.System, ch.TsUs, &v, RuleLWW)
					continue
				}
			}
			d.raise(ReasonValueUnavailable, []string{n}, nil, nil) // the winning row's value is unknown
		}
	default:
		// The winning row is the other systems' changes together: each field is
		// named as won by the system whose value it carries.
		for _, w := range groupByWriter(names, writers, otherSys) {
			d.out.add(Decision{Kind: KindConflict, Record: st.Record, System: ch.System, ConflictFields: w.fields, Winner: w.system, Loser: ch.System, Rule: RuleLWW})
		}
		d.loseRecord(ours, otherSys, otherTs, theirs)
	}
	d.fanOut(ch.After)
}

// loseRecord gives the event's system the winner's row for the fields it changed: the
// winner's values, and for fields the winner's row did not set the agreed values
// (null where there are none); held changes of the winner are decided now.
func (d *decider) loseRecord(ours []string, winner string, ts int64, theirs []Value) {
	for i := range d.st.Pending {
		p := &d.st.Pending[i]
		if p.System == winner {
			for j := range p.Fields {
				v := p.Fields[j]
				d.decideFor(winner, ts, &v, RuleLWW)
			}
		}
	}
	d.dropAllPending(winner)
	for _, n := range ours {
		if won, ok := findValue(theirs, n); ok {
			// The winner's value is on its way, but decided again so that the
			// fan-out makes sure it lands (an apply a snapshot showed may not).
			v := copyValue(*won)
			d.decideFor(winner, ts, &v, RuleLWW)
			continue
		}
		v := Value{Name: n, FP: nullFP, Value: nullValue}
		writer, ts := winner, ts
		if a := d.st.agreed(n); a != nil && a.Value != nil {
			v, writer, ts = Value{Name: n, FP: a.FP, Value: a.Value}, a.Writer, a.TsUs
		}
		d.decideFor(writer, ts, &v, RuleLWW)
	}
}

// dropOthersPending drops every other system's change held in the pairing window:
// the event's row was decided against them.
func (d *decider) dropOthersPending() {
	d.st.Pending = slices.DeleteFunc(d.st.Pending, func(p Pending) bool { return p.System != d.ch.System })
}

func (d *decider) dropAllPending(system string) {
	kept := d.st.Pending[:0]
	for _, p := range d.st.Pending {
		if p.System != system {
			kept = append(kept, p)
		}
	}
	d.st.Pending = kept
}

// mergeValues lays vals over dst by name.
func mergeValues(dst, vals []Value) []Value {
	for _, v := range vals {
		if old, ok := findValue(dst, v.Name); ok {
			*old = v
		} else {
			dst = append(dst, v)
		}
	}
	return dst
}

func pick(vals []Value, names []string) []Value {
	var out []Value
	for _, n := range names {
		if v, ok := findValue(vals, n); ok {
			out = append(out, *v)
		}
	}
	return out
}

var (
	nullValue = []byte("null")
	nullFP    = Fingerprint(nullValue)
)
