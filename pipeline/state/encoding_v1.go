package state

import (
	"github.com/concord-sync/concord/resolver"
)

// Format 1, which states were stored in before format 2 and 3 (see encoding.go): a
// per-state string table, then
//
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
//
// where fpval = uv (length+1)<<1|derived + bytes + fp unless derived. This build only
// reads it: the Redis store rewrites a format-1 state in its own format (3) on the
// next write of the record.
const formatV1 = 1

func (d *decoder) fpvalV1() (uint64, []byte) {
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

func (d *decoder) valuesV1() []resolver.Value {
	n := d.count()
	if n == 0 {
		return nil
	}
	vs := make([]resolver.Value, n)
	for i := range vs {
		vs[i].Name = d.ref()
		vs[i].FP, vs[i].Value = d.fpvalV1()
	}
	return vs
}

func (d *decoder) stateV1(st *resolver.State) {
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
	st.Key = d.valuesV1()
	st.Agreed = d.agreedV1()
	if n := d.count(); n > 0 {
		st.Systems = make([]resolver.SystemState, n)
		for i := range st.Systems {
			d.systemV1(&st.Systems[i], st.Agreed)
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
			p.Fields = d.valuesV1()
		}
	}
	d.hold(st, flags)
}

func (d *decoder) agreedV1() []resolver.AgreedField {
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
		a.FP, a.Value = d.fpvalV1()
	}
	return fields
}

func (d *decoder) systemV1(ss *resolver.SystemState, agreed []resolver.AgreedField) {
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
			a := agreedField(agreed, f.Name)
			if a == nil {
				if d.err == nil {
					d.fail("seen field %q refers to an agreed field that is absent", f.Name)
				}
				continue
			}
			f.FP = a.FP
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
			a.Fields = d.valuesV1()
		}
	}
	if flags&sysLanded != 0 {
		n := d.count()
		if n == 0 {
			d.fail("landed flag without any landed apply") // format 1's encoder never wrote one: not canonical
		}
		ss.Landed = make([]resolver.Landed, n)
		for i := range ss.Landed {
			l := &ss.Landed[i]
			l.EventID = d.str()
			l.SentMs = d.sv()
			l.Fields, l.FP = landedOf(d.valuesV1())
		}
	}
	if flags&sysMarker != 0 {
		ss.MarkerFP = d.fp()
	}
}
