package state_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/concord-sync/concord/codecs"
	"github.com/concord-sync/concord/pipeline/state"
	"github.com/concord-sync/concord/pipeline/state/statetest"
	"github.com/concord-sync/concord/resolver"
)

// randomState builds a state whose parts take the shortcuts of formats 6 and 7 or
// not, at random: values that are plain JSON strings or not, fingerprints derived
// or not, seen images and apply fields that repeat the agreed image or not, in the
// agreed order or not, hex event ids or not, at the end of the encoding or not.
func randomState(r *rand.Rand) *resolver.State {
	pick := func(p float64) bool { return r.Float64() < p }
	names := []string{"id", "f0", "f1", "f2", "f3", "crm", "billing", "erp"}
	value := func() []byte {
		switch r.IntN(5) {
		case 0:
			return nil
		case 1:
			return []byte{}
		case 2:
			return []byte(fmt.Sprintf(`"v%d\n"`, r.IntN(100)))
		default:
			return []byte(fmt.Sprintf(`"v-%d"`, r.IntN(1000)))
		}
	}
	fp := func(v []byte) uint64 {
		if v != nil && pick(0.8) {
			return resolver.Fingerprint(v)
		}
		return r.Uint64() >> r.IntN(64)
	}
	st := &resolver.State{Record: fmt.Sprintf("r-%d", r.IntN(10000)), LoopStartMs: r.Int64N(2e12) * int64(r.IntN(2))}
	if pick(0.8) {
		st.Sent = 1 + r.Uint64N(100)
	}
	switch {
	case pick(0.2): // counting past 2^64, as IDBase+Sent may
		st.IDBase = ^uint64(0) - r.Uint64N(8)
	case pick(0.8):
		st.IDBase = 1 + r.Uint64N(1<<63)
	}
	eid := func() string {
		switch {
		case pick(0.4): // as the resolver makes them since IDBase, numbered 0 to Sent+1
			return resolver.FormatEventID(st.IDBase+r.Uint64N(st.Sent+2), resolver.EventIDSuffix(st.Record))
		case pick(0.5): // as the resolver made them before: the record's suffix
			return fmt.Sprintf("%016x%016x", r.Uint64(), resolver.EventIDSuffix(st.Record))
		case pick(0.5):
			return fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64())
		}
		return fmt.Sprintf("e%d", r.IntN(100))
	}
	if pick(0.7) {
		k := []byte(`"` + st.Record + `"`)
		if pick(0.3) {
			k = []byte(st.Record)
		}
		st.Key = []resolver.Value{{Name: "id", FP: fp(k), Value: k}}
	}
	ts := r.Int64N(2e15)
	for i := range r.IntN(5) {
		if pick(0.3) {
			ts += r.Int64N(1e6)
		}
		v := value()
		if pick(0.8) {
			v = []byte(fmt.Sprintf(`"f%d-%d"`, i, r.IntN(100)))
		}
		st.Agreed = append(st.Agreed, resolver.AgreedField{Name: names[1+r.IntN(4)], Writer: names[5+r.IntN(3)], TsUs: ts / 1000 * 1000, FP: fp(v), Value: v})
		if pick(0.2) {
			st.Agreed[i].TsUs++
		}
	}
	fields := func() []resolver.Value {
		var vs []resolver.Value
		ordered := pick(0.5)
		for i, a := range st.Agreed {
			switch {
			case ordered && pick(0.7):
				v := resolver.Value{Name: a.Name, FP: a.FP}
				if pick(0.3) {
					v.FP = r.Uint64()
				}
				vs = append(vs, v)
			case !ordered && pick(0.5):
				v := resolver.Value{Name: st.Agreed[r.IntN(i+1)].Name, Value: value()}
				v.FP = fp(v.Value)
				if pick(0.3) {
					v.FP, v.Value = a.FP, a.Value
				}
				vs = append(vs, v)
			}
		}
		return vs
	}
	// A landed apply: agreed fields in the agreed order or any names, its fingerprint
	// the fold of the agreed ones or not.
	landed := func() resolver.Landed {
		l := resolver.Landed{EventID: eid(), SentMs: st.LoopStartMs - r.Int64N(5000)}
		ordered := pick(0.5)
		for i, a := range st.Agreed {
			switch {
			case ordered && pick(0.7):
				l.Fields = append(l.Fields, a.Name)
			case !ordered && pick(0.5):
				l.Fields = append(l.Fields, names[r.IntN(i+2)])
			}
		}
		derived := pick(0.6)
		for _, n := range l.Fields {
			fp := r.Uint64()
			for _, a := range st.Agreed {
				if a.Name == n && derived {
					fp = a.FP
					break
				}
			}
			l.FP = resolver.LandedFP(l.FP, fp)
		}
		return l
	}
	for _, sys := range names[5 : 5+r.IntN(4)] {
		ss := resolver.SystemState{Name: sys, Known: pick(0.9), Deleted: pick(0.1), Pos: codecs.Position{Kind: codecs.PosPostgres, A: r.Uint64N(1e6)}}
		if pick(0.6) {
			for _, a := range st.Agreed {
				ss.Seen = append(ss.Seen, resolver.SeenField{Name: a.Name, FP: a.FP})
			}
			if len(ss.Seen) > 0 && pick(0.3) {
				ss.Seen[r.IntN(len(ss.Seen))].FP = r.Uint64()
			}
		}
		for range r.IntN(3) {
			ss.InFlight = append(ss.InFlight, resolver.Apply{EventID: eid(), Origin: names[5+r.IntN(3)], TsUs: r.Int64N(2e15), SentMs: st.LoopStartMs + r.Int64N(2000) - 1000, Fields: fields(), Delete: pick(0.1)})
		}
		for range r.IntN(3) {
			ss.Landed = append(ss.Landed, landed())
		}
		if pick(0.2) {
			ss.MarkerFP = r.Uint64()
		}
		st.Systems = append(st.Systems, ss)
	}
	if pick(0.2) {
		st.Pending = []resolver.Pending{{System: "crm", TsUs: ts, DeadlineMs: st.LoopStartMs + 500, Fields: fields()}}
	}
	if pick(0.1) {
		st.Deleted, st.DeletedMs = true, st.LoopStartMs
	}
	return st
}

// TestMarshalStateRandom round-trips random states through formats 6 and 7, the
// latter also with the Redis store's index of one Put's names, shared by all.
func TestMarshalStateRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 1))
	batch := state.NewBatchNames()
	for i := range 20000 {
		want := randomState(r)
		b := state.MarshalState(nil, want)
		var got resolver.State
		if err := state.UnmarshalState(b, &got); err != nil {
			t.Fatalf("state %d, format 6: %v\n%+v", i, err, want)
		}
		if !statetest.Equal(&got, want) {
			t.Fatalf("state %d, format 6 changed it:\n got %+v\nwant %+v", i, &got, want)
		}
		if again := state.MarshalState(nil, &got); !bytes.Equal(again, b) {
			t.Fatalf("state %d, format 6 is not deterministic", i)
		}
		names := &state.TestNames{Names: []string{"x"}}
		b = state.MarshalStored(nil, want, names)
		got = resolver.State{}
		if err := state.UnmarshalStored(b, want.Record, names.Names, &got); err != nil {
			t.Fatalf("state %d, format 7: %v\n%+v", i, err, want)
		}
		if !statetest.Equal(&got, want) {
			t.Fatalf("state %d, format 7 changed it:\n got %+v\nwant %+v", i, &got, want)
		}
		b = state.MarshalStoredBatch(nil, want, batch)
		got = resolver.State{}
		if err := state.UnmarshalStored(b, want.Record, batch.Names(), &got); err != nil {
			t.Fatalf("state %d, format 7 with a Put's names: %v\n%+v", i, err, want)
		}
		if !statetest.Equal(&got, want) {
			t.Fatalf("state %d, format 7 with a Put's names changed it:\n got %+v\nwant %+v", i, &got, want)
		}
	}
}

// FuzzUnmarshalStored is FuzzUnmarshalState for format 7, against a fixed dictionary.
func FuzzUnmarshalStored(f *testing.F) {
	dict := []string{"id", "email", "name", "crm", "billing", "notes", "f0", "f1", "f2"}
	for _, st := range roundTripCases() {
		names := &state.TestNames{Names: dict}
		if b := state.MarshalStored(nil, st, names); len(names.Names) == len(dict) {
			f.Add(b, st.Record)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, record string) {
		var st resolver.State
		if err := state.UnmarshalStored(b, record, dict, &st); err != nil {
			return
		}
		names := &state.TestNames{Names: dict}
		once := state.MarshalStored(nil, &st, names)
		var again resolver.State
		if err := state.UnmarshalStored(once, record, names.Names, &again); err != nil {
			t.Fatalf("re-decoding an encoded state: %v", err)
		}
		if twice := state.MarshalStored(nil, &again, names); !bytes.Equal(once, twice) {
			t.Fatalf("Marshal(Unmarshal(Marshal(x))) != Marshal(x):\n%x\n%x", once, twice)
		}
		if !statetest.Equal(&st, &again) {
			t.Fatalf("decode, encode, decode changed the state:\n%+v\n%+v", st, again)
		}
	})
}
