package state

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	"sync"

	"github.com/concord-sync/concord/codecs"
	"github.com/concord-sync/concord/resolver"
)

// Binary encoding of resolver.State (format versions 6 and 7; 2 to 5, which differ
// only in their event ids and in having no IDBase, are still read; format 1, which
// encoding_v1.go still reads, is what states written before those were stored in).
//
// A state is stored on every batch for every record it touches, and a million of
// them must fit in a modest Redis, so it is kept small (issue 13: at most 256 B of
// Redis memory per record):
//
//   - a leading format version byte, so that a later format can still read this one;
//   - names (field and system names) as indexes into a table: format 6 (MarshalState)
//     carries its own table in front; format 7 (what the Redis store writes) carries
//     none and its indexes point into the partition's append-only name dictionary
//     (see names.go), and it leaves out the record ID, which is in the key;
//   - varints for counts, lengths and small numbers, zigzag varints for signed ones,
//     and 8 fixed bytes for fingerprints (64-bit hashes, which a varint would make 10);
//   - times as differences: agreed timestamps from the previous agreed field's (the
//     first from LoopStartMs), in whole milliseconds when every agreed timestamp is
//     one (Debezium's source.ts_ms is), and the sent times of applies from LoopStartMs;
//   - what repeats the agreed image is a flag, not a copy: a system whose seen image
//     is exactly the agreed one (the steady state) has no seen list; a seen
//     fingerprint equal to the agreed one is a bit; a landed apply's fields (agreed
//     fields, in the agreed order) are a bit set over the agreed fields, and its one
//     fingerprint (resolver.Landed) a bit when it is the fold of the agreed ones, else
//     8 bytes; fields of an apply or a pending change without values, in the agreed
//     order, are two bit sets, which it sets and which of those to the agreed
//     fingerprint, and 8 bytes only for each other fingerprint; any other field of an
//     apply or of a pending change that sets the agreed fingerprint, with no value or
//     the agreed value, is a name and two bits;
//   - a key of one field whose value is the record ID (as text, or as a JSON string)
//     is only its name;
//   - an event ID that concord generated (32 lowercase hex digits, the first 16 the
//     state's IDBase plus the apply's number, 1 to Sent, the last 16 the record's:
//     resolver.EventIDSuffix) as Sent minus its number, one byte for the last 64
//     applies; one the resolver made before IDBase (the record's suffix, any first
//     half) as its first 8 bytes; other ids of 32 lowercase hex digits as 16 bytes;
//   - a value as its length and bytes, a JSON string without escapes as its inner
//     bytes and a flag, and its fingerprint left out when it is the value's
//     Fingerprint (as the resolver computes it), which a flag says; when every agreed
//     value is such a string with its own fingerprint, a flag on the agreed list says
//     so and each length shares a byte with the field's flags;
//   - counts that are usually 0 (pending changes, applies in flight) and a DeletedMs
//     that is usually 0 are flags.
//
// The bench's typical record (TestRedisMemoryOfBenchState) is 469 bytes in format 1
// (477 as stored, with the version), 198 in format 6 and 145 in format 7 (formats 4
// and 5, with 8 bytes for each of its two landed applies' ids and no IDBase: 205 and
// 152; formats 2 and 3, with 16 bytes: 221 and 168).
//
// Layout after the version byte (uv = unsigned varint, sv = zigzag varint, ref = uv
// name index, str = uv length + bytes, fp = 8 bytes little-endian, base =
// LoopStartMs; val = uv len<<3|4 JSON string, inner bytes only|2 derived|1 present,
// then the bytes and fp unless derived (no value: uv 0, fp); eid = uv (Sent-number)<<1|1
// for an id numbered from IDBase, uv 1<<1 + 8 bytes for another id ending in the
// record's suffix, uv 0 + 16 bytes for other 32 lowercase hex digits, else uv
// (len+2)<<1 + bytes (formats 4 and 5: the same without the shift and the numbered
// ids; formats 2 and 3: uv 0 + 16 bytes, else uv len+1 + bytes); pos = uv
// kind<<3|nonzero(A,B,C) + uv of each nonzero):
//
//	table    format 6 (and 4, 2) only: uv count, count × str
//	record   format 6 (and 4, 2) only: str
//	flags    uv: 1 Deleted, 2 Hold present, 4 Hold.Record, 8 Sent, 16 Unconfirmed,
//	         32 key is the record, 64 key is the record as a JSON string,
//	         128 DeletedMs, 256 Pending, 512 IDBase (formats 6 and 7)
//	deleted  when flag 128: sv DeletedMs
//	loop     sv LoopStartMs, uv LoopApplies
//	sent     when flagged: uv Sent
//	idbase   when flag 512: fp IDBase
//	unconf   when flagged: str Unconfirmed
//	key      when flag 32 or 64: ref name; else uv count, count × (ref name, val)
//	agreed   uv count<<2|1 whole ms|2 plain, count × (uv flags 1 name is the previous
//	         one's index+1|2 same writer as the previous|4 same time as the previous,
//	         plus, when plain, the inner length<<3; [ref name], [ref writer],
//	         [sv time-previous], when plain the inner bytes, else val); the first
//	         time is relative to base (×1000 unless whole ms)
//	systems  uv count, count × (ref name, uv flags 1 Known 2 Deleted 4 Landed 8 Marker
//	         16 seen is the agreed image 32 in flight, pos,
//	         unless flag 16: uv seen, seen × (uv ref<<1|same-as-agreed, [fp]),
//	         when flag 32: uv inflight, inflight × (eid, uv flags 1 Delete 2 Expired
//	         4 Uncertain 8 Recreate, ref origin, sv TsUs, sv SentMs-base, fields),
//	         when flag 4: uv landed, landed × (eid, sv SentMs-base, landed fields),
//	         when flag 8: fp MarkerFP)
//	pending  when flag 256: uv count, count × (ref system, sv TsUs, pos, sv
//	         DeadlineMs, fields)
//	hold     when flagged: str entry id, uv count, count × ref field, uv changes
//	fields   either uv count<<1|1, uv agreed fields set (bit i: agreed field i),
//	         uv those of them with the agreed fingerprint, fp of each other one;
//	         or uv count<<1, count × (uv ref<<2|mode, mode 1 the agreed fingerprint
//	         and no value, 2 the agreed fingerprint and value, 3 no value and fp,
//	         0 val)
//	landed fields  uv count<<2|2 FP is the fold of the agreed fingerprints (of
//	         the fields the bit set names, else of the first agreed field of each
//	         name)|1 the names are agreed fields in the agreed order; then when 1: uv
//	         agreed fields set (bit i: agreed field i), else count × ref name; unless
//	         2: fp
const (
	formatV2 = 2 // self-contained, event ids in 16 bytes: read only
	formatV3 = 3 // as the Redis store's format 5, event ids in 16 bytes: read only
	formatV4 = 4 // self-contained, event ids in 8 bytes: read only
	formatV5 = 5 // as the Redis store's format 7, event ids in 8 bytes: read only
	formatV6 = 6 // self-contained: MarshalState
	formatV7 = 7 // the Redis store's: names in the partition's dictionary, no record ID
)

// Event ID codes (the leading uv of eid) of formats 4 to 7, shifted left by one bit in
// formats 6 and 7, whose uv has bit 0 set for an id numbered from the state's IDBase
// (eidNumbered); formats 2 and 3 have no eidRecord and write the length of other ids
// plus 1.
const (
	eidHex      = 0 // 16 bytes: 32 lowercase hex digits
	eidRecord   = 1 // 8 bytes: 32 lowercase hex digits, the last 16 the record's EventIDSuffix
	eidBytes    = 2 // plus the length: the id's bytes
	eidNumbered = 1 // formats 6 and 7, bit 0: Sent minus the apply's number in the other bits
)

const (
	landedAgreedOrder = 1 << 0
	landedAgreedFP    = 1 << 1
	landedModeBits    = 2
)

const (
	flagDeleted     = 1 << 0
	flagHold        = 1 << 1
	flagHoldRecord  = 1 << 2
	flagSent        = 1 << 3
	flagUnconfirm   = 1 << 4
	flagKeyRecord   = 1 << 5 // formats 2 to 7
	flagKeyQuoted   = 1 << 6 // formats 2 to 7
	flagDeletedMs   = 1 << 7 // formats 2 to 7: DeletedMs is not 0
	flagPending     = 1 << 8 // formats 2 to 7: Pending is not empty
	flagIDBase      = 1 << 9 // formats 6 and 7: IDBase is not 0
	stateFlagsMask  = flagDeleted | flagHold | flagHoldRecord | flagSent | flagUnconfirm
	stateFlagsMask2 = stateFlagsMask | flagKeyRecord | flagKeyQuoted | flagDeletedMs | flagPending
	stateFlagsMask3 = stateFlagsMask2 | flagIDBase

	sysKnown      = 1 << 0
	sysDeleted    = 1 << 1
	sysLanded     = 1 << 2 // added to format 1 later: older states have no such bit
	sysMarker     = 1 << 3
	sysSeenAgreed = 1 << 4 // formats 2 to 7
	sysInFlight   = 1 << 5 // formats 2 to 7: InFlight is not empty
	sysFlagsMask  = sysKnown | sysDeleted | sysLanded | sysMarker
	sysFlagsMask2 = sysFlagsMask | sysSeenAgreed | sysInFlight

	applyDelete    = 1 << 0
	applyExpired   = 1 << 1
	applyUncertain = 1 << 2
	applyRecreate  = 1 << 3 // added to format 1 later: older states have no such bit
	applyFlagsMask = applyDelete | applyExpired | applyUncertain | applyRecreate

	agreedNextName   = 1 << 0
	agreedSameWriter = 1 << 1
	agreedSameTime   = 1 << 2
	agreedFlagsMask  = agreedNextName | agreedSameWriter | agreedSameTime

	agreedWholeMs = 1 << 0 // in the agreed count: times in whole milliseconds
	agreedPlain   = 1 << 1 // in the agreed count: plainValues

	valPresent = 1 << 0
	valDerived = 1 << 1
	valQuoted  = 1 << 2

	fieldExplicit     = 0
	fieldAgreedFP     = 1
	fieldAgreedFPVal  = 2
	fieldFP           = 3 // no value, a fingerprint of its own
	fieldModeBits     = 2
	hexEventIDLen     = 32
	binaryEventIDSize = hexEventIDLen / 2
)

// ErrCorrupt is wrapped by UnmarshalState errors: the bytes are not a state this
// version can read (truncated, damaged, or written by a newer format).
var ErrCorrupt = errors.New("state: corrupt encoded state")

// errUnknownName is wrapped with ErrCorrupt when a state refers to a name past the
// end of its table: for formats 3 and 5, a name the cached dictionary may not have yet.
var errUnknownName = errors.New("unknown name")

// MarshalState appends the self-contained binary encoding of st (format 6) to dst and
// returns the extended slice. Every field of st is encoded except Version, which the
// store keeps beside it. The encoding is deterministic: equal states give equal bytes.
func MarshalState(dst []byte, st *resolver.State) []byte {
	e, ok := encoders.Get().(*encoder)
	if !ok {
		e = new(encoder)
	}
	defer e.release()
	e.names = &e.local
	e.body(st)
	dst = append(dst, formatV6)
	dst = binary.AppendUvarint(dst, uint64(len(e.local.names)))
	for _, n := range e.local.names {
		dst = appendString(dst, n)
	}
	dst = appendString(dst, st.Record)
	return append(dst, e.buf...)
}

// marshalStored appends the encoding the Redis store keeps (format 7): no record ID,
// names as indexes of names, which adds those it does not know yet.
func marshalStored(dst []byte, st *resolver.State, names nameIndex) []byte {
	e, ok := encoders.Get().(*encoder)
	if !ok {
		e = new(encoder)
	}
	defer e.release()
	e.names = names
	e.body(st)
	dst = append(dst, formatV7)
	return append(dst, e.buf...)
}

// nameIndex gives the index of a name in the table an encoding's refs point into,
// adding it when it is not there yet.
type nameIndex interface {
	ref(name string) uint64
}

// encoder writes a state's body while its name index collects the names.
type encoder struct {
	buf    []byte
	names  nameIndex
	local  localNames // format 6's own table
	base   int64      // LoopStartMs, which apply times are written relative to
	agreed []resolver.AgreedField
	// agreedRefs are the refs of the agreed names, systems those of the system names
	// met so far: a state names the same few fields and systems many times, and these
	// save a lookup in the name index each time (a fifth of encoding a bench run's
	// states).
	agreedRefs []uint64
	systems    []nameRef
	distinct   bool // the agreed names are all different
	record     recordSuffix
	idBase     uint64 // the state's IDBase and Sent, which numbered event ids count from
	sent       uint64
}

var encoders = sync.Pool{New: func() any { return new(encoder) }}

func (e *encoder) release() {
	e.buf = e.buf[:0]
	e.names, e.agreed = nil, nil
	e.agreedRefs, e.systems = e.agreedRefs[:0], e.systems[:0]
	e.record = recordSuffix{}
	e.local.reset()
	if cap(e.buf) <= 64<<10 { // do not pin the memory of an outsized state
		encoders.Put(e)
	}
}

// localNames is a state's own string table (format 6).
type localNames struct {
	names []string
	index map[string]uint64 // built once names outgrows a linear scan
}

// linearNames is how many names are looked up by scanning before a map is built:
// typical states have a dozen names, for which a scan is faster than hashing.
const linearNames = 24

func (t *localNames) reset() {
	clear(t.names)
	t.names = t.names[:0]
	if t.index != nil {
		clear(t.index)
	}
}

func (t *localNames) ref(name string) uint64 {
	if len(t.names) <= linearNames {
		for i, n := range t.names {
			if n == name {
				return uint64(i)
			}
		}
	} else {
		if len(t.index) == 0 {
			if t.index == nil {
				t.index = make(map[string]uint64, 2*len(t.names))
			}
			for i, n := range t.names {
				if _, dup := t.index[n]; !dup {
					t.index[n] = uint64(i)
				}
			}
		}
		if i, ok := t.index[name]; ok {
			return i
		}
		t.index[name] = uint64(len(t.names))
	}
	t.names = append(t.names, name)
	return uint64(len(t.names) - 1)
}

func (e *encoder) ref(name string) { e.uv(e.names.ref(name)) }
func (e *encoder) uv(v uint64)     { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *encoder) sv(v int64)      { e.buf = binary.AppendVarint(e.buf, v) }
func (e *encoder) fp(v uint64)     { e.buf = binary.LittleEndian.AppendUint64(e.buf, v) }
func (e *encoder) str(s string)    { e.buf = appendString(e.buf, s) }

// nameRef is a name with its ref.
type nameRef struct {
	name string
	ref  uint64
}

// fieldRef is the ref of a field's name, agreed field i's (-1: none of them).
func (e *encoder) fieldRef(name string, i int) uint64 {
	if i >= 0 {
		return e.agreedRefs[i]
	}
	return e.names.ref(name)
}

// systemRef writes the ref of a system's name.
func (e *encoder) systemRef(name string) {
	for _, s := range e.systems {
		if s.name == name {
			e.uv(s.ref)
			return
		}
	}
	ref := e.names.ref(name)
	e.systems = append(e.systems, nameRef{name, ref})
	e.uv(ref)
}

// val writes a value and its fingerprint, leaving the fingerprint out when the
// decoder can compute it and the quotes out of a JSON string that has no escapes.
func (e *encoder) val(fp uint64, v []byte) {
	if v == nil {
		e.uv(0)
		e.fp(fp)
		return
	}
	var head uint64 = valPresent
	derived := resolver.Fingerprint(v) == fp
	if derived {
		head |= valDerived
	}
	body := v
	if plainJSONString(v) {
		head |= valQuoted
		body = v[1 : len(v)-1]
	}
	e.uv(head | uint64(len(body))<<3)
	e.buf = append(e.buf, body...)
	if !derived {
		e.fp(fp)
	}
}

// plainJSONString tells whether v is a JSON string that needs no escape, so that
// quoting its inner bytes gives v back exactly.
func plainJSONString(v []byte) bool {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return false
	}
	for _, c := range v[1 : len(v)-1] {
		if !plainByte[c] {
			return false
		}
	}
	return true
}

// plainByte tells the bytes a JSON string holds as they are: not a quote, a
// backslash or a control character.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// eid writes an event ID: as the difference of its number from Sent when it is one
// the resolver gave an apply of the record (32 lowercase hex digits, the last 16 the
// record's, the first 16 IDBase plus a number from 1 to Sent: resolver.decider's
// eventID), as 8 bytes when it ends in the record's suffix but is not numbered so (an
// id of a state written before IDBase), as 16 when it is other 32 lowercase hex
// digits, else as its bytes.
func (e *encoder) eid(id string) {
	// The usual id first: the record's suffix (hex digits by making) and 16 more.
	if len(id) == hexEventIDLen && e.record.is(id[binaryEventIDSize:]) {
		if head, ok := hexUint64(id[:binaryEventIDSize]); ok {
			if n, ok := idNumber(head, e.idBase, e.sent); ok {
				e.uv((e.sent-n)<<1 | eidNumbered)
				return
			}
			e.uv(eidRecord << 1)
			e.buf = binary.BigEndian.AppendUint64(e.buf, head)
			return
		}
	}
	if !isHexEventID(id) {
		e.uv((uint64(len(id)) + eidBytes) << 1)
		e.buf = append(e.buf, id...)
		return
	}
	e.uv(eidHex << 1)
	e.buf, _ = hex.AppendDecode(e.buf, []byte(id))
}

// idNumber is the number of the apply whose id's first half is head, when the state's
// ids count from base and it has sent sent applies: head-base when that is 1 to sent.
func idNumber(head, base, sent uint64) (uint64, bool) {
	n := head - base // wraps as the resolver's IDBase+Sent does
	return n, base != 0 && n >= 1 && n <= sent
}

// hexUint64 reads 16 lowercase hex digits, most significant first; false when one
// is not such a digit.
func hexUint64(digits string) (uint64, bool) {
	var v uint64
	var bad byte
	for i := range binaryEventIDSize {
		d := hexValue[digits[i]]
		bad |= d
		v = v<<4 | uint64(d&0x0f)
	}
	return v, bad&notHex == 0
}

// recordSuffix is the second half of the event ids of a record's applies
// (resolver.EventIDSuffix) in hex, worked out once per state when first needed.
type recordSuffix struct {
	record string
	set    bool
	sum    uint64
	digits [binaryEventIDSize]byte
}

// hex is the suffix's 16 hex digits. Callers compare or copy them: a string made of
// them here would escape to the heap, once per event id.
func (r *recordSuffix) hex() *[binaryEventIDSize]byte {
	if !r.set {
		r.sum = resolver.EventIDSuffix(r.record)
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], r.sum)
		hex.Encode(r.digits[:], b[:])
		r.set = true
	}
	return &r.digits
}

// is reports whether digits are the suffix's.
func (r *recordSuffix) is(digits string) bool { return digits == string(r.hex()[:]) }

// id is the event id of the record whose first half is head.
func (r *recordSuffix) id(head uint64) string {
	r.hex() // works out sum too
	return resolver.FormatEventID(head, r.sum)
}

func isHexEventID(id string) bool {
	if len(id) != hexEventIDLen {
		return false
	}
	for i := range hexEventIDLen {
		if !lowerHex[id[i]] {
			return false
		}
	}
	return true
}

const notHex = 0x80

// lowerHex tells the lowercase hex digits (a table: the test per byte of every event
// id of every state written was 2% of a bench run's CPU as comparisons).
var lowerHex = func() (t [256]bool) {
	for _, c := range "0123456789abcdef" {
		t[c] = true
	}
	return t
}()

// hexValue is the value of each lowercase hex digit, notHex for every other byte.
var hexValue = func() (t [256]byte) {
	for i := range t {
		t[i] = notHex
	}
	for i, c := range "0123456789abcdef" {
		t[c] = byte(i)
	}
	return t
}()

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

// fields writes the fields of an apply or a pending change, as a name and a mode
// where they repeat the agreed image, and as two bit sets over the agreed fields
// where they are agreed fields in the agreed order without values.
func (e *encoder) fields(vs []resolver.Value) {
	if mask, ok := e.agreedOrder(vs); ok {
		e.uv(uint64(len(vs))<<1 | 1)
		var same uint64
		for k, v := range vs {
			if i := e.agreedAt(v.Name, k); e.agreed[i].FP == v.FP {
				same |= 1 << i
			}
		}
		e.uv(mask)
		e.uv(same)
		for k, v := range vs {
			if i := e.agreedAt(v.Name, k); same&(1<<i) == 0 {
				e.fp(v.FP)
			}
		}
		return
	}
	e.uv(uint64(len(vs)) << 1)
	for k, v := range vs {
		i := e.agreedAt(v.Name, k)
		ref := e.fieldRef(v.Name, i) << fieldModeBits
		var a *resolver.AgreedField
		if i >= 0 {
			a = &e.agreed[i]
		}
		switch {
		case a != nil && a.FP == v.FP && v.Value == nil:
			e.uv(ref | fieldAgreedFP)
		case a != nil && a.FP == v.FP && a.Value != nil && bytes.Equal(a.Value, v.Value):
			e.uv(ref | fieldAgreedFPVal)
		case v.Value == nil:
			e.uv(ref | fieldFP)
			e.fp(v.FP)
		default:
			e.uv(ref | fieldExplicit)
			e.val(v.FP, v.Value)
		}
	}
}

// landedFields writes a landed apply's fields and fingerprint (landed fields in the
// layout above).
func (e *encoder) landedFields(l *resolver.Landed) {
	mask, fp, inOrder := agreedNamesOrder(l.Fields, e.agreed)
	head := uint64(len(l.Fields)) << landedModeBits
	ok := inOrder
	if inOrder {
		head |= landedAgreedOrder
	} else {
		fp, ok = agreedLandedFP(l.Fields, e.agreed)
	}
	derived := ok && fp == l.FP
	if derived {
		head |= landedAgreedFP
	}
	e.uv(head)
	if inOrder {
		e.uv(mask)
	} else {
		for _, n := range l.Fields {
			e.ref(n)
		}
	}
	if !derived {
		e.fp(l.FP)
	}
}

// agreedLandedFP is the landed fingerprint of the agreed values of the named fields
// (each the first agreed field of its name), or false when one is not an agreed field.
func agreedLandedFP(names []string, agreed []resolver.AgreedField) (uint64, bool) {
	var fp uint64
	for _, n := range names {
		a := agreedField(agreed, n)
		if a == nil {
			return 0, false
		}
		fp = resolver.LandedFP(fp, a.FP)
	}
	return fp, true
}

// agreedNamesOrder tells whether the names are those of agreed fields in the agreed
// order, among the first 64, each matched to the next agreed field of its name; and
// if so which (bit i: agreed field i), and the landed fingerprint of their agreed
// values. One pass over both lists.
func agreedNamesOrder(names []string, agreed []resolver.AgreedField) (mask, fp uint64, ok bool) {
	if len(names) == 0 {
		return 0, 0, false
	}
	j := 0
	for _, n := range names {
		for j < len(agreed) && agreed[j].Name != n {
			j++
		}
		if j >= len(agreed) || j >= 64 {
			return 0, 0, false
		}
		mask |= 1 << j
		fp = resolver.LandedFP(fp, agreed[j].FP)
		j++
	}
	return mask, fp, true
}

// agreedOrder tells whether the fields are agreed fields without values, each named
// as the first agreed field of its name, in the agreed order, among the first 64;
// and if so which (bit i: agreed field i).
func (e *encoder) agreedOrder(vs []resolver.Value) (uint64, bool) {
	if len(vs) == 0 {
		return 0, false
	}
	var mask uint64
	prev := -1
	for k, v := range vs {
		if v.Value != nil {
			return 0, false
		}
		i := e.agreedAt(v.Name, k)
		if i <= prev || i >= 64 {
			return 0, false
		}
		mask |= 1 << i
		prev = i
	}
	return mask, true
}

// agreedAt is agreedIndex(e.agreed, name) for the name at position at of its list.
// When the agreed names are distinct it looks at agreed field at first: a state's
// lists mostly begin with the first agreed fields, in the agreed order.
func (e *encoder) agreedAt(name string, at int) int {
	if e.distinct && at < len(e.agreed) && e.agreed[at].Name == name {
		return at
	}
	return agreedIndex(e.agreed, name)
}

// distinctRefs tells whether the refs are all different (false past 64 of them,
// where it does not look).
func distinctRefs(refs []uint64) bool {
	if len(refs) > 64 {
		return false
	}
	for i, r := range refs {
		for _, o := range refs[:i] {
			if o == r {
				return false
			}
		}
	}
	return true
}

// agreedIndex returns the index of the first agreed field of that name, or -1.
func agreedIndex(agreed []resolver.AgreedField, name string) int {
	for i := range agreed {
		if agreed[i].Name == name {
			return i
		}
	}
	return -1
}

// keyIsRecord tells how a key repeats the record ID: flagKeyRecord, flagKeyQuoted,
// or 0 when it does not (several fields, a fingerprint that is not the value's).
func keyIsRecord(st *resolver.State) uint64 {
	if len(st.Key) != 1 {
		return 0
	}
	k := st.Key[0]
	switch {
	case k.Value == nil || resolver.Fingerprint(k.Value) != k.FP:
		return 0
	case string(k.Value) == st.Record:
		return flagKeyRecord
	case len(k.Value) == len(st.Record)+2 && plainJSONString(k.Value) && string(k.Value[1:len(k.Value)-1]) == st.Record:
		return flagKeyQuoted
	}
	return 0
}

func (e *encoder) body(st *resolver.State) {
	e.base, e.agreed = st.LoopStartMs, st.Agreed
	e.record = recordSuffix{record: st.Record}
	e.idBase, e.sent = st.IDBase, st.Sent
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
	if st.DeletedMs != 0 {
		flags |= flagDeletedMs
	}
	if len(st.Pending) > 0 {
		flags |= flagPending
	}
	if st.IDBase != 0 {
		flags |= flagIDBase
	}
	key := keyIsRecord(st)
	flags |= key
	e.uv(flags)
	if st.DeletedMs != 0 {
		e.sv(st.DeletedMs)
	}
	e.sv(st.LoopStartMs)
	e.uv(uint64(st.LoopApplies))
	if st.Sent != 0 {
		e.uv(st.Sent)
	}
	if st.IDBase != 0 {
		e.fp(st.IDBase)
	}
	if st.Unconfirmed != "" {
		e.str(st.Unconfirmed)
	}
	if key != 0 {
		e.ref(st.Key[0].Name)
	} else {
		e.uv(uint64(len(st.Key)))
		for _, v := range st.Key {
			e.ref(v.Name)
			e.val(v.FP, v.Value)
		}
	}
	e.agreedFields(st.Agreed)
	e.uv(uint64(len(st.Systems)))
	for i := range st.Systems {
		e.system(&st.Systems[i])
	}
	if len(st.Pending) > 0 {
		e.uv(uint64(len(st.Pending)))
	}
	for _, p := range st.Pending {
		e.systemRef(p.System)
		e.sv(p.TsUs)
		e.pos(p.Position)
		e.sv(p.DeadlineMs)
		e.fields(p.Fields)
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

func wholeMs(fields []resolver.AgreedField) bool {
	for _, a := range fields {
		if a.TsUs%1000 != 0 {
			return false
		}
	}
	return true
}

// plainValues tells whether every agreed value is a JSON string without escapes,
// with the value's own fingerprint: each is then its inner bytes, and their length
// shares a byte with the field's flags.
func plainValues(fields []resolver.AgreedField) bool {
	for _, a := range fields {
		if !plainJSONString(a.Value) || resolver.Fingerprint(a.Value) != a.FP {
			return false
		}
	}
	return true
}

func (e *encoder) agreedFields(fields []resolver.AgreedField) {
	ms := len(fields) > 0 && wholeMs(fields)
	plain := len(fields) > 0 && plainValues(fields)
	head := uint64(len(fields)) << 2
	if ms {
		head |= agreedWholeMs
	}
	if plain {
		head |= agreedPlain
	}
	e.uv(head)
	// The names first, in order, so that names new to the table get consecutive
	// indexes (and the next agreed name is usually the previous one's index+1).
	if b, ok := e.names.(*batchNames); ok {
		e.agreedRefs = b.agreedRefs(e.agreedRefs, fields)
	} else {
		for _, a := range fields {
			e.agreedRefs = append(e.agreedRefs, e.names.ref(a.Name))
		}
	}
	e.distinct = distinctRefs(e.agreedRefs)
	prevTs := e.base * 1000 // wraps on overflow; the decoder wraps it back
	if ms {
		prevTs = e.base
	}
	var prevRef uint64
	for i, a := range fields {
		ref, ts := e.agreedRefs[i], a.TsUs
		if ms {
			ts /= 1000
		}
		var flags uint64
		if i > 0 {
			if ref == prevRef+1 {
				flags |= agreedNextName
			}
			if a.Writer == fields[i-1].Writer {
				flags |= agreedSameWriter
			}
			if ts == prevTs {
				flags |= agreedSameTime
			}
		}
		if plain {
			e.uv(uint64(len(a.Value)-2)<<3 | flags)
		} else {
			e.uv(flags)
		}
		if flags&agreedNextName == 0 {
			e.uv(ref)
		}
		if flags&agreedSameWriter == 0 {
			e.systemRef(a.Writer)
		}
		if flags&agreedSameTime == 0 {
			e.sv(ts - prevTs)
		}
		prevRef, prevTs = ref, ts
		if plain {
			e.buf = append(e.buf, a.Value[1:len(a.Value)-1]...)
		} else {
			e.val(a.FP, a.Value)
		}
	}
}

// seenIsAgreed tells whether a system shows exactly the agreed image: its seen
// fields are the agreed ones, in their order, with their fingerprints.
func seenIsAgreed(seen []resolver.SeenField, agreed []resolver.AgreedField) bool {
	if len(seen) == 0 || len(seen) != len(agreed) {
		return false
	}
	for i := range seen {
		if seen[i].Name != agreed[i].Name || seen[i].FP != agreed[i].FP {
			return false
		}
	}
	return true
}

func (e *encoder) system(ss *resolver.SystemState) {
	e.systemRef(ss.Name)
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
	if len(ss.InFlight) > 0 {
		flags |= sysInFlight
	}
	seenAgreed := seenIsAgreed(ss.Seen, e.agreed)
	if seenAgreed {
		flags |= sysSeenAgreed
	}
	e.uv(flags)
	e.pos(ss.Pos)
	if !seenAgreed {
		e.uv(uint64(len(ss.Seen)))
		for k, f := range ss.Seen {
			i := e.agreedAt(f.Name, k)
			ref := e.fieldRef(f.Name, i) << 1
			if i >= 0 && e.agreed[i].FP == f.FP {
				e.uv(ref | 1)
				continue
			}
			e.uv(ref)
			e.fp(f.FP)
		}
	}
	if len(ss.InFlight) > 0 {
		e.uv(uint64(len(ss.InFlight)))
	}
	for _, a := range ss.InFlight {
		e.eid(a.EventID)
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
		e.systemRef(a.Origin)
		e.sv(a.TsUs)
		e.sv(a.SentMs - e.base)
		e.fields(a.Fields)
	}
	if len(ss.Landed) > 0 {
		e.uv(uint64(len(ss.Landed)))
		for _, l := range ss.Landed {
			e.eid(l.EventID)
			e.sv(l.SentMs - e.base)
			e.landedFields(&l)
		}
	}
	if ss.MarkerFP != 0 {
		e.fp(ss.MarkerFP)
	}
}

// agreedField returns the first agreed field of that name, or nil. Encoder and
// decoder both use it, so a state with repeated names still round-trips.
func agreedField(agreed []resolver.AgreedField, name string) *resolver.AgreedField {
	for i := range agreed {
		if agreed[i].Name == name {
			return &agreed[i]
		}
	}
	return nil
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// UnmarshalState decodes a state written by MarshalState (format 6, or formats 4, 2
// and 1 of earlier versions) into st, replacing all of its contents; st.Version is left 0
// (the store sets it). The decoded state shares no memory with b. Truncated, damaged
// or unknown input gives an error wrapping ErrCorrupt, never a panic, and leaves st
// zero.
func UnmarshalState(b []byte, st *resolver.State) error {
	return unmarshal(b, "", nil, st)
}

// unmarshalStored decodes what the Redis store keeps of record: format 7 (or 5, 3),
// whose names are indexes of names, or the formats UnmarshalState reads.
func unmarshalStored(b []byte, record string, names []string, st *resolver.State) error {
	return unmarshal(b, record, names, st)
}

func unmarshal(b []byte, record string, names []string, st *resolver.State) error {
	*st = resolver.State{}
	if len(b) == 0 {
		return fmt.Errorf("%w: empty", ErrCorrupt)
	}
	d := decoder{b: b, off: 1}
	switch b[0] {
	case formatV1:
		d.stateV1(st)
	case formatV2, formatV4, formatV6:
		d.recordIDs, d.numberedIDs = b[0] >= formatV4, b[0] == formatV6
		d.table()
		st.Record = d.str()
		d.record.record = st.Record
		d.state(st)
	case formatV3, formatV5, formatV7:
		if names == nil {
			return fmt.Errorf("%w: format %d is the Redis store's, which needs its partition's names", ErrCorrupt, b[0])
		}
		d.recordIDs, d.numberedIDs = b[0] >= formatV5, b[0] == formatV7
		d.names = names
		st.Record = record
		d.record.record = record
		d.state(st)
	default:
		return fmt.Errorf("%w: format version %d, this build reads %d to %d", ErrCorrupt, b[0], formatV1, formatV7)
	}
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
	b      []byte
	off    int
	names  []string
	err    error
	base   int64
	agreed []resolver.AgreedField
	// recordIDs: the format has eidRecord (4 to 7), whose ids end in record's suffix;
	// numberedIDs: it has eidNumbered and IDBase (6 and 7).
	recordIDs, numberedIDs bool
	record                 recordSuffix
	idBase, sent           uint64
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
func (d *decoder) count() int { return d.checkCount(d.uv()) }

func (d *decoder) checkCount(n uint64) int {
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

func (d *decoder) val() (uint64, []byte) {
	head := d.uv()
	if head&valPresent == 0 {
		if head != 0 {
			d.fail("value flags %#x without a value", head)
		}
		return d.fp(), nil
	}
	body := d.bytes(head >> 3)
	if d.err != nil {
		return 0, nil
	}
	var v []byte
	if head&valQuoted != 0 {
		v = make([]byte, 0, len(body)+2)
		v = append(append(append(v, '"'), body...), '"')
	} else {
		v = append(make([]byte, 0, len(body)), body...)
	}
	if head&valDerived != 0 {
		return resolver.Fingerprint(v), v
	}
	return d.fp(), v
}

func (d *decoder) eid() string {
	n := d.uv()
	if !d.recordIDs { // formats 2 and 3: 0 for 16 bytes, else the length plus 1
		if n == 0 {
			return d.hexID(binaryEventIDSize)
		}
		return string(d.bytes(n - 1))
	}
	if d.numberedIDs {
		if n&eidNumbered != 0 {
			back := n >> 1
			if d.idBase == 0 || back >= d.sent {
				d.fail("event id numbered %d back from apply %d: outside the state's applies (IDBase %#x)", back, d.sent, d.idBase)
				return ""
			}
			return d.record.id(d.idBase + d.sent - back)
		}
		n >>= 1
	}
	switch n {
	case eidHex:
		id := d.hexID(binaryEventIDSize)
		if d.err == nil && d.record.is(id[binaryEventIDSize:]) {
			d.fail("event id %s in 16 bytes ends in the record's suffix", id) // the encoder writes it in 8: not canonical
		}
		return id
	case eidRecord:
		b := d.bytes(binaryEventIDSize / 2)
		if d.err != nil {
			return ""
		}
		head := binary.BigEndian.Uint64(b)
		id := d.record.id(head)
		if d.numberedIDs {
			if _, ok := idNumber(head, d.idBase, d.sent); ok {
				d.fail("event id %s in 8 bytes is numbered from IDBase", id) // the encoder writes its number: not canonical
			}
		}
		return id
	}
	id := string(d.bytes(n - eidBytes))
	if d.err == nil && isHexEventID(id) {
		d.fail("event id %s as text", id) // not canonical
	}
	return id
}

// hexID reads n bytes of an event id as hex digits.
func (d *decoder) hexID(n int) string {
	b := d.bytes(uint64(n))
	if d.err != nil {
		return ""
	}
	return hex.EncodeToString(b)
}

func (d *decoder) name(ref uint64) string {
	if ref >= uint64(len(d.names)) {
		if d.err == nil {
			d.err = fmt.Errorf("%w: at byte %d: %w: %d of a table of %d", ErrCorrupt, d.off, errUnknownName, ref, len(d.names))
		}
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

func (d *decoder) fields() []resolver.Value {
	head := d.uv()
	if head&1 != 0 { // fields that repeat the agreed image take no byte: no count check
		if head>>1 > 64 {
			d.fail("%d agreed fields of at most 64", head>>1)
			return nil
		}
		return d.agreedOrderFields(int(head >> 1))
	}
	n := d.checkCount(head >> 1)
	if n == 0 {
		return nil
	}
	vs := make([]resolver.Value, n)
	for i := range vs {
		head := d.uv()
		v := &vs[i]
		v.Name = d.name(head >> fieldModeBits)
		mode := head & (1<<fieldModeBits - 1)
		switch mode {
		case fieldExplicit:
			v.FP, v.Value = d.val()
			continue
		case fieldFP:
			v.FP = d.fp()
			continue
		}
		a := agreedField(d.agreed, v.Name)
		if a == nil {
			d.fail("field %q refers to an agreed field that is absent", v.Name)
			continue
		}
		v.FP = a.FP
		if mode == fieldAgreedFPVal {
			if a.Value == nil {
				d.fail("field %q refers to the agreed value, which is absent", v.Name)
			}
			v.Value = append([]byte{}, a.Value...)
		}
	}
	return vs
}

// landedFields reads what encoder.landedFields writes.
func (d *decoder) landedFields(l *resolver.Landed) {
	head := d.uv()
	n := head >> landedModeBits
	var fp uint64 // the fold of the agreed fingerprints of the fields
	ok := true
	if head&landedAgreedOrder != 0 {
		mask := d.uv()
		if d.err != nil {
			return
		}
		if n == 0 || n > 64 || bits.OnesCount64(mask) != int(n) || bits.Len64(mask) > len(d.agreed) {
			d.fail("landed fields %#x of %d, %d agreed", mask, n, len(d.agreed))
			return
		}
		l.Fields = make([]string, 0, n)
		for i := range bits.Len64(mask) {
			if mask&(1<<i) != 0 {
				l.Fields = append(l.Fields, d.agreed[i].Name)
				fp = resolver.LandedFP(fp, d.agreed[i].FP)
			}
		}
	} else {
		if c := d.checkCount(n); c > 0 {
			l.Fields = make([]string, c)
			for i := range l.Fields {
				l.Fields[i] = d.ref()
			}
		}
		if head&landedAgreedFP != 0 {
			fp, ok = agreedLandedFP(l.Fields, d.agreed)
		}
	}
	switch {
	case head&landedAgreedFP == 0:
		l.FP = d.fp()
	case !ok:
		d.fail("landed fields %q refer to agreed fields that are absent", l.Fields)
	default:
		l.FP = fp
	}
}

// landedOf is a landed apply of format 1 (a fingerprint per field) as
// resolver.Landed keeps it: the names and their fold.
func landedOf(vs []resolver.Value) ([]string, uint64) {
	if len(vs) == 0 {
		return nil, 0
	}
	names := make([]string, len(vs))
	var fp uint64
	for i, v := range vs {
		names[i] = v.Name
		fp = resolver.LandedFP(fp, v.FP)
	}
	return names, fp
}

func (d *decoder) agreedOrderFields(n int) []resolver.Value {
	mask, same := d.uv(), d.uv()
	if d.err != nil {
		return nil
	}
	if n == 0 || bits.OnesCount64(mask) != n || same&^mask != 0 || bits.Len64(mask) > len(d.agreed) {
		d.fail("agreed fields %#x (%#x the agreed fingerprint) of %d, %d agreed", mask, same, n, len(d.agreed))
		return nil
	}
	vs := make([]resolver.Value, 0, n)
	for i := range bits.Len64(mask) {
		if mask&(1<<i) == 0 {
			continue
		}
		v := resolver.Value{Name: d.agreed[i].Name, FP: d.agreed[i].FP}
		if same&(1<<i) == 0 {
			v.FP = d.fp()
		}
		vs = append(vs, v)
	}
	return vs
}

func (d *decoder) state(st *resolver.State) {
	mask := uint64(stateFlagsMask2)
	if d.numberedIDs {
		mask = stateFlagsMask3
	}
	flags := d.flags(mask)
	st.Deleted = flags&flagDeleted != 0
	if flags&flagDeletedMs != 0 {
		if st.DeletedMs = d.sv(); st.DeletedMs == 0 {
			d.fail("a DeletedMs flag with a DeletedMs of 0")
		}
	}
	st.LoopStartMs = d.sv()
	d.base = st.LoopStartMs
	loops := d.uv()
	if loops > 1<<32-1 {
		d.fail("loop count %d", loops)
	}
	st.LoopApplies = uint32(loops)
	if flags&flagSent != 0 {
		if st.Sent = d.uv(); st.Sent == 0 {
			d.fail("a Sent flag with a Sent of 0")
		}
	}
	if flags&flagIDBase != 0 {
		if st.IDBase = d.fp(); st.IDBase == 0 {
			d.fail("an IDBase flag with an IDBase of 0")
		}
	}
	d.idBase, d.sent = st.IDBase, st.Sent
	if flags&flagUnconfirm != 0 {
		st.Unconfirmed = d.str()
	}
	d.key(st, flags&(flagKeyRecord|flagKeyQuoted))
	st.Agreed = d.agreedFields()
	d.agreed = st.Agreed
	if n := d.count(); n > 0 {
		st.Systems = make([]resolver.SystemState, n)
		for i := range st.Systems {
			d.system(&st.Systems[i])
		}
	}
	if flags&flagPending != 0 {
		n := d.count()
		if n == 0 {
			d.fail("a pending flag without a pending change")
		}
		st.Pending = make([]resolver.Pending, n)
		for i := range st.Pending {
			p := &st.Pending[i]
			p.System = d.ref()
			p.TsUs = d.sv()
			p.Position = d.pos()
			p.DeadlineMs = d.sv()
			p.Fields = d.fields()
		}
	}
	d.hold(st, flags)
}

func (d *decoder) key(st *resolver.State, mode uint64) {
	switch mode {
	case 0:
		if n := d.count(); n > 0 {
			st.Key = make([]resolver.Value, n)
			for i := range st.Key {
				st.Key[i].Name = d.ref()
				st.Key[i].FP, st.Key[i].Value = d.val()
			}
		}
		return
	case flagKeyRecord:
		st.Key = []resolver.Value{{Name: d.ref(), Value: []byte(st.Record)}}
	case flagKeyQuoted:
		if !plainJSONString([]byte(`"` + st.Record + `"`)) {
			d.fail("a key of the record as a JSON string, which %q needs escapes to be", st.Record)
		}
		st.Key = []resolver.Value{{Name: d.ref(), Value: []byte(`"` + st.Record + `"`)}}
	default:
		d.fail("both key flags")
		return
	}
	st.Key[0].FP = resolver.Fingerprint(st.Key[0].Value)
}

func (d *decoder) hold(st *resolver.State, flags uint64) {
	if flags&flagHold == 0 {
		if flags&flagHoldRecord != 0 {
			d.fail("whole-record hold flag without a hold")
		}
		return
	}
	st.Hold = &resolver.Hold{EntryID: d.str(), Record: flags&flagHoldRecord != 0}
	if n := d.count(); n > 0 {
		st.Hold.Fields = make([]string, n)
		for i := range st.Hold.Fields {
			st.Hold.Fields[i] = d.ref()
		}
	}
	st.Hold.Changes = uint32(d.uv())
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

func (d *decoder) agreedFields() []resolver.AgreedField {
	head := d.uv()
	n, ms, plain := d.checkCount(head>>2), head&agreedWholeMs != 0, head&agreedPlain != 0
	if n == 0 {
		if head != 0 {
			d.fail("agreed head %#x", head)
		}
		return nil
	}
	fields := make([]resolver.AgreedField, n)
	prevTs := d.base * 1000
	if ms {
		prevTs = d.base
	}
	var prevRef uint64
	for i := range fields {
		a := &fields[i]
		var flags, plainLen uint64
		if plain {
			flags = d.uv()
			flags, plainLen = flags&agreedFlagsMask, flags>>3
		} else {
			flags = d.flags(agreedFlagsMask)
		}
		if i == 0 && flags != 0 {
			d.fail("the first agreed field refers to a previous one")
		}
		ref := prevRef + 1
		if flags&agreedNextName == 0 {
			ref = d.uv()
		}
		a.Name = d.name(ref)
		if flags&agreedSameWriter == 0 {
			a.Writer = d.ref()
		} else if i > 0 {
			a.Writer = fields[i-1].Writer
		}
		ts := prevTs
		if flags&agreedSameTime == 0 {
			ts += d.sv()
		}
		prevRef, prevTs = ref, ts
		a.TsUs = ts
		if ms {
			a.TsUs = ts * 1000
		}
		if !plain {
			a.FP, a.Value = d.val()
			continue
		}
		inner := d.bytes(plainLen)
		a.Value = make([]byte, 0, len(inner)+2)
		a.Value = append(append(append(a.Value, '"'), inner...), '"')
		a.FP = resolver.Fingerprint(a.Value)
	}
	return fields
}

func (d *decoder) system(ss *resolver.SystemState) {
	ss.Name = d.ref()
	flags := d.flags(sysFlagsMask2)
	ss.Known = flags&sysKnown != 0
	ss.Deleted = flags&sysDeleted != 0
	ss.Pos = d.pos()
	if flags&sysSeenAgreed != 0 {
		if len(d.agreed) == 0 {
			d.fail("seen as agreed without an agreed image")
		}
		ss.Seen = make([]resolver.SeenField, len(d.agreed))
		for i, a := range d.agreed {
			ss.Seen[i] = resolver.SeenField{Name: a.Name, FP: a.FP}
		}
	} else if n := d.count(); n > 0 {
		ss.Seen = make([]resolver.SeenField, n)
		for i := range ss.Seen {
			ref := d.uv()
			f := &ss.Seen[i]
			f.Name = d.name(ref >> 1)
			if ref&1 == 0 {
				f.FP = d.fp()
				continue
			}
			a := agreedField(d.agreed, f.Name)
			if a == nil {
				d.fail("seen field %q refers to an agreed field that is absent", f.Name)
				continue
			}
			f.FP = a.FP
		}
	}
	if flags&sysInFlight != 0 {
		n := d.count()
		if n == 0 {
			d.fail("an in-flight flag without an apply in flight")
		}
		ss.InFlight = make([]resolver.Apply, n)
		for i := range ss.InFlight {
			a := &ss.InFlight[i]
			a.EventID = d.eid()
			af := d.flags(applyFlagsMask)
			a.Delete = af&applyDelete != 0
			a.Expired = af&applyExpired != 0
			a.Uncertain = af&applyUncertain != 0
			a.Recreate = af&applyRecreate != 0
			a.Origin = d.ref()
			a.TsUs = d.sv()
			a.SentMs = d.base + d.sv()
			a.Fields = d.fields()
		}
	}
	if flags&sysLanded != 0 {
		n := d.count()
		if n == 0 {
			d.fail("landed flag without any landed apply") // the encoder never writes one: not canonical
		}
		ss.Landed = make([]resolver.Landed, n)
		for i := range ss.Landed {
			l := &ss.Landed[i]
			l.EventID = d.eid()
			l.SentMs = d.base + d.sv()
			d.landedFields(l)
		}
	}
	if flags&sysMarker != 0 {
		ss.MarkerFP = d.fp()
	}
}
