package resolver

import (
	"encoding/binary"
	"encoding/hex"
	"slices"

	"github.com/cespare/xxhash/v2"

	"github.com/concord-sync/concord/codecs"
)

// fanOut sends the values decided in this call to every system whose expected image
// (what it last showed, with its in-flight applies laid over it) differs, the origin
// included: an in-flight apply to the origin may be about to overwrite the winner.
// A system that will not hold the record gets a create carrying the whole image.
func (d *decider) fanOut(image []Value) {
	if len(d.decided) == 0 && !d.creating {
		return
	}
	targets := d.out.targets[:0]
	for i := range d.r.systems {
		name := d.r.systems[i].name
		ss := d.st.system(name)
		if ss.Deleted && !d.r.propagateDeletes && ss.lastLive() == nil {
			continue // it deleted the record and deletes are not propagated: leave it alone
		}
		start := len(d.out.fields)
		if ss.present() {
			d.out.fields = d.differing(d.out.fields, ss, d.decided)
		} else {
			d.out.fields = d.createImage(d.out.fields, image, name)
			d.agreeOn(d.out.fields[start:])
		}
		// A record created with no field but its key is still created everywhere.
		if len(d.out.fields) > start || d.creating && !ss.present() {
			targets = append(targets, target{name: name, start: start, end: len(d.out.fields)})
		}
	}
	d.out.targets = targets
	if len(targets) == 0 {
		return
	}
	if d.loopGuard(len(targets)) {
		return
	}
	for _, t := range targets {
		d.send(t.name, false, d.out.fields[t.start:t.end], d.rule, "")
	}
	d.out.fields = d.out.fields[:0]
}

type target struct {
	name       string
	start, end int
}

func (d *decider) differing(dst []Value, ss *SystemState, vals []Value) []Value {
	for _, v := range vals {
		if !ss.holds(v.Name, v.FP) {
			dst = append(dst, v)
		}
	}
	return dst
}

// createImage is what a create carries: every synced field of the image, with the
// decided values laid over it. Fields the target owns are included too: a system that
// does not have the record has no value of its own, and a missing column would be
// written as null and then synced back as the owner's change. A field another
// system owns carries the owner's agreed value where it is kept, not a non-owner's
// skipped one (the event's own system keeps its own change unless enforce_authority); any
// other field not decided now carries the agreed value where it is kept.
func (d *decider) createImage(dst []Value, image []Value, target string) []Value {
	for _, v := range image {
		class, owner := d.r.classify(v.Name)
		if class == classUnmapped || d.st.held(v.Name) {
			continue
		}
		if dv, ok := findValue(d.decided, v.Name); ok {
			v = *dv
		} else if a := d.st.agreed(v.Name); a != nil && a.Value != nil && a.FP != v.FP &&
			(class != classOwned || owner == target || owner != d.origin && (target != d.origin || d.r.enforce || !d.changedField(v.Name))) {
			// The record is alive: the agreed value, not what the row happens to
			// show (a value that lost, a sink's late write).
			v = Value{Name: v.Name, FP: a.FP, Value: a.Value}
		}
		dst = append(dst, v)
	}
	for _, v := range d.decided {
		if _, ok := findValue(image, v.Name); !ok {
			dst = append(dst, v)
		}
	}
	// A field the image does not carry (an unchanged TOASTed column, not sent) has
	// its agreed value, where it is kept.
	for _, a := range d.st.Agreed {
		_, inImage := findValue(image, a.Name)
		_, isDecided := findValue(d.decided, a.Name)
		if inImage || isDecided || a.Value == nil || d.st.held(a.Name) {
			continue
		}
		if class, _ := d.r.classify(a.Name); class != classUnmapped {
			dst = append(dst, Value{Name: a.Name, FP: a.FP, Value: a.Value})
		}
	}
	return dst
}

// agreeOn makes the values a create carries agreed where the agreed image has no
// value yet: the created record holds them now.
func (d *decider) agreeOn(vals []Value) {
	for _, v := range vals {
		if d.st.agreed(v.Name) != nil {
			continue
		}
		a := AgreedField{Name: v.Name, FP: v.FP, Writer: d.origin, TsUs: d.originTs}
		if d.r.keepsValue(v.Name) {
			a.Value = d.keepValue(v.Value)
		}
		d.st.Agreed = append(d.st.Agreed, a)
	}
}

// send records an apply of the current change as in flight to the target and outputs it.
func (d *decider) send(target string, del bool, fields []Value, rule Rule, reason string) {
	if d.writer != "" {
		d.sendAs(d.writer, d.writerTs, target, del, fields, rule, reason)
		return
	}
	d.sendAs(d.origin, d.originTs, target, del, fields, rule, reason)
}

// sendAs sends a value another system's change set (an owner's value enforced, a
// winner's value restored): origin names that system.
func (d *decider) sendAs(origin string, tsUs int64, target string, del bool, fields []Value, rule Rule, reason string) {
	if rule == "" {
		rule = RuleSync
	}
	ss := d.st.system(target)
	if !del && d.r.typed(target) {
		var ok bool
		if fields, ok = d.fitting(origin, tsUs, target, fields); !ok && ss.present() {
			return
		}
	}
	a := Apply{
		EventID: d.eventID(),
		Delete:  del,
		Origin:  origin,
		TsUs:    tsUs,
		SentMs:  d.nowMs,
		Fields:  d.keepValues(fields),
	}
	a.Uncertain = !del && len(ss.InFlight) > 0 && ss.shows(a.Fields)
	a.Recreate = !del && ss.Known && ss.Deleted
	ss.InFlight = append(ss.InFlight, a)
	d.out.add(Decision{
		Kind: KindApply, Record: d.st.Record, System: d.origin, Target: target,
		Delete: del, Fields: a.Fields, Origin: origin, Rule: rule, Reason: reason, EventID: a.EventID,
	})
}

// fitting returns the fields whose values the target's columns can hold, and false
// when none is left of fields that were not empty. The others go to review with
// reason type_mismatch: a value is never rounded or cut to fit.
func (d *decider) fitting(origin string, tsUs int64, target string, fields []Value) ([]Value, bool) {
	var misfits []Value
	kept := fields[:0:0]
	for i, f := range fields {
		t := d.r.ColumnType(target, d.r.Column(target, f.Name))
		if !t.Known() || t.Fits(f.Value) {
			if misfits != nil {
				kept = append(kept, f)
			}
			continue
		}
		if misfits == nil {
			kept = append(kept, fields[:i]...)
		}
		misfits = append(misfits, f)
	}
	if misfits == nil {
		return fields, true
	}
	names := make([]string, len(misfits))
	for i, f := range misfits {
		names[i] = f.Name
	}
	d.raise(ReasonTypeMismatch, names, []Version{{System: origin, TsUs: tsUs, Fields: copyValues(misfits)}}, nil)
	d.out.Decisions[len(d.out.Decisions)-1].Target = target
	return kept, len(kept) > 0
}

// copyValues copies values into memory of their own (in one allocation for the bytes).
func copyValues(vs []Value) []Value {
	if len(vs) == 0 {
		return nil
	}
	n := 0
	for _, v := range vs {
		n += len(v.Value)
	}
	buf := make([]byte, 0, n)
	out := make([]Value, len(vs))
	for i, v := range vs {
		start := len(buf)
		buf = append(buf, v.Value...)
		out[i] = Value{Name: v.Name, FP: v.FP, Value: buf[start:len(buf):len(buf)]}
	}
	return out
}

// keep copies b into the decider's arena, memory the state may own: the values one
// call keeps share one allocation, or a few. Each copy is capped at its length, so an
// append to it never runs into the next. A nil or empty b gives an empty, non-nil
// slice (as a copy always did).
func (d *decider) keep(b []byte) []byte {
	if d.arena == nil || len(d.arena)+len(b) > cap(d.arena) {
		d.arena = make([]byte, 0, max(len(b), d.arenaHint))
		d.arenaHint = 0 // past the expected size: further blocks are made to measure
	}
	start := len(d.arena)
	d.arena = append(d.arena, b...)
	return d.arena[start:len(d.arena):len(d.arena)]
}

// keepValue is keep for an agreed value: an empty one stays nil (not kept).
func (d *decider) keepValue(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return d.keep(b)
}

// keepValues copies values into memory the state may own: their bytes in the arena.
func (d *decider) keepValues(vs []Value) []Value {
	if len(vs) == 0 {
		return nil
	}
	out := make([]Value, len(vs))
	for i, v := range vs {
		out[i] = Value{Name: v.Name, FP: v.FP, Value: d.keep(v.Value)}
	}
	return out
}

// valueBytes is the size of the values' bytes.
func valueBytes(vs []Value) int {
	n := 0
	for i := range vs {
		n += len(vs[i].Value)
	}
	return n
}

// eventID is deterministic in the record, the change that caused its first apply
// (system and position) and the number of applies sent for the record before it:
// reprocessing the same events yields the same ids, and no two applies of a record
// share one (two applies caused by one change, one sent at once and one when its
// pairing window closes, would otherwise). Its first 16 hex digits are IDBase, a
// hash of the record and that first cause, plus the apply's number (State.Sent), its
// last 16 a hash of the record alone (EventIDSuffix): the ids of one record's
// applies, which are only ever compared with each other, differ in their number,
// those of an earlier life of the record (a state deleted and made again) in IDBase,
// ids of two records in both halves; and a state keeps each id as the small
// difference of its number from Sent (pipeline/state).
func (d *decider) eventID() string {
	if d.st.IDBase == 0 {
		var buf [160]byte
		b := append(buf[:0], d.st.Record...)
		b = append(b, 0)
		b = append(b, d.origin...)
		b = append(b, 0)
		b = d.pos.AppendText(b)
		d.st.IDBase = max(xxhash.Sum64(b), 1) // 0 is "not set yet"
	}
	d.st.Sent++
	return FormatEventID(d.st.IDBase+d.st.Sent, EventIDSuffix(d.st.Record))
}

// EventIDSuffix is the second half of the event id of every apply of record (as a
// number: the id shows it as 16 lowercase hex digits, most significant first).
func EventIDSuffix(record string) uint64 {
	return xxhash.Sum64String(record)
}

func hashID(b []byte) string {
	h1 := xxhash.Sum64(b)
	b = append(b, 0xff)
	return FormatEventID(h1, xxhash.Sum64(b))
}

// FormatEventID writes an event id's two halves as 32 lowercase hex digits, most
// significant first.
func FormatEventID(h1, h2 uint64) string {
	var sum [16]byte
	binary.BigEndian.PutUint64(sum[:8], h1)
	binary.BigEndian.PutUint64(sum[8:], h2)
	return hex.EncodeToString(sum[:])
}

// entryID names a DLQ entry after the record and the change that raised it.
func entryID(record, system string, pos codecs.Position, reason string) string {
	b := append([]byte("dlq\x00"), record...)
	b = append(b, 0)
	b = append(b, system...)
	b = append(b, 0)
	b = pos.AppendText(b)
	b = append(b, reason...)
	return hashID(b)
}

// loopGuard counts the applies about to be sent; past loop_guard.max_applies within
// loop_guard.window the record is held in the DLQ with reason loop instead.
func (d *decider) loopGuard(n int) bool {
	st := d.st
	if d.nowMs-st.LoopStartMs >= d.r.loopWindow.Milliseconds() {
		st.LoopStartMs, st.LoopApplies = d.nowMs, 0
	}
	st.LoopApplies += uint32(n)
	if st.LoopApplies <= d.r.loopMax {
		return false
	}
	names := make([]string, 0, len(d.decided))
	for _, v := range d.decided {
		names = append(names, v.Name)
	}
	// (A copy: the decided values' memory is the Output's, reused by the next call.)
	d.raise(ReasonLoop, names, []Version{{System: d.origin, TsUs: d.originTs, Fields: slices.Clone(d.decided)}}, nil)
	return true
}

// changedField reports whether the event being decided changed the field.
func (d *decider) changedField(name string) bool {
	_, ok := findValue(d.changes, name)
	return ok
}
