package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/concord-sync/concord/codecs"
	"github.com/concord-sync/concord/resolver"
)

// Binary encoding of resolver.State (format version 1).
//
// A state is stored on every batch for every record it touches, so it is kept small:
//
//   - a leading format version byte, so that a later format can still read this one;
//   - a per-state string table of the names that repeat (field names in Key, Agreed,
//     Seen, in-flight applies, Pending and Hold; system names as systems, writers,
//     origins): every later mention is its index, one byte for up to 128 names;
//   - varints for counts, lengths and small numbers, zigzag varints for signed ones,
//     and 8 fixed bytes for fingerprints (64-bit hashes, which a varint would make 10);
//   - agreed timestamps as the difference from the previous agreed field's (one change
//     usually sets several fields, so most differences are 0);
//   - a seen fingerprint equal to the agreed one of the same field (the steady state:
//     every system shows the converged image) is a flag bit, not 8 bytes;
//   - a value is its length plus one, so that 0 is "no value" (nil) and 1 is empty,
//     and a value's fingerprint is left out when it is the value's Fingerprint (as the
//     resolver computes it), which a flag bit says.
//
// Layout after the version byte (uv = unsigned varint, sv = zigzag varint, ref = uv
// index into the string table, str = uv length + bytes, fp = 8 bytes little-endian,
// fpval = uv (length+1)<<1|derived + bytes + fp unless derived (the fingerprint of a
// nil value is never derived), pos = uv kind<<3|nonzero(A,B,C) + uv of each nonzero):
//
//	table    uv count, count × str
//	record   str
//	flags    uv: 1 Deleted, 2 Hold present, 4 Hold.Record, 8 Sent, 16 Unconfirmed
//	deleted  sv DeletedMs
//	loop     sv LoopStartMs, uv LoopApplies
//	sent     when flagged: uv Sent
//	unconf   when flagged: str Unconfirmed
//	key      values
//	agreed   uv count, count × (ref name, ref writer, sv TsUs-previous, fpval)
//	systems  uv count, count × (ref name, uv flags 1 Known 2 Deleted 4 Landed 8 Marker, pos,
//	         uv seen, seen × (uv ref<<1|same-as-agreed, [fp]),
//	         uv inflight, inflight × (str event id, uv flags 1 Delete 2 Expired
//	         4 Uncertain 8 Recreate, ref origin,
//	         sv TsUs, sv SentMs, values),
//	         when flag 4: uv landed, landed × (str event id, sv SentMs, values),
//	         when flag 8: fp MarkerFP)
//	pending  uv count, count × (ref system, sv TsUs, pos, sv DeadlineMs, values)
//	hold     when flagged: str entry id, uv count, count × ref field, uv changes
//	values   uv count, count × (ref name, fpval)
const formatV1 = 1

const (
	flagDeleted    = 1 << 0
	flagHold       = 1 << 1
	flagHoldRecord = 1 << 2
	flagSent       = 1 << 3
	flagUnconfirm  = 1 << 4
	stateFlagsMask = flagDeleted | flagHold | flagHoldRecord | flagSent | flagUnconfirm

	sysKnown     = 1 << 0
	sysDeleted   = 1 << 1
	sysLanded    = 1 << 2 // added to format 1 later: older states have no such bit
	sysMarker    = 1 << 3
	sysFlagsMask = sysKnown | sysDeleted | sysLanded | sysMarker

	applyDelete    = 1 << 0
	applyExpired   = 1 << 1
	applyUncertain = 1 << 2
	applyRecreate  = 1 << 3 // added to format 1 later: older states have no such bit
	applyFlagsMask = applyDelete | applyExpired | applyUncertain | applyRecreate
)

// ErrCorrupt is wrapped by UnmarshalState errors: the bytes are not a state this
// version can read (truncated, damaged, or written by a newer format).
var ErrCorrupt = errors.New("state: corrupt encoded state")

// MarshalState appends the binary encoding of st to dst and returns the extended
// slice. Every field of st is encoded except Version, which the store keeps beside
// it. The encoding is deterministic: equal states give equal bytes.
func MarshalState(dst []byte, st *resolver.State) []byte {
	e, ok := encoders.Get().(*encoder)
	if !ok {
		e = new(encoder)
	}
	defer e.release()
	e.body(st)
	dst = append(dst, formatV1)
	dst = binary.AppendUvarint(dst, uint64(len(e.names)))
	for _, n := range e.names {
		dst = appendString(dst, n)
	}
	return append(dst, e.buf...)
}

// encoder writes a state's body while collecting its string table, which is then
// written in front of it.
type encoder struct {
	buf   []byte
	names []string
	index map[string]uint64 // built once names outgrows a linear scan
}

var encoders = sync.Pool{New: func() any { return new(encoder) }}

// linearNames is how many names are looked up by scanning before a map is built:
// typical states have a dozen names, for which a scan is faster than hashing.
const linearNames = 24

func (e *encoder) release() {
	e.buf = e.buf[:0]
	clear(e.names)
	e.names = e.names[:0]
	if e.index != nil {
		clear(e.index)
	}
	if cap(e.buf) <= 64<<10 { // do not pin the memory of an outsized state
		encoders.Put(e)
	}
}

func (e *encoder) ref(name string) {
	e.buf = binary.AppendUvarint(e.buf, e.lookup(name))
}

func (e *encoder) lookup(name string) uint64 {
	if len(e.names) <= linearNames {
		for i, n := range e.names {
			if n == name {
				return uint64(i)
			}
		}
	} else {
		if len(e.index) == 0 {
			if e.index == nil {
				e.index = make(map[string]uint64, 2*len(e.names))
			}
			for i, n := range e.names {
				if _, dup := e.index[n]; !dup {
					e.index[n] = uint64(i)
				}
			}
		}
		if i, ok := e.index[name]; ok {
			return i
		}
		e.index[name] = uint64(len(e.names))
	}
	e.names = append(e.names, name)
	return uint64(len(e.names) - 1)
}

func (e *encoder) uv(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *encoder) sv(v int64)  { e.buf = binary.AppendVarint(e.buf, v) }
func (e *encoder) fp(v uint64) { e.buf = binary.LittleEndian.AppendUint64(e.buf, v) }
func (e *encoder) str(s string) {
	e.buf = appendString(e.buf, s)
}

// fpval writes a value and its fingerprint, leaving the fingerprint out when the
// decoder can compute it.
func (e *encoder) fpval(fp uint64, v []byte) {
	if v == nil {
		e.uv(0)
		e.fp(fp)
		return
	}
	derived := resolver.Fingerprint(v) == fp
	head := (uint64(len(v)) + 1) << 1
	if derived {
		head |= 1
	}
	e.uv(head)
	e.buf = append(e.buf, v...)
	if !derived {
		e.fp(fp)
	}
}

func (e *encoder) pos(p codecs.Position) {
	head := uint64(p.Kind) << 3
	for i, v := range [3]uint64{p.A, p.B, p.C} {
		if v != 0 {
			head |= 1 << i
		}
	}
	e.uv(head)
	for _, v := range [3]uint64{p.A, p.B, p.C} {
		if v != 0 {
			e.uv(v)
		}
	}
}

func (e *encoder) values(vs []resolver.Value) {
	e.uv(uint64(len(vs)))
	for _, v := range vs {
		e.ref(v.Name)
		e.fpval(v.FP, v.Value)
	}
}

func (e *encoder) body(st *resolver.State) {
	e.str(st.Record)
	var flags uint64
	if st.Deleted {
		flags |= flagDeleted
	}
	if st.Hold != nil {
		flags |= flagHold
		if st.Hold.Record {
			flags |= flagHoldRecord
		}
	}
	if st.Sent != 0 {
		flags |= flagSent
	}
	if st.Unconfirmed != "" {
		flags |= flagUnconfirm
	}
	e.uv(flags)
	e.sv(st.DeletedMs)
	e.sv(st.LoopStartMs)
	e.uv(uint64(st.LoopApplies))
	if st.Sent != 0 {
		e.uv(st.Sent)
	}
	if st.Unconfirmed != "" {
		e.str(st.Unconfirmed)
	}
	e.values(st.Key)
	e.agreed(st.Agreed)
	e.uv(uint64(len(st.Systems)))
	for i := range st.Systems {
		e.system(&st.Systems[i], st.Agreed)
	}
	e.uv(uint64(len(st.Pending)))
	for _, p := range st.Pending {
		e.ref(p.System)
		e.sv(p.TsUs)
		e.pos(p.Position)
		e.sv(p.DeadlineMs)
		e.values(p.Fields)
	}
	if h := st.Hold; h != nil {
		e.str(h.EntryID)
		e.uv(uint64(len(h.Fields)))
		for _, f := range h.Fields {
			e.ref(f)
		}
		e.uv(uint64(h.Changes))
	}
}

func (e *encoder) agreed(fields []resolver.AgreedField) {
	e.uv(uint64(len(fields)))
	var prevTs int64
	for _, a := range fields {
		e.ref(a.Name)
		e.ref(a.Writer)
		e.sv(a.TsUs - prevTs) // wraps on overflow; the decoder wraps it back
		prevTs = a.TsUs
		e.fpval(a.FP, a.Value)
	}
}

func (e *encoder) system(ss *resolver.SystemState, agreed []resolver.AgreedField) {
	e.ref(ss.Name)
	var flags uint64
	if ss.Known {
		flags |= sysKnown
	}
	if ss.Deleted {
		flags |= sysDeleted
	}
	if len(ss.Landed) > 0 {
		flags |= sysLanded
	}
	if ss.MarkerFP != 0 {
		flags |= sysMarker
	}
	e.uv(flags)
	e.pos(ss.Pos)
	e.uv(uint64(len(ss.Seen)))
	for _, f := range ss.Seen {
		ref := e.lookup(f.Name) << 1
		if fp, ok := agreedFP(agreed, f.Name); ok && fp == f.FP {
			e.uv(ref | 1)
			continue
		}
		e.uv(ref)
		e.fp(f.FP)
	}
	e.uv(uint64(len(ss.InFlight)))
	for _, a := range ss.InFlight {
		e.str(a.EventID)
		var aflags uint64
		if a.Delete {
			aflags |= applyDelete
		}
		if a.Expired {
			aflags |= applyExpired
		}
		if a.Uncertain {
			aflags |= applyUncertain
		}
		if a.Recreate {
			aflags |= applyRecreate
		}
		e.uv(aflags)
		e.ref(a.Origin)
		e.sv(a.TsUs)
		e.sv(a.SentMs)
		e.values(a.Fields)
	}
	if len(ss.Landed) > 0 {
		e.uv(uint64(len(ss.Landed)))
		for _, l := range ss.Landed {
			e.str(l.EventID)
			e.sv(l.SentMs)
			e.values(l.Fields)
		}
	}
	if ss.MarkerFP != 0 {
		e.fp(ss.MarkerFP)
	}
}

// agreedFP returns the fingerprint of the first agreed field of that name. Encoder
// and decoder both use it, so a state with repeated names still round-trips.
func agreedFP(agreed []resolver.AgreedField, name string) (uint64, bool) {
	for i := range agreed {
		if agreed[i].Name == name {
			return agreed[i].FP, true
		}
	}
	return 0, false
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// UnmarshalState decodes a state written by MarshalState into st, replacing all of
// its contents; st.Version is left 0 (the store sets it). The decoded state shares no
// memory with b. Truncated, damaged or unknown input gives an error wrapping
// ErrCorrupt, never a panic, and leaves st zero.
func UnmarshalState(b []byte, st *resolver.State) error {
	*st = resolver.State{}
	if len(b) == 0 {
		return fmt.Errorf("%w: empty", ErrCorrupt)
	}
	if b[0] != formatV1 {
		return fmt.Errorf("%w: format version %d, this build reads %d", ErrCorrupt, b[0], formatV1)
	}
	d := decoder{b: b, off: 1}
	d.state(st)
	if d.err == nil && d.off != len(b) {
		d.fail("%d trailing bytes", len(b)-d.off)
	}
	if d.err != nil {
		*st = resolver.State{}
		return d.err
	}
	return nil
}

// decoder reads an encoded state. The first error sticks: later reads return zero
// values, so decoding code needs no error check after every field.
type decoder struct {
	b     []byte
	off   int
	names []string
	err   error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: at byte %d: %s", ErrCorrupt, d.off, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) uv() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) sv() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) fp() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b)-d.off < 8 {
		d.fail("truncated fingerprint")
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b[d.off:])
	d.off += 8
	return v
}

// count reads a number of elements, each of which takes at least one byte, so a
// corrupt count cannot make the decoder allocate more than the input's size.
func (d *decoder) count() int {
	n := d.uv()
	if n > uint64(len(d.b)-d.off) {
		d.fail("count %d exceeds the %d bytes left", n, len(d.b)-d.off)
		return 0
	}
	return int(n)
}

func (d *decoder) bytes(n uint64) []byte {
	if n > uint64(len(d.b)-d.off) {
		d.fail("length %d exceeds the %d bytes left", n, len(d.b)-d.off)
		return nil
	}
	v := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return v
}

func (d *decoder) str() string { return string(d.bytes(d.uv())) }

func (d *decoder) fpval() (uint64, []byte) {
	head := d.uv()
	n, derived := head>>1, head&1 != 0
	if n == 0 {
		if derived {
			d.fail("derived fingerprint of no value")
		}
		return d.fp(), nil
	}
	v := append([]byte{}, d.bytes(n-1)...)
	if d.err != nil {
		return 0, nil
	}
	if derived {
		return resolver.Fingerprint(v), v
	}
	return d.fp(), v
}

func (d *decoder) name(ref uint64) string {
	if ref >= uint64(len(d.names)) {
		d.fail("name %d of a table of %d", ref, len(d.names))
		return ""
	}
	return d.names[ref]
}

func (d *decoder) ref() string { return d.name(d.uv()) }

func (d *decoder) flags(mask uint64) uint64 {
	f := d.uv()
	if f&^mask != 0 {
		d.fail("unknown flags %#x", f&^mask)
	}
	return f
}

func (d *decoder) pos() codecs.Position {
	head := d.uv()
	if head>>3 > 0xff {
		d.fail("position kind %d", head>>3)
		return codecs.Position{}
	}
	p := codecs.Position{Kind: codecs.PositionKind(head >> 3)}
	for i, dst := range [3]*uint64{&p.A, &p.B, &p.C} {
		if head&(1<<i) != 0 {
			*dst = d.uv()
		}
	}
	return p
}

func (d *decoder) values() []resolver.Value {
	n := d.count()
	if n == 0 {
		return nil
	}
	vs := make([]resolver.Value, n)
	for i := range vs {
		vs[i].Name = d.ref()
		vs[i].FP, vs[i].Value = d.fpval()
	}
	return vs
}

func (d *decoder) state(st *resolver.State) {
	d.table()
	st.Record = d.str()
	flags := d.flags(stateFlagsMask)
	st.Deleted = flags&flagDeleted != 0
	st.DeletedMs = d.sv()
	st.LoopStartMs = d.sv()
	loops := d.uv()
	if loops > 1<<32-1 {
		d.fail("loop count %d", loops)
	}
	st.LoopApplies = uint32(loops)
	if flags&flagSent != 0 {
		st.Sent = d.uv()
	}
	if flags&flagUnconfirm != 0 {
		st.Unconfirmed = d.str()
	}
	st.Key = d.values()
	st.Agreed = d.agreed()
	if n := d.count(); n > 0 {
		st.Systems = make([]resolver.SystemState, n)
		for i := range st.Systems {
			d.system(&st.Systems[i], st.Agreed)
		}
	}
	if n := d.count(); n > 0 {
		st.Pending = make([]resolver.Pending, n)
		for i := range st.Pending {
			p := &st.Pending[i]
			p.System = d.ref()
			p.TsUs = d.sv()
			p.Position = d.pos()
			p.DeadlineMs = d.sv()
			p.Fields = d.values()
		}
	}
	if flags&flagHold != 0 {
		st.Hold = &resolver.Hold{EntryID: d.str(), Record: flags&flagHoldRecord != 0}
		if n := d.count(); n > 0 {
			st.Hold.Fields = make([]string, n)
			for i := range st.Hold.Fields {
				st.Hold.Fields[i] = d.ref()
			}
		}
		st.Hold.Changes = uint32(d.uv())
	} else if flags&flagHoldRecord != 0 {
		d.fail("whole-record hold flag without a hold")
	}
}

// table reads the string table into one string that every name is a slice of: one
// allocation for all the names of a state.
func (d *decoder) table() {
	n := d.count()
	if n == 0 {
		return
	}
	start := d.off
	for range n {
		d.bytes(d.uv())
	}
	if d.err != nil {
		return
	}
	all := string(d.b[start:d.off])
	d.names = make([]string, n)
	for i, off := 0, 0; i < n; i++ { // the loop above checked every length
		l, w := binary.Uvarint(d.b[start+off:])
		off += w
		d.names[i] = all[off : off+int(l)]
		off += int(l)
	}
}

func (d *decoder) agreed() []resolver.AgreedField {
	n := d.count()
	if n == 0 {
		return nil
	}
	fields := make([]resolver.AgreedField, n)
	var prevTs int64
	for i := range fields {
		a := &fields[i]
		a.Name = d.ref()
		a.Writer = d.ref()
		a.TsUs = prevTs + d.sv()
		prevTs = a.TsUs
		a.FP, a.Value = d.fpval()
	}
	return fields
}

func (d *decoder) system(ss *resolver.SystemState, agreed []resolver.AgreedField) {
	ss.Name = d.ref()
	flags := d.flags(sysFlagsMask)
	ss.Known = flags&sysKnown != 0
	ss.Deleted = flags&sysDeleted != 0
	ss.Pos = d.pos()
	if n := d.count(); n > 0 {
		ss.Seen = make([]resolver.SeenField, n)
		for i := range ss.Seen {
			ref := d.uv()
			f := &ss.Seen[i]
			f.Name = d.name(ref >> 1)
			if ref&1 == 0 {
				f.FP = d.fp()
				continue
			}
			fp, ok := agreedFP(agreed, f.Name)
			if !ok && d.err == nil {
				d.fail("seen field %q refers to an agreed field that is absent", f.Name)
			}
			f.FP = fp
		}
	}
	if n := d.count(); n > 0 {
		ss.InFlight = make([]resolver.Apply, n)
		for i := range ss.InFlight {
			a := &ss.InFlight[i]
			a.EventID = d.str()
			af := d.flags(applyFlagsMask)
			a.Delete = af&applyDelete != 0
			a.Expired = af&applyExpired != 0
			a.Uncertain = af&applyUncertain != 0
			a.Recreate = af&applyRecreate != 0
			a.Origin = d.ref()
			a.TsUs = d.sv()
			a.SentMs = d.sv()
			a.Fields = d.values()
		}
	}
	if flags&sysLanded != 0 {
		n := d.count()
		if n == 0 {
			d.fail("landed flag without any landed apply") // MarshalState never writes one: not canonical
		}
		ss.Landed = make([]resolver.Landed, n)
		for i := range ss.Landed {
			l := &ss.Landed[i]
			l.EventID = d.str()
			l.SentMs = d.sv()
			l.Fields = d.values()
		}
	}
	if flags&sysMarker != 0 {
		ss.MarkerFP = d.fp()
	}
}
