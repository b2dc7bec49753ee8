package resolver_test

import (
	"fmt"
	"testing"

	"github.com/concord-sync/concord/codecs"
	"github.com/concord-sync/concord/resolver"
)

// fullState has something in every part of a State that holds memory.
func fullState() *resolver.State {
	v := func(name, value string) resolver.Value {
		return resolver.Value{Name: name, FP: resolver.Fingerprint([]byte(value)), Value: []byte(value)}
	}
	return &resolver.State{
		Record: "42", Version: 3, Key: []resolver.Value{v("id", "42")},
		Agreed: []resolver.AgreedField{
			{Name: "email", FP: 1, Writer: "crm", TsUs: 5, Value: []byte(`"a@b"`)},
			{Name: "phone", FP: 2, Writer: "billing", TsUs: 6}, // fingerprint only
			{Name: "note", FP: 3, Writer: "crm", TsUs: 7, Value: []byte{}},
		},
		Systems: []resolver.SystemState{
			{
				Name: "crm", Pos: codecs.Position{Kind: codecs.PosKafka, A: 1, B: 2}, Known: true,
				Seen:     []resolver.SeenField{{Name: "email", FP: 1}},
				InFlight: []resolver.Apply{{EventID: "e1", Origin: "billing", Fields: []resolver.Value{v("phone", `"1"`), v("email", `"x"`)}}, {EventID: "e2", Delete: true}},
				Landed:   []resolver.Landed{{EventID: "e0", Fields: []string{"email"}, FP: 1}, {EventID: "e00"}},
			},
			{Name: "billing", Seen: []resolver.SeenField{{Name: "phone", FP: 2}}, Landed: []resolver.Landed{{EventID: "e3", Fields: []string{"phone"}, FP: 2}}},
			{Name: "erp", Landed: []resolver.Landed{}},
		},
		Pending: []resolver.Pending{{System: "billing", TsUs: 9, Fields: []resolver.Value{v("phone", `"2"`)}}},
		Hold:    &resolver.Hold{EntryID: "h", Fields: []string{"email"}, Changes: 2},
	}
}

// dump prints a state in full (a slice that is nil and one that is empty alike: a
// clone may give either).
func dump(st *resolver.State) string {
	c := *st
	hold := c.Hold
	c.Hold = nil
	return fmt.Sprintf("%+v hold %+v", c, hold)
}

// TestCloneSharesNothing: a clone equals its state, and writing into either's memory
// leaves the other as it was.
func TestCloneSharesNothing(t *testing.T) {
	st := fullState()
	c := st.Clone()
	if dump(c) != dump(st) {
		t.Fatalf("clone differs:\n got %+v\nwant %+v", c, st)
	}
	scribble(st)
	if want := fullState(); dump(c) != dump(want) {
		t.Fatalf("writing into the state changed its clone:\n got %+v\nwant %+v", c, want)
	}
	st = fullState()
	c = st.Clone()
	scribble(c)
	if want := fullState(); dump(st) != dump(want) {
		t.Fatalf("writing into the clone changed the state:\n got %+v\nwant %+v", st, want)
	}
	// Growing one of the clone's values never runs into another's.
	c = fullState().Clone()
	c.Key[0].Value = append(c.Key[0].Value, "99"...)
	c.Systems[0].InFlight[0].Fields = append(c.Systems[0].InFlight[0].Fields, resolver.Value{Name: "z"})
	c.Key = append(c.Key, resolver.Value{Name: "k2", Value: []byte("0")})
	c.Systems[0].Seen = append(c.Systems[0].Seen, resolver.SeenField{Name: "z"})
	c.Systems[0].Landed = append(c.Systems[0].Landed, resolver.Landed{EventID: "z"})
	c.Systems[0].Landed[0].Fields = append(c.Systems[0].Landed[0].Fields, "z")
	want := fullState()
	want.Key[0].Value = []byte("4299")
	want.Key = append(want.Key, resolver.Value{Name: "k2", Value: []byte("0")})
	want.Systems[0].InFlight[0].Fields = append(want.Systems[0].InFlight[0].Fields, resolver.Value{Name: "z"})
	want.Systems[0].Seen = append(want.Systems[0].Seen, resolver.SeenField{Name: "z"})
	want.Systems[0].Landed = append(want.Systems[0].Landed, resolver.Landed{EventID: "z"})
	want.Systems[0].Landed[0].Fields = append(want.Systems[0].Landed[0].Fields, "z")
	if dump(c) != dump(want) {
		t.Fatalf("appending to a clone's slices:\n got %+v\nwant %+v", c, want)
	}
}

// scribble overwrites every byte and value the state holds.
func scribble(st *resolver.State) {
	wipe := func(vs []resolver.Value) {
		for i := range vs {
			for j := range vs[i].Value {
				vs[i].Value[j] = '#'
			}
			vs[i].Name, vs[i].FP = "#", 0
		}
	}
	wipe(st.Key)
	for i := range st.Agreed {
		for j := range st.Agreed[i].Value {
			st.Agreed[i].Value[j] = '#'
		}
		st.Agreed[i].Name = "#"
	}
	for i := range st.Systems {
		ss := &st.Systems[i]
		for j := range ss.Seen {
			ss.Seen[j].Name = "#"
		}
		for j := range ss.InFlight {
			wipe(ss.InFlight[j].Fields)
			ss.InFlight[j].EventID = "#"
		}
		for j := range ss.Landed {
			for k := range ss.Landed[j].Fields {
				ss.Landed[j].Fields[k] = "#"
			}
			ss.Landed[j].FP = 0
		}
		ss.Name = "#"
	}
	for i := range st.Pending {
		wipe(st.Pending[i].Fields)
	}
	st.Hold.Fields[0] = "#"
}

// BenchmarkClone clones a record's state as the memory store does on every read and
// write.
func BenchmarkClone(b *testing.B) {
	st := fullState()
	b.ReportAllocs()
	for b.Loop() {
		_ = st.Clone()
	}
}
