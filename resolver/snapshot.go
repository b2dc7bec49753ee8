package resolver

// resolveSnapshot decides a snapshot read of a record that already has an agreed
// image. A difference is an initial divergence, not a concurrent edit: decided by
// authority, then by the row timestamp columns when both systems have one, then by
// resolution.initial_load_prefer, else sent to review.
func (d *decider) resolveSnapshot() {
	st, ch := d.st, d.ch
	d.see()
	for i := range ch.After {
		v := &ch.After[i]
		a := st.agreed(v.Name)
		if a != nil && a.FP == v.FP {
			continue
		}
		class, owner := d.r.classify(v.Name)
		switch {
		case class == classUnmapped:
			d.out.add(Decision{Kind: KindSkip, Record: st.Record, System: ch.System, Field: v.Name, Reason: ReasonUnmapped})
		case st.held(v.Name):
			d.attach([]Value{*v})
		case a == nil:
			d.decide(v, RuleSync)
		case class == classOwned && owner == ch.System:
			d.conflict(v.Name, owner, a.Writer, RuleAuthority)
			d.decide(v, RuleAuthority)
		case class == classOwned:
			d.conflict(v.Name, owner, ch.System, RuleAuthority)
			d.restore(v, a, RuleAuthority)
		default:
			d.divergent(v, a)
		}
	}
	d.fanOut(ch.After)
}

// divergent decides a shared field on which a snapshot disagrees with the agreed image.
func (d *decider) divergent(v *Value, a *AgreedField) {
	ch := d.ch
	other := Version{System: a.Writer, TsUs: a.TsUs, Fields: []Value{{Name: a.Name, FP: a.FP, Value: a.Value}}}
	if d.r.system(ch.System).tsCol != "" && d.r.system(a.Writer) != nil && d.r.system(a.Writer).tsCol != "" {
		delta, tol := ch.TsUs-a.TsUs, d.r.toleranceUs(ch.System, a.Writer)
		switch {
		case delta > tol:
			d.conflict(v.Name, ch.System, a.Writer, RuleLWW)
			d.decide(v, RuleLWW)
			return
		case delta < -tol:
			d.conflict(v.Name, a.Writer, ch.System, RuleLWW)
			d.restore(v, a, RuleLWW)
			return
		}
	}
	switch d.r.prefer {
	case ch.System:
		d.conflict(v.Name, ch.System, a.Writer, RuleInitialLoad)
		d.decide(v, RuleInitialLoad)
	case a.Writer:
		d.conflict(v.Name, a.Writer, ch.System, RuleInitialLoad)
		d.restore(v, a, RuleInitialLoad)
	default:
		d.raise(ReasonInitialDivergent, []string{v.Name}, []Version{
			{System: ch.System, TsUs: ch.TsUs, Fields: []Value{*v}}, other,
		}, nil)
	}
}

// restore makes sure the event's system ends up with the agreed value of a field it
// lost: an in-flight apply already carries it, or the kept value is sent; when the
// value is not kept the field goes to review rather than being lost.
func (d *decider) restore(v *Value, a *AgreedField, rule Rule) {
	if d.ss.holds(a.Name, a.FP) || !d.ss.present() {
		return
	}
	if a.Value == nil {
		d.raise(ReasonInitialDivergent, []string{a.Name}, []Version{
			{System: d.ch.System, TsUs: d.ch.TsUs, Fields: []Value{*v}},
			{System: a.Writer, TsUs: a.TsUs, Fields: []Value{{Name: a.Name, FP: a.FP}}},
		}, nil)
		return
	}
	if !d.loopGuard(1) {
		d.sendAs(a.Writer, a.TsUs, d.ss.Name, false, []Value{{Name: a.Name, FP: a.FP, Value: a.Value}}, rule, "")
	}
}
