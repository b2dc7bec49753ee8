package resolver

import "time"

// lateEchoMs is how long after it was sent an expired apply's echo is still
// recognised: as long as a tombstone is kept (resolution.tombstone_retention, 24h by
// default), so that a sink catching up after an outage longer than apply_timeout
// does not have its backlog taken for the system's own changes.
func (r *Resolver) lateEchoMs() int64 {
	return max(r.tombstone, r.applyTimeout).Milliseconds()
}

// Expire does a record's time-driven work at now: in-flight applies not seen back
// within apply_timeout are expired and reported (DLQ reason apply_unconfirmed; they
// no longer count as on their way, but a late echo is still recognised), and
// changes whose pairing window has closed are decided and fanned out. Resolve calls it
// first; the pipeline also calls it from a timer for records with a deadline due
// (State.NextDeadlineMs).
func (r *Resolver) Expire(now time.Time, st *State, out *Output) {
	nowMs := now.UnixMilli()
	timeout := r.applyTimeout.Milliseconds()
	for i := range st.Systems {
		ss := &st.Systems[i]
		kept := ss.InFlight[:0]
		for j := range ss.InFlight {
			a := ss.InFlight[j]
			if !a.live() && a.SentMs+r.lateEchoMs() <= nowMs {
				continue // too late to be told from a change any more
			}
			if a.Delete && !a.live() && a.Uncertain && a.SentMs+r.echoSlackMs(ss.Name) <= nowMs {
				continue // a delete taken for the system's own: past the slack it landed
			}
			if a.live() && timeout > 0 && a.SentMs+timeout <= nowMs && (a.Uncertain || a.keyOnly()) {
				// The system showed its values: it has them, nothing to confirm. Or
				// the apply is a key-only create, which a sink writes as an insert
				// that does nothing when the row exists (no change event): it
				// carries no value to lose, so its silence is no failure. Either
				// way its echo, if one comes, is still recognised.
				a.Expired = true
				kept = append(kept, a)
				continue
			}
			if a.live() && timeout > 0 && a.SentMs+timeout <= nowMs {
				d := decider{r: r, st: st, out: out, nowMs: nowMs, origin: a.Origin}
				d.unconfirmed(ss.Name, &a)
				a.Expired = true // kept, so that a late echo is still recognised
			}
			kept = append(kept, a)
		}
		ss.InFlight = kept
		r.pruneLanded(nowMs, ss)
	}
	for i := 0; i < len(st.Pending); {
		p := st.Pending[i]
		if p.DeadlineMs > nowMs {
			i++
			continue
		}
		st.Pending = append(st.Pending[:i], st.Pending[i+1:]...)
		r.flushPending(nowMs, st, &p, out)
	}
}

// flushPending decides a change whose pairing window closed with no concurrent change.
func (r *Resolver) flushPending(nowMs int64, st *State, p *Pending, out *Output) {
	d := decider{
		r: r, st: st, ss: st.system(p.System), out: out, nowMs: nowMs,
		origin: p.System, originTs: p.TsUs, pos: p.Position,
	}
	for i := range p.Fields {
		if st.held(p.Fields[i].Name) {
			d.attach(p.Fields[i : i+1])
			continue
		}
		d.decideFor(p.System, p.TsUs, &p.Fields[i], RuleSync)
	}
	d.fanOut(nil)
}

// Droppable reports whether a record's state may be forgotten at now: a delete agreed
// longer ago than the tombstone retention, with nothing in flight, pending or held.
func (r *Resolver) Droppable(now time.Time, st *State) bool {
	return st.Deleted && st.Idle() && now.UnixMilli()-st.DeletedMs >= r.tombstone.Milliseconds()
}
