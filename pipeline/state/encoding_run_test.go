package state_test

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"os"
	"testing"

	"github.com/concord-sync/concord/pipeline/state"
	"github.com/concord-sync/concord/pipeline/state/statetest"
	"github.com/concord-sync/concord/resolver"
)

// benchRunStates are states as the pipeline wrote them in the throughput phase of a
// `concord bench --events 200000` run (testdata/bench-run-states.v6.gz: 998 of them,
// evenly spread over the run, each in format 6 after its length as a uvarint). They
// are what the bench's synthetic template is not: the billing sink lags the backlog,
// so a record has a few applies in flight (4.4 on average), each with the values it
// set.
func benchRunStates(t testing.TB) []*resolver.State {
	t.Helper()
	f, err := os.Open("testdata/bench-run-states.v6.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	var sts []*resolver.State
	for len(raw) > 0 {
		n, k := binary.Uvarint(raw)
		if k <= 0 || uint64(len(raw)-k) < n {
			t.Fatalf("testdata/bench-run-states.v6.gz is truncated after %d states", len(sts))
		}
		st := new(resolver.State)
		if err := state.UnmarshalState(raw[k:k+int(n)], st); err != nil {
			t.Fatalf("state %d: %v", len(sts), err)
		}
		sts = append(sts, st)
		raw = raw[k+int(n):]
	}
	return sts
}

// TestMarshalStoredBenchRunStates round-trips the states of a bench run through
// format 7 with the Redis store's name index, one Put's index for all of them.
func TestMarshalStoredBenchRunStates(t *testing.T) {
	sts := benchRunStates(t)
	names := state.NewBatchNames()
	var inFlight int
	for i, want := range sts {
		for _, ss := range want.Systems {
			inFlight += len(ss.InFlight)
		}
		b := state.MarshalStoredBatch(nil, want, names)
		var got resolver.State
		if err := state.UnmarshalStored(b, want.Record, names.Names(), &got); err != nil {
			t.Fatalf("state %d: %v", i, err)
		}
		if !statetest.Equal(&got, want) {
			t.Fatalf("state %d changed:\n got %+v\nwant %+v", i, &got, want)
		}
		if again := state.MarshalStoredBatch(nil, &got, names); !bytes.Equal(again, b) {
			t.Fatalf("state %d: the encoding is not deterministic", i)
		}
	}
	if inFlight < len(sts) {
		t.Fatalf("%d applies in flight in %d states: the fixture is not what it claims", inFlight, len(sts))
	}
}

// BenchmarkMarshalStoredBenchRun encodes a bench run's states in turn as a Put does.
func BenchmarkMarshalStoredBenchRun(b *testing.B) {
	sts := benchRunStates(b)
	names := state.NewBatchNames()
	var buf []byte
	i := 0
	for b.Loop() {
		buf = state.MarshalStoredBatch(buf[:0], sts[i%len(sts)], names)
		i++
	}
}
