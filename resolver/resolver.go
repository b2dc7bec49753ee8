package resolver

import (
	"slices"
	"time"

	"github.com/concord-sync/concord/codecs"
)

// Resolve decides one change of one record (DESIGN.md section 3). It updates st in
// place and appends its decisions to out. It does no I/O and reads no clock: now is
// the processing time, used for in-flight apply timeouts, the pairing window, the loop
// guard and tombstones. Same state, change and now give the same decisions.
func (r *Resolver) Resolve(now time.Time, st *State, ch *Change, out *Output) {
	nowMs := now.UnixMilli()
	r.Expire(now, st, out)
	ss := st.system(ch.System)
	if c, ok := ch.Position.Compare(ss.Pos); ok && c <= 0 {
		out.add(Decision{Kind: KindDuplicate, Record: st.Record, System: ch.System})
		return
	}
	ss.Pos = ch.Position
	if len(st.Key) == 0 {
		st.Key = copyValues(ch.Key)
	}
	d := decider{
		r: r, st: st, ss: ss, ch: ch, out: out, nowMs: nowMs,
		origin: ch.System, originTs: ch.TsUs, pos: ch.Position,
	}
	d.ackEcho()
	switch {
	case ch.Op == codecs.OpDelete:
		d.resolveDelete()
	case ch.Op == codecs.OpRead && len(st.Agreed) > 0 && !st.Deleted:
		d.resolveSnapshot()
	default:
		d.resolveUpsert()
	}
}

// decider carries one Resolve call's inputs through its steps.
type decider struct {
	r     *Resolver
	st    *State
	ss    *SystemState
	ch    *Change
	out   *Output
	nowMs int64
	// echo is the in-flight apply this event echoes, when echoed (see acked): a copy,
	// as it has left the system's in-flight list.
	echo   Apply
	echoed bool

	// origin, originTs and pos identify the change whose decisions are being made
	// (the event's, or a pending change's when the pairing window closes): they name
	// apply events and make their ids.
	origin   string
	originTs int64
	pos      codecs.Position

	// writer and writerTs name whose value the fan-out carries when that is not the
	// event's system (a change held in the pairing window that won against it).
	writer   string
	writerTs int64

	decided   []Value // values decided in this call, to fan out
	rule      Rule
	creating  bool    // the event creates a record no other system holds
	rejoining bool    // the event re-creates a row its system deleted, not propagated
	changes   []Value // the fields the event changed (upserts)
	noHold    bool    // decide now: no change goes to the pairing window

	// arena is memory for the values this call keeps in the state (see keep), and
	// arenaHint the size of its first block: what the call is expected to keep.
	arena     []byte
	arenaHint int
}

// ackEcho recognises the echo of an in-flight apply to the event's system and
// acknowledges it together with the older applies it passes (see matchEcho); acked
// returns it then. A snapshot read is never an echo: it only marks the applies whose
// values it shows.
func (d *decider) ackEcho() {
	ss, ch := d.ss, d.ch
	if ch.Op == codecs.OpRead {
		d.markSnapshotShown()
		return
	}
	i := d.matchEcho()
	if i < 0 {
		return
	}
	d.echo, d.echoed = ss.InFlight[i], true
	acked := &d.echo
	// The applies it passes either landed unseen (a key-only insert that did
	// nothing, a write that showed no change) or, if the event is not the sink's
	// after all, may still land: uncertain ones are kept as expired, so a late echo
	// is still recognised until the system's next change of its own.
	kept := ss.InFlight[:0]
	for j, a := range ss.InFlight {
		switch {
		case j == i && a.Delete && a.live():
			// A delete cannot be told from the system's own: if it was, this one
			// still lands, on a row re-created meanwhile. It is kept, expired and
			// uncertain, for as long as an apply takes to land (the echo slack), so
			// that such a late delete is held for review; after that a delete is the
			// system's own.
			a.Expired, a.Uncertain = true, true
			kept = append(kept, a)
		case j == i, j < i && a.live() && !a.Uncertain:
		case j < i:
			a.Expired = true
			kept = append(kept, a)
		default:
			kept = append(kept, a)
		}
	}
	ss.InFlight = kept
	ss.land(acked)
	d.out.add(Decision{Kind: KindEcho, Record: d.st.Record, System: ch.System, EventID: acked.EventID, SentMs: acked.SentMs})
}

// acked returns the in-flight apply the event was taken for the echo of, or nil.
func (d *decider) acked() *Apply {
	if !d.echoed {
		return nil
	}
	return &d.echo
}

// matchEcho returns the index of the in-flight apply the event is the echo of, or -1.
//
// A sink writes a system's applies in the order they were sent and every write but a
// no-op one (a key-only insert of a row that exists) commits one change event, so an
// event can only be the echo of the oldest apply still expected to land. Older
// applies are passed only when they may never be seen: expired ones, ones a snapshot
// showed, and key-only creates of a row the event shows to exist. Matching any later
// apply whose values the image shows would take a winner re-applied to its own system
// for the echo while the applies before it are still on their way.
//
// With an origin marker configured, an upsert is matched by the marker alone: an
// event whose marker names no in-flight apply is the system's own change.
func (d *decider) matchEcho() int {
	ss, ch := d.ss, d.ch
	if ch.Op != codecs.OpDelete && d.r.system(ch.System).marker != "" {
		for i := range ss.InFlight {
			if ch.Marker != "" && ss.InFlight[i].EventID == ch.Marker {
				return i
			}
		}
		return -1
	}
	// An uncertain apply the event matches may have landed unseen before a later
	// one whose write looks the same: the latest match up to the first apply
	// certain to commit a change.
	match, passed := -1, false
	for i := range ss.InFlight {
		a := &ss.InFlight[i]
		if d.echoes(a, passed || match >= 0) {
			// An event that changes nothing cannot be told from the sink's write of
			// any apply that sets what the row already holds: it is taken for the
			// echo of the oldest one only, never for a later one past others.
			if passed && d.unchanged() {
				break
			}
			match = i
			// An expired upsert that changes what the row showed has not landed
			// (every such write commits an event), so the sink writes it before any
			// later apply: an event it matches is its late echo, not a later one's.
			// (A delete cannot be told from the system's own.)
			if !a.Uncertain && (a.live() || !a.Delete && !d.unchanged()) {
				break
			}
			passed = passed || a.live()
			continue
		}
		if a.live() && !a.Uncertain && !d.moot(a) {
			break
		}
		// Expired applies are passed freely: one landing late is repaired.
		passed = passed || a.live()
	}
	return match
}

// unchanged reports whether an update changes no column the system showed before.
func (d *decider) unchanged() bool {
	ss, ch := d.ss, d.ch
	if ch.Op != codecs.OpUpdate || !ss.Known || ss.Deleted {
		return false
	}
	for i, v := range ch.After {
		prev, ok := findValueAt(ch.Before, v.Name, i)
		if !ok {
			fp, seen := ss.seenAt(v.Name, i)
			if !seen || fp != v.FP {
				return false
			}
			continue
		}
		if prev.FP != v.FP {
			return false
		}
	}
	return true
}

// echoes reports whether the event is what the system commits when its sink writes
// the apply: a delete for a delete; otherwise the apply's values over the image the
// system showed before (its before image, else the one last seen), every other
// column unchanged, or, for an insert (the row was missing), the apply's values with
// the other columns at their defaults. An event committed before the apply was sent,
// by more than the echo slack (echoSlackMs), is never its echo.
func (d *decider) echoes(a *Apply, passed bool) bool {
	ss, ch := d.ss, d.ch
	if a.Delete || ch.Op == codecs.OpDelete {
		return a.Delete && ch.Op == codecs.OpDelete
	}
	if ch.CommitMs > 0 && ch.CommitMs < a.SentMs-d.r.echoSlackMs(ch.System) {
		return false
	}
	if a.Uncertain && d.unchanged() {
		// The system already showed what the apply sets: its write may change
		// nothing, and an event changing nothing proves nothing. It stays in
		// flight, so a change made before it lands is concurrent.
		return false
	}
	for _, v := range a.Fields {
		got, ok := findValue(ch.After, v.Name)
		if !ok || got.FP != v.FP {
			return false
		}
	}
	if ch.Op == codecs.OpCreate {
		// The sink's insert leaves the columns the apply does not carry NULL, or at
		// their defaults. Past other applies, an insert showing other synced values
		// is taken for the system's own create rather than a partial apply's, and
		// so is one that a landed apply written again explains exactly (the sink
		// re-creating a deleted row after a restart), and one showing values where
		// a key-only create would leave nothing but defaults.
		if !passed && !a.keyOnly() && !d.rewritesLanded() {
			return true
		}
		for _, v := range ch.After {
			if _, ok := findValue(a.Fields, v.Name); !ok && v.FP != nullFP {
				if class, _ := d.r.classify(v.Name); class != classUnmapped {
					return false
				}
			}
		}
		return true
	}
	knew := ss.Known && !ss.Deleted
	for i, v := range ch.After {
		if _, ok := findValue(a.Fields, v.Name); ok {
			continue
		}
		if b, ok := findValueAt(ch.Before, v.Name, i); ok {
			if b.FP != v.FP {
				return false
			}
		} else if fp, ok := ss.seenAt(v.Name, i); knew && ok && fp != v.FP {
			return false
		}
	}
	return true
}

// moot reports whether an apply will commit nothing given what the event shows: a
// key-only create of a row that exists is an insert that does nothing.
func (d *decider) moot(a *Apply) bool {
	return a.keyOnly() && d.ch.Op != codecs.OpDelete
}

// markSnapshotShown marks the in-flight applies whose values a snapshot read shows:
// they may have landed before the snapshot was taken, so no echo may follow.
func (d *decider) markSnapshotShown() {
	for i := range d.ss.InFlight {
		a := &d.ss.InFlight[i]
		if a.Delete || a.Uncertain {
			continue
		}
		shows := true
		for _, v := range a.Fields {
			if got, ok := findValue(d.ch.After, v.Name); !ok || got.FP != v.FP {
				shows = false
				break
			}
		}
		a.Uncertain = shows
	}
}

// changed returns the fields of the after image that differ from what the system
// showed before this write: the before image where it has the field, else the image
// last seen. Fields the acknowledged apply set to exactly this value are not changes,
// nor are the NULLs of the columns an insert by the sink did not set (a column
// default that is not NULL is the system's value, and a change).
func (d *decider) changed(dst []Value) []Value {
	ss, ch := d.ss, d.ch
	acked := d.acked()
	insertEcho := acked != nil && ch.Op == codecs.OpCreate
	knew := ss.Known && !ss.Deleted
	for i, v := range ch.After {
		if acked != nil {
			a, ok := findValue(acked.Fields, v.Name)
			if ok && a.FP == v.FP || !ok && insertEcho && v.FP == nullFP {
				continue
			}
		}
		prev, had := uint64(0), false
		if b, ok := findValueAt(ch.Before, v.Name, i); ok {
			prev, had = b.FP, true
		} else if knew {
			prev, had = ss.seenAt(v.Name, i)
		}
		if !had || prev != v.FP {
			dst = append(dst, v)
		}
	}
	return dst
}

// see records the after image as what the system last showed. A field the image
// does not carry (an unchanged TOASTed column, its value not sent) keeps what the
// system showed of it before, when it had the row.
func (d *decider) see() {
	ss := d.ss
	if ss.Known && !ss.Deleted {
		kept := ss.Seen[:0]
		for i, f := range ss.Seen {
			if !hasValue(d.ch.After, f.Name, i) {
				kept = append(kept, f)
			}
		}
		ss.Seen = kept
	} else {
		ss.Seen = ss.Seen[:0]
	}
	ss.Known, ss.Deleted = true, false
	ss.MarkerFP = 0
	if d.ch.Marker != "" {
		ss.MarkerFP = fingerprintText(d.ch.Marker)
	}
	for _, v := range d.ch.After {
		ss.Seen = append(ss.Seen, SeenField{Name: v.Name, FP: v.FP})
	}
	ss.markShown()
}

func (d *decider) resolveUpsert() {
	changes := d.changed(d.out.scratch[:0])
	d.out.scratch = changes
	d.changes = changes
	// What a change keeps, typically: its changed values in the agreed image and
	// once in an apply.
	d.arenaHint = 2 * valueBytes(changes)
	gone := d.ss.Known && d.ss.Deleted
	// A system that deleted the record, with deletes not propagated, was sent
	// nothing since: what it writes when it re-creates the row was made without
	// knowing any of it.
	d.rejoining = gone && !d.r.propagateDeletes && len(d.st.Agreed) > 0
	prevMarker := d.ss.MarkerFP
	d.see()
	if d.acked() == nil {
		if l := d.rewritten(changes); l != nil {
			d.redelivered(l, prevMarker, gone)
			return
		}
	}
	if acked := d.acked(); acked != nil && acked.Expired {
		d.repairLate(acked, gone)
		return
	}
	if del := d.ss.deleteInFlight(); del != nil && del.Origin != d.ch.System {
		// An update that changes no synced field (a trigger's timestamp, an unmapped
		// column, nothing at all) is not concurrent with the delete, nor is a
		// snapshot read (the row as it was before): the delete lands.
		// (A delete of its own on its way, sent to keep a row it deleted from being
		// re-created, is no other system's change: its new row is decided as any
		// change, and re-created there after the delete.)
		switch {
		case d.ch.Op == codecs.OpRead:
			d.divergesFromDeleted()
		case d.syncedChange(changes):
			d.updateVersusDelete(del)
		}
		return
	}
	if len(changes) == 0 && (d.acked() != nil || !d.creates()) {
		return
	}
	if d.creates() {
		d.creating = true
		if d.st.Deleted { // a new record: nothing of the deleted one is agreed
			d.st.Agreed = d.st.Agreed[:0]
		}
		d.st.Deleted = false
		for i := range changes {
			if class, _ := d.r.classify(changes[i].Name); class == classUnmapped || d.st.held(changes[i].Name) {
				d.resolveField(&changes[i]) // skipped, or attached to the entry
				continue
			}
			d.decide(&changes[i], RuleSync)
		}
		d.fanOut(d.ch.After)
		return
	}
	d.st.Deleted = false
	if d.r.recordGranular && d.syncedChange(changes) && d.recordConcurrent() {
		d.resolveRecord(changes)
		return
	}
	for i := range changes {
		d.resolveField(&changes[i])
	}
	d.fanOut(d.ch.After)
}

// divergesFromDeleted records the fields on which a snapshot read of a record being
// deleted disagrees with the agreed image: an initial divergence that no rule decides
// (the record is going), kept for review rather than lost with the row.
func (d *decider) divergesFromDeleted() {
	var fields []string
	var theirs, ours []Value
	for _, v := range d.ch.After {
		if class, _ := d.r.classify(v.Name); class == classUnmapped {
			continue
		}
		if a := d.st.agreed(v.Name); a != nil && a.FP != v.FP {
			fields = append(fields, v.Name)
			ours = append(ours, v)
			theirs = append(theirs, Value{Name: a.Name, FP: a.FP, Value: a.Value})
		}
	}
	if len(fields) == 0 {
		return
	}
	writer := ""
	if a := d.st.agreed(fields[0]); a != nil {
		writer = a.Writer
	}
	d.raise(ReasonInitialDivergent, fields, []Version{
		{System: d.ch.System, TsUs: d.ch.TsUs, Fields: ours},
		{System: writer, Fields: theirs},
	}, nil)
}

// syncedChange reports whether any of the changes is to a field concord syncs.
func (d *decider) syncedChange(changes []Value) bool {
	for i := range changes {
		if class, _ := d.r.classify(changes[i].Name); class != classUnmapped {
			return true
		}
	}
	return false
}

// creates reports whether the event brings a record into existence that no other
// system holds or is being sent: then every field it carries is the record's first
// value, whoever owns it, and the record is created everywhere.
func (d *decider) creates() bool {
	if len(d.st.Agreed) > 0 && !d.st.Deleted {
		return false
	}
	for i := range d.st.Systems {
		ss := &d.st.Systems[i]
		if ss.Name != d.ch.System && ss.present() {
			return false
		}
	}
	// Fields under review stay held (attached to the entry), but the record still
	// comes into existence everywhere, with the rest; only a hold of the whole
	// record keeps it where it is.
	return d.st.Hold == nil || !d.st.Hold.Record
}

// resolveField decides one changed field of the event.
func (d *decider) resolveField(v *Value) {
	st, ch := d.st, d.ch
	class, owner := d.r.classify(v.Name)
	switch {
	case class == classUnmapped:
		d.out.add(Decision{Kind: KindSkip, Record: st.Record, System: ch.System, Field: v.Name, Reason: ReasonUnmapped})
		return
	case st.held(v.Name):
		d.attach([]Value{*v})
		return
	}
	other := d.concurrentWith(v.Name)
	switch {
	case class == classOwned && owner != ch.System:
		if other != nil {
			d.conflict(v.Name, owner, ch.System, RuleAuthority)
		}
		d.out.add(Decision{Kind: KindSkip, Record: st.Record, System: ch.System, Field: v.Name, Reason: ReasonNotAuthoritative})
		d.enforceOwner(v.Name)
	case other == nil && d.r.pairWindow > 0 && class == classShared && !d.noHold:
		d.hold(v)
	case other == nil:
		d.decide(v, RuleSync)
	case other.value.FP == v.FP:
		d.agree(v, other)
	case class == classOwned:
		d.conflict(v.Name, ch.System, other.system, RuleAuthority)
		d.decide(v, RuleAuthority)
	default:
		d.lastWriteWins(v, other)
	}
}

// version is another system's change to a field that the event's change is concurrent with.
type version struct {
	system  string
	tsUs    int64
	value   *Value
	pending int  // index in State.Pending, or -1 for an in-flight apply
	agreed  bool // the agreed value, which the event's system was never sent
}

// concurrentWith finds what the event's change to a field is concurrent with: an
// un-acknowledged apply to the event's system that sets the field (the system wrote
// without having seen it), or another system's change held in the pairing window.
// Of several, the latest by timestamp is the one to beat.
func (d *decider) concurrentWith(field string) *version {
	var best *version
	var inflight *version
	if a, v := d.ss.inFlightSetting(field); a != nil {
		if origin, ts := d.st.writerOf(a, v); origin != d.ch.System {
			inflight = &version{system: origin, tsUs: ts, value: v, pending: -1}
			best = inflight
		}
	}
	for i := range d.st.Pending {
		p := &d.st.Pending[i]
		if p.System == d.ch.System {
			continue
		}
		v, ok := findValue(p.Fields, field)
		if !ok {
			continue
		}
		held := &version{system: p.System, tsUs: p.TsUs, value: v, pending: i}
		switch {
		case best == nil, p.TsUs >= best.tsUs:
			best = held
		case inflight != nil && best == inflight && (inflight.system == p.System || d.isAgreed(inflight.value)):
			// A held change is newer than the agreed value it was made over, whatever
			// the clocks say: its system had seen that value (else the change would
			// have been concurrent with its apply, and decided then).
			best = held
		}
	}
	if ag := d.st.agreed(field); best == nil && d.rejoining && ag != nil && ag.Writer != d.ch.System && ag.Value != nil {
		best = &version{system: ag.Writer, tsUs: ag.TsUs, value: &Value{Name: field, FP: ag.FP, Value: ag.Value}, pending: -1, agreed: true}
	}
	if best == nil {
		if a, v := d.ss.inFlightSetting(field); a != nil {
			// The system's own value on its way back to it (a winner re-applied):
			// its new change overrides it, nothing else is concurrent.
			writer, ts := d.st.writerOf(a, v)
			return &version{system: writer, tsUs: ts, value: v, pending: -1}
		}
	}
	return best
}

// isAgreed reports whether a value is the field's agreed value.
func (d *decider) isAgreed(v *Value) bool {
	a := d.st.agreed(v.Name)
	return a != nil && a.FP == v.FP
}

func (d *decider) lastWriteWins(v *Value, other *version) {
	delta := d.ch.TsUs - other.tsUs
	tol := d.r.toleranceUs(d.ch.System, other.system)
	switch {
	case other.system == d.ch.System:
		d.decide(v, RuleSync) // a newer change of its own over its own value
	case delta >= -tol && delta <= tol:
		versions := []Version{
			{System: d.ch.System, TsUs: d.ch.TsUs, Fields: []Value{*v}},
			{System: other.system, TsUs: other.tsUs, Fields: []Value{copyValue(*other.value)}},
		}
		for _, p := range d.st.Pending { // every other version held goes to review too
			if pv, ok := findValue(p.Fields, v.Name); ok && p.System != d.ch.System && p.System != other.system {
				versions = append(versions, Version{System: p.System, TsUs: p.TsUs, Fields: []Value{copyValue(*pv)}})
			}
		}
		d.dropPendingField(v.Name, "", other.system)
		d.raise(ReasonClockSkew, []string{v.Name}, versions, d.base(v.Name))
	case delta > 0:
		d.conflict(v.Name, d.ch.System, other.system, RuleLWW)
		d.dropPendingField(v.Name, d.ch.System, other.system)
		d.decide(v, RuleLWW)
	default:
		d.conflict(v.Name, other.system, d.ch.System, RuleLWW)
		if other.pending >= 0 { // the held change wins: decide it now, together
			won := copyValue(*other.value)
			d.dropPendingField(v.Name, other.system, other.system)
			d.decideFor(other.system, other.tsUs, &won, RuleLWW)
		} else {
			d.dropPendingField(v.Name, other.system, other.system)
			if other.agreed { // nothing carries it to the event's system: send it
				won := copyValue(*other.value)
				d.decideFor(other.system, other.tsUs, &won, RuleLWW)
			}
		}
	}
}

// agree handles a concurrent change to the value the other side also chose.
func (d *decider) agree(v *Value, other *version) {
	if other.pending >= 0 {
		d.dropPendingField(v.Name, d.ch.System, other.system)
		d.decide(v, RuleSync)
	}
}

// base returns the value a field had before this conflict, where known: the event's
// before image (the agreed image has already moved to the other side's value).
func (d *decider) base(field string) []Value {
	if b, ok := findValue(d.ch.Before, field); ok {
		return []Value{*b}
	}
	return nil
}

// decide makes the event's value of a field the agreed value, to be fanned out. A
// change of the same system to the field still held in the pairing window is older:
// it is dropped.
func (d *decider) decide(v *Value, rule Rule) {
	for i := range d.st.Pending {
		if p := &d.st.Pending[i]; p.System == d.ch.System {
			p.Fields = removeValue(p.Fields, v.Name)
		}
	}
	d.st.Pending = slices.DeleteFunc(d.st.Pending, func(p Pending) bool { return len(p.Fields) == 0 })
	d.decideFor(d.ch.System, d.ch.TsUs, v, rule)
}

func (d *decider) decideFor(writer string, tsUs int64, v *Value, rule Rule) {
	a := AgreedField{Name: v.Name, FP: v.FP, Writer: writer, TsUs: tsUs}
	if d.r.keepsValue(v.Name) {
		if old := d.st.agreed(v.Name); old != nil && old.Value != nil && old.FP == v.FP {
			a.Value = old.Value
		} else {
			a.Value = d.keepValue(v.Value)
		}
	}
	d.st.setAgreed(a)
	// A field decided twice in one call (a held change of the winner, then the
	// winner's row) is sent once, with the last decision: an apply naming a column
	// twice is refused by the sink (JsonConverter cannot build that struct).
	if prev, ok := findValue(d.decided, v.Name); ok {
		*prev = *v
	} else {
		if d.decided == nil {
			d.decided = d.out.decided[:0] // no decision borrows it: see Output.decided
		}
		d.decided = append(d.decided, *v)
		d.out.decided = d.decided
	}
	d.writer, d.writerTs = writer, tsUs
	if rank(rule) > rank(d.rule) {
		d.rule = rule
	}
}

// rank orders rules so an apply carrying several decisions names the strongest one.
func rank(r Rule) int {
	switch r {
	case "":
		return 0
	case RuleSync:
		return 1
	default:
		return 2
	}
}

func (d *decider) conflict(field, winner, loser string, rule Rule) {
	d.out.add(Decision{
		Kind: KindConflict, Record: d.st.Record, System: d.ch.System, Loser: loser,
		ConflictFields: []string{field}, Winner: winner, Rule: rule,
	})
}

// enforceOwner re-applies the owner's agreed value to a non-owner that changed it,
// when enforce_authority is on and the value is known.
func (d *decider) enforceOwner(field string) {
	if !d.r.enforce {
		return
	}
	a := d.st.agreed(field)
	if a == nil || a.Value == nil {
		return
	}
	if d.ss.holds(field, a.FP) || !d.ss.present() {
		return // (a system about to lose the row gets no field of it: that would re-create it)
	}
	v := Value{Name: field, FP: a.FP, Value: a.Value}
	d.sendAs(a.Writer, a.TsUs, d.ss.Name, false, []Value{v}, RuleEnforceAuthority, ReasonNotAuthoritative)
}

// hold puts a shared field's change in the pairing window.
func (d *decider) hold(v *Value) {
	st, ch := d.st, d.ch
	for i := range st.Pending {
		p := &st.Pending[i]
		if p.System != ch.System {
			continue
		}
		p.TsUs, p.Position = ch.TsUs, ch.Position
		if old, ok := findValue(p.Fields, v.Name); ok {
			*old = copyValue(*v)
		} else {
			p.Fields = append(p.Fields, copyValue(*v))
		}
		return
	}
	st.Pending = append(st.Pending, Pending{
		System: ch.System, TsUs: ch.TsUs, Position: ch.Position,
		DeadlineMs: d.nowMs + d.r.pairWindow.Milliseconds(),
		Fields:     []Value{copyValue(*v)},
	})
}

// dropPendingField takes a field out of the changes other systems hold in the pairing
// window: the event's change was decided against them. Each one that is not the
// version it was decided against (except) lost to winner and is recorded so.
func (d *decider) dropPendingField(field, winner, except string) {
	kept := d.st.Pending[:0]
	for _, p := range d.st.Pending {
		if p.System != d.ch.System {
			if _, ok := findValue(p.Fields, field); ok {
				if p.System != except && winner != "" {
					d.conflict(field, winner, p.System, RuleLWW)
				}
				p.Fields = removeValue(p.Fields, field)
			}
		}
		if len(p.Fields) > 0 {
			kept = append(kept, p)
		}
	}
	d.st.Pending = kept
}

func removeValue(vs []Value, name string) []Value {
	for i := range vs {
		if vs[i].Name == name {
			return append(vs[:i], vs[i+1:]...)
		}
	}
	return vs
}

func copyValue(v Value) Value {
	v.Value = append([]byte(nil), v.Value...)
	return v
}
