package state_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/concord-sync/concord/codecs"
	"github.com/concord-sync/concord/pipeline/state"
	"github.com/concord-sync/concord/pipeline/state/statetest"
	"github.com/concord-sync/concord/resolver"
)

// typicalState is the benchmarked typical record: 10 fields agreed without values
// (one change set most of them), and two systems that each showed the agreed image
// (10 seen fingerprints), nothing in flight.
func typicalState() *resolver.State {
	names := []string{"name", "email", "phone", "company", "title", "street", "city", "country", "notes", "status"}
	st := &resolver.State{
		Record: "1048576",
		Key:    []resolver.Value{{Name: "id", FP: resolver.Fingerprint([]byte("1048576")), Value: []byte("1048576")}},
	}
	crm := resolver.SystemState{Name: "crm", Known: true, Pos: codecs.Position{Kind: codecs.PosPostgres, A: 0x1_6B37_4D28}}
	billing := resolver.SystemState{Name: "billing", Known: true, Pos: codecs.Position{Kind: codecs.PosMySQL, A: 12, B: 98_765_432}}
	for i, n := range names {
		fp := resolver.Fingerprint([]byte(fmt.Sprintf("%q", n+" value")))
		writer, ts := "crm", int64(1_764_000_000_123_456)
		if i >= 7 {
			writer, ts = "billing", 1_764_000_100_654_321
		}
		st.Agreed = append(st.Agreed, resolver.AgreedField{Name: n, FP: fp, Writer: writer, TsUs: ts})
		crm.Seen = append(crm.Seen, resolver.SeenField{Name: n, FP: fp})
		billing.Seen = append(billing.Seen, resolver.SeenField{Name: n, FP: fp})
	}
	st.Systems = []resolver.SystemState{crm, billing}
	return st
}

func roundTripCases() map[string]*resolver.State {
	manyNames := &resolver.State{Record: "wide"}
	for i := range 100 {
		n := fmt.Sprintf("field_%03d", i)
		manyNames.Agreed = append(manyNames.Agreed, resolver.AgreedField{Name: n, FP: uint64(i), Writer: fmt.Sprint("s", i%3), TsUs: int64(i)})
	}
	manyNames.Systems = []resolver.SystemState{{Name: "s1", Seen: []resolver.SeenField{{Name: "field_099", FP: 99}, {Name: "field_050", FP: 1}, {Name: "unseen", FP: 2}}}}

	extremes := statetest.Sample("")
	extremes.Agreed[0].TsUs = math.MinInt64
	extremes.Agreed[1].TsUs = math.MaxInt64 // the difference from the previous one wraps
	extremes.Agreed[1].Value = []byte{}     // empty but present
	extremes.DeletedMs = math.MinInt64
	extremes.LoopApplies = math.MaxUint32
	extremes.Systems[0].Pos = codecs.Position{Kind: 255, A: math.MaxUint64, C: 1}
	extremes.Hold.Record = true

	repeated := typicalState()
	repeated.Agreed = append(repeated.Agreed, resolver.AgreedField{Name: "name", FP: 1}) // a duplicate name
	repeated.Systems[0].Seen[0].FP = 12345                                               // differs from agreed

	bench := new(resolver.State) // a real state of the bench's: see benchTemplate
	raw, err := os.ReadFile("testdata/bench-r-2933.v1")
	if err != nil {
		panic(err)
	}
	if err := state.UnmarshalState(raw[8:], bench); err != nil {
		panic(err)
	}
	benchLast := bench.Clone() // the landed apply that repeats the agreed image last
	benchLast.Systems = benchLast.Systems[:1]

	return map[string]*resolver.State{
		"bench":     bench,
		"benchLast": benchLast,
		"zero":      {},
		"sample":    statetest.Sample("rec/1"),
		"typical":   typicalState(),
		"manyNames": manyNames,
		"extremes":  extremes,
		"repeated":  repeated,
		"tombstone": {Record: "gone", Deleted: true, DeletedMs: 1_764_000_000_000, Systems: []resolver.SystemState{{Name: "crm", Known: true, Deleted: true}}},
	}
}

func TestMarshalStateRoundTrip(t *testing.T) {
	for name, want := range roundTripCases() {
		t.Run(name, func(t *testing.T) {
			want.Version = 7 // not encoded
			b := state.MarshalState([]byte("prefix"), want)
			if !bytes.HasPrefix(b, []byte("prefix")) {
				t.Fatalf("MarshalState did not append to dst: %q", b)
			}
			b = b[len("prefix"):]
			got := &resolver.State{Version: 99, Record: "stale"}
			if err := state.UnmarshalState(b, got); err != nil {
				t.Fatal(err)
			}
			if got.Version != 0 {
				t.Errorf("Version = %d after UnmarshalState, want 0", got.Version)
			}
			want.Version = 0
			if !statetest.Equal(got, want) {
				t.Errorf("round trip changed the state:\n got %+v\nwant %+v", got, want)
			}
			if again := state.MarshalState(nil, got); !bytes.Equal(again, b) {
				t.Errorf("encoding is not deterministic:\n%x\n%x", b, again)
			}
			assertValuesDistinguishNil(t, want, got)
		})
	}
}

// assertValuesDistinguishNil checks what statetest.Equal cannot: a nil value (not
// kept) stays nil and an empty one stays empty.
func assertValuesDistinguishNil(t *testing.T, want, got *resolver.State) {
	t.Helper()
	for i := range want.Agreed {
		if (want.Agreed[i].Value == nil) != (got.Agreed[i].Value == nil) {
			t.Errorf("agreed %q: value nil = %v, want %v", want.Agreed[i].Name, got.Agreed[i].Value == nil, want.Agreed[i].Value == nil)
		}
	}
}

func TestUnmarshalStateSharesNoMemory(t *testing.T) {
	b := state.MarshalState(nil, statetest.Sample("r"))
	var st resolver.State
	if err := state.UnmarshalState(b, &st); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0xff
	}
	want := statetest.Sample("r")
	if !statetest.Equal(&st, want) {
		t.Errorf("the decoded state changed with its input bytes: %+v", st)
	}
}

// TestUnmarshalStateReadsFormats2And3 reads states as the builds before formats 4
// and 5 wrote them (event ids in 16 bytes, other ids as their length plus 1):
// testdata/bench-r-2933.v2 and .v3 are the bench's sample state with one more landed
// apply whose id is not hex, written by 69d71f1, .v3.names the dictionary of .v3.
func TestUnmarshalStateReadsFormats2And3(t *testing.T) {
	want, _ := benchTemplateV1(t)
	want.Record = "r-2933"
	want.Systems[0].Landed = append(want.Systems[0].Landed, resolver.Landed{EventID: "e42", SentMs: want.LoopStartMs + 5, Fields: []string{"f0"}, FP: 7})

	readFixtures(t, want, 2, 3)
}

// readFixtures reads bench-r-2933.vSELF (the self-contained format) and
// bench-r-2933.vSTORED with its names file (the Redis store's), both written by
// an earlier build, and checks each decodes to want.
func readFixtures(t *testing.T, want *resolver.State, self, stored int) {
	t.Helper()
	fixture := func(name string) []byte {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var got resolver.State
	if err := state.UnmarshalState(fixture(fmt.Sprintf("bench-r-2933.v%d", self)), &got); err != nil {
		t.Fatalf("format %d: %v", self, err)
	}
	if !statetest.Equal(&got, want) {
		t.Errorf("format %d read as\n%+v\nwant\n%+v", self, &got, want)
	}
	names := strings.Fields(string(fixture(fmt.Sprintf("bench-r-2933.v%d.names", stored))))
	got = resolver.State{}
	if err := state.UnmarshalStored(fixture(fmt.Sprintf("bench-r-2933.v%d", stored)), "r-2933", names, &got); err != nil {
		t.Fatalf("format %d: %v", stored, err)
	}
	if !statetest.Equal(&got, want) {
		t.Errorf("format %d read as\n%+v\nwant\n%+v", stored, &got, want)
	}
	// Written again, a fixture's ids stay as they were: none is numbered from an IDBase.
	var again resolver.State
	if err := state.UnmarshalState(state.MarshalState(nil, &got), &again); err != nil || !statetest.Equal(&again, want) {
		t.Errorf("format %d written in the current format and read back: %v\n%+v", stored, err, &again)
	}
}

func TestUnmarshalStateRejectsCorruptInput(t *testing.T) {
	good := state.MarshalState(nil, statetest.Sample("rec/1"))
	cases := map[string][]byte{
		"empty":                  nil,
		"future version":         append([]byte{9}, good[1:]...),
		"format 3 without names": append([]byte{3}, good[1:]...),
		"format 5 without names": append([]byte{5}, good[1:]...),
		"format 7 without names": append([]byte{7}, good[1:]...),
		"trailing byte":          append(append([]byte{}, good...), 0),
		"huge count":             {1, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"bad name ref":           {1, 0, 0, 0, 0, 0, 0, 1, 5},
		"unknown flags":          {1, 0, 0, 0x80, 0x01},
		"bad varint":             {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	}
	for i := range len(good) - 1 {
		cases[fmt.Sprintf("truncated to %d", i)] = good[:i]
	}
	for name, b := range cases {
		var st resolver.State
		err := state.UnmarshalState(b, &st)
		if !errors.Is(err, state.ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
		if !statetest.Equal(&st, &resolver.State{}) {
			t.Errorf("%s: a failed decode left %+v", name, st)
		}
	}
}

// TestTypicalStateSize pins the compactness DESIGN.md section 3 asks for; see
// BenchmarkMarshalState for the figure.
func TestTypicalStateSize(t *testing.T) {
	const budget = 240 // bytes; 226 in format 2 (276 in format 1)
	if n := len(state.MarshalState(nil, typicalState())); n > budget {
		t.Errorf("typical state encodes to %d bytes, over the budget of %d", n, budget)
	}
	// A record synced recently also keeps the apply each system was last seen to
	// write (sink rewrites are recognised by it) and the marker it showed.
	synced := typicalState()
	for i := range synced.Systems {
		synced.Systems[i].Landed = []resolver.Landed{{
			EventID: "0123456789abcdef0123456789abcdef", SentMs: 1_764_000_000_000,
			Fields: []string{"name", "email", "notes"}, FP: 0x0123456789abcdef,
		}}
		synced.Systems[i].MarkerFP = 0xfeedfacecafebeef
	}
	const syncedBudget = 370 // bytes; 346 in format 2 (434 in format 1)
	if n := len(state.MarshalState(nil, synced)); n > syncedBudget {
		t.Errorf("a recently synced state encodes to %d bytes, over the budget of %d", n, syncedBudget)
	} else {
		t.Logf("typical state %d bytes; recently synced, with a landed apply and a marker per system, %d bytes",
			len(state.MarshalState(nil, typicalState())), n)
	}
}

func FuzzUnmarshalState(f *testing.F) {
	for _, st := range roundTripCases() {
		f.Add(state.MarshalState(nil, st))
	}
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var st resolver.State
		if err := state.UnmarshalState(b, &st); err != nil {
			return
		}
		once := state.MarshalState(nil, &st)
		var again resolver.State
		if err := state.UnmarshalState(once, &again); err != nil {
			t.Fatalf("re-decoding an encoded state: %v", err)
		}
		if twice := state.MarshalState(nil, &again); !bytes.Equal(once, twice) {
			t.Fatalf("Marshal(Unmarshal(Marshal(x))) != Marshal(x):\n%x\n%x", once, twice)
		}
		if !statetest.Equal(&st, &again) {
			t.Fatalf("decode, encode, decode changed the state:\n%+v\n%+v", st, again)
		}
	})
}

// BenchmarkMarshalState reports the encoded size of the typical record
// (bytes/state) and the cost of encoding and decoding it; Bench of the bench's sample
// record (r-2933, with a landed apply per system).
func BenchmarkMarshalState(b *testing.B) {
	b.Run("Typical", func(b *testing.B) { benchmarkMarshal(b, typicalState()) })
	b.Run("Bench", func(b *testing.B) {
		st, _ := benchTemplate(b)
		benchmarkMarshal(b, st)
	})
	// 20,000 records of the bench's shape encoded in turn, as a batch does, rather
	// than one over and over (what memory stalls cost the encoder).
	b.Run("BenchInTurn", func(b *testing.B) {
		tmpl, _ := benchTemplate(b)
		sts := make([]*resolver.State, 20_000)
		for i := range sts {
			sts[i] = benchShapeState(tmpl, i)
		}
		var buf []byte
		i := 0
		for b.Loop() {
			buf = state.MarshalState(buf[:0], sts[i%len(sts)])
			i++
		}
	})
}

func benchmarkMarshal(b *testing.B, st *resolver.State) {
	buf := state.MarshalState(nil, st)
	b.Run("Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf = state.MarshalState(buf[:0], st)
		}
		b.ReportMetric(float64(len(buf)), "bytes/state")
	})
	b.Run("Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		var out resolver.State
		for b.Loop() {
			if err := state.UnmarshalState(buf, &out); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(buf)), "bytes/state")
	})
}

// TestUnmarshalStateReadsFormats4And5 reads states as the builds before IDBase wrote
// them (event ids ending in the record's suffix in 8 bytes, no numbered ids):
// testdata/bench-r-2933.v4 and .v5 are the bench's sample state with its ids made
// so, and two more landed applies, one whose id is not hex and one of other hex
// digits, written by ff28d76, .v5.names the dictionary of .v5.
func TestUnmarshalStateReadsFormats4And5(t *testing.T) {
	want, _ := benchTemplateV1(t)
	want.Record = "r-2933"
	for i := range want.Systems {
		for j := range want.Systems[i].Landed {
			l := &want.Systems[i].Landed[j]
			l.EventID = fmt.Sprintf("%s%016x", l.EventID[:16], resolver.EventIDSuffix(want.Record))
		}
	}
	want.Systems[0].Landed = append(want.Systems[0].Landed,
		resolver.Landed{EventID: "e42", SentMs: want.LoopStartMs + 5, Fields: []string{"f0"}, FP: 7},
		resolver.Landed{EventID: "0123456789abcdef0123456789abcdef", SentMs: want.LoopStartMs + 6, Fields: []string{"f1"}, FP: 8})

	readFixtures(t, want, 4, 5)
}
