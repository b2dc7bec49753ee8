// Package statetest is the contract test suite every state.Store implementation runs.
package statetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/concord-sync/concord/codecs"
	"github.com/concord-sync/concord/pipeline/state"
	"github.com/concord-sync/concord/resolver"
)

// Run runs the contract suite. newStore must return an empty store each call.
func Run(t *testing.T, newStore func(t *testing.T) state.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(*testing.T, state.Store)
	}{
		{"GetUnknownIsNil", testGetUnknown},
		{"RoundTrip", testRoundTrip},
		{"VersionsAreNotCompared", testVersionsNotCompared},
		{"SameRecordTwiceInABatch", testSameRecordTwice},
		{"BatchIsAtomic", testBatchAtomic},
		{"FenceRefusesOlderGeneration", testFence},
		{"OutboxWithTheStates", testOutbox},
		{"PartitionsAreSeparate", testPartitions},
		{"Delete", testDelete},
		{"ConcurrentClaimsOneWriterWins", testConcurrentWriters},
		{"CallerOwnsStates", testNoAliasing},
		{"DueIndex", testDue},
		{"ParityCounts", testCounts},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

// Sample returns a state that uses every part of resolver.State.
func Sample(record string) *resolver.State {
	return &resolver.State{
		Record: record,
		Key:    []resolver.Value{{Name: "id", FP: 9, Value: []byte(`"` + record + `"`)}},
		Agreed: []resolver.AgreedField{
			{Name: "email", FP: 0xdeadbeefcafe, Writer: "crm", TsUs: 1_700_000_000_123_456, Value: []byte(`"a@example.com"`)},
			{Name: "name", FP: 42, Writer: "billing", TsUs: -5},
		},
		Systems: []resolver.SystemState{
			{
				Name: "crm", Known: true,
				Pos:  codecs.Position{Kind: codecs.PosPostgres, A: 1<<63 + 7},
				Seen: []resolver.SeenField{{Name: "email", FP: 1}, {Name: "name", FP: 2}},
				Landed: []resolver.Landed{
					{EventID: "aa00", SentMs: 900, Fields: []string{"email"}, FP: resolver.LandedFP(0, 1)},
					{EventID: "bb11", SentMs: 950, Fields: []string{"name", "email"}, FP: resolver.LandedFP(resolver.LandedFP(0, 2), 1)},
				},
				MarkerFP: 0xfeedface,
			},
			{
				Name: "billing", Known: true, Deleted: true,
				Pos: codecs.Position{Kind: codecs.PosMySQL, A: 3, B: 1234, C: 2},
				InFlight: []resolver.Apply{
					{
						EventID: "0123456789abcdef0123456789abcdef", Origin: "crm", TsUs: 99, SentMs: 1000,
						Fields: []resolver.Value{{Name: "email", FP: 7, Value: []byte(`"b@example.com"`)}},
					},
					{EventID: "fedcba9876543210fedcba9876543210", Delete: true, Origin: "crm", TsUs: 100, SentMs: 1001},
					{EventID: "00ff", Origin: "crm", TsUs: 101, SentMs: 1002, Expired: true, Uncertain: true, Recreate: true},
				},
			},
		},
		Pending: []resolver.Pending{{
			System: "crm", TsUs: 5, DeadlineMs: 77,
			Position: codecs.Position{Kind: codecs.PosKafka, A: 1, B: 2},
			Fields:   []resolver.Value{{Name: "notes", FP: 3, Value: []byte(`"x\ny"`)}},
		}},
		Hold:        &resolver.Hold{EntryID: "dlq1", Fields: []string{"notes"}, Changes: 3},
		Deleted:     true,
		DeletedMs:   123,
		LoopStartMs: 55,
		LoopApplies: 3,
		Sent:        12,
		Unconfirmed: "dlq2",
	}
}

var ctx = context.Background()

// claim claims the partition and returns the fence to write with.
func claim(t *testing.T, s state.Store, f state.Fence) state.Fence {
	t.Helper()
	c, err := s.Claim(ctx, f, "")
	if err != nil {
		t.Fatalf("Claim(%+v): %v", f, err)
	}
	return c.Fence
}

func get(t *testing.T, s state.Store, partition int32, records ...string) []*resolver.State {
	t.Helper()
	got, err := s.Get(ctx, partition, records)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if len(got) != len(records) {
		t.Fatalf("Get returned %d states for %d records", len(got), len(records))
	}
	return got
}

func testGetUnknown(t *testing.T, s state.Store) {
	for i, st := range get(t, s, 0, "a", "b") {
		if st != nil {
			t.Errorf("state %d of an empty store = %+v, want nil", i, st)
		}
	}
	if got := get(t, s, 0); len(got) != 0 {
		t.Errorf("Get of no records = %v", got)
	}
}

func testRoundTrip(t *testing.T, s state.Store) {
	f := state.Fence{Partition: 0, Generation: 1}
	f = claim(t, s, f)
	want := Sample("rec/1")
	if err := s.Put(ctx, f, []state.Write{{State: want}}, nil); err != nil {
		t.Fatal(err)
	}
	if want.Version != 1 {
		t.Errorf("Version after first Put = %d, want 1", want.Version)
	}
	got := get(t, s, 0, "rec/1")[0]
	if got == nil {
		t.Fatal("state not found after Put")
	}
	if !Equal(got, want) {
		t.Errorf("round trip changed the state:\n got %+v\nwant %+v", got, want)
	}
	if err := s.Put(ctx, f, []state.Write{{State: got}}, nil); err != nil {
		t.Fatalf("second Put with the read version: %v", err)
	}
	if got.Version != 2 {
		t.Errorf("Version after second Put = %d, want 2", got.Version)
	}
}

// testVersionsNotCompared: the fence, not a per-record version, keeps a partition to
// one writer (see state.Store.Put), so the partition's owner may write a record
// whatever Version its state says; a stored state always reads as stored (Version
// at least 1).
func testVersionsNotCompared(t *testing.T, s state.Store) {
	f := state.Fence{Generation: 1}
	f = claim(t, s, f)
	first := Sample("r")
	if err := s.Put(ctx, f, []state.Write{{State: first}}, nil); err != nil {
		t.Fatal(err)
	}
	again := Sample("r") // version 0: written as if new
	again.LoopApplies = 9
	if err := s.Put(ctx, f, []state.Write{{State: again}}, nil); err != nil {
		t.Fatalf("the owner's Put with another version: %v", err)
	}
	got := get(t, s, 0, "r")[0]
	if got == nil || got.LoopApplies != 9 || got.Version < 1 {
		t.Errorf("state after the second Put = %+v, want the second write with a Version of at least 1", got)
	}
}

// testSameRecordTwice: a record written twice in one batch keeps its last write, as
// if the writes were applied in order.
func testSameRecordTwice(t *testing.T, s state.Store) {
	f := claim(t, s, state.Fence{Generation: 1})
	a, b := Sample("twice"), Sample("twice")
	b.LoopApplies = 7
	if err := s.Put(ctx, f, []state.Write{{State: a, DueMs: 5}, {State: b}}, nil); err != nil {
		t.Fatal(err)
	}
	if got := get(t, s, 0, "twice")[0]; got == nil || got.LoopApplies != 7 {
		t.Errorf("state = %+v, want the batch's last write", got)
	}
	if due, err := s.Due(ctx, 0, 100, 10); err != nil || len(due) != 0 {
		t.Errorf("Due = %q, %v: the last write has no deadline", due, err)
	}
	if err := s.Put(ctx, f, []state.Write{{State: a}, {State: a, Delete: true}}, nil); err != nil {
		t.Fatal(err)
	}
	if got := get(t, s, 0, "twice")[0]; got != nil {
		t.Errorf("state = %+v after a batch that wrote and then deleted it", got)
	}
}

// testBatchAtomic: a refused batch writes none of its records and not its outbox.
func testBatchAtomic(t *testing.T, s state.Store) {
	f := state.Fence{Generation: 1}
	f = claim(t, s, f)
	x := Sample("x")
	if err := s.Put(ctx, f, []state.Write{{State: x}}, SampleOutbox(1)); err != nil {
		t.Fatal(err)
	}
	next := claim(t, s, f) // a new epoch: f is refused from now on
	changed := Sample("x")
	changed.LoopApplies = 42
	batch := []state.Write{{State: Sample("new")}, {State: changed}}
	if err := s.Put(ctx, f, batch, SampleOutbox(2)); !errors.Is(err, state.ErrFenced) {
		t.Fatalf("err = %v, want ErrFenced", err)
	}
	got := get(t, s, 0, "new", "x")
	if got[0] != nil {
		t.Errorf("a refused batch wrote part of itself: %+v", got[0])
	}
	if got[1] == nil || got[1].LoopApplies != x.LoopApplies {
		t.Errorf("a refused batch changed x: %+v", got[1])
	}
	if box, err := s.Outbox(ctx, 0); err != nil || box.Seq != 1 {
		t.Errorf("outbox after a refused batch = %+v, %v, want seq 1", box, err)
	}
	if err := s.Put(ctx, next, batch, nil); err != nil {
		t.Errorf("the latest claim's Put: %v", err)
	}
}

func testFence(t *testing.T, s state.Store) {
	old, cur := state.Fence{Partition: 3, Generation: 4}, state.Fence{Partition: 3, Generation: 5}
	old = claim(t, s, old)
	cur = claim(t, s, cur)
	if err := s.Put(ctx, old, []state.Write{{State: Sample("r")}}, nil); !errors.Is(err, state.ErrFenced) {
		t.Fatalf("Put by a fenced generation: err = %v, want ErrFenced", err)
	}
	if st := get(t, s, 3, "r")[0]; st != nil {
		t.Error("a fenced Put wrote its state")
	}
	refused, err := s.Claim(ctx, old, "")
	if !errors.Is(err, state.ErrFenced) {
		t.Errorf("Claim by an older generation: err = %v, want ErrFenced", err)
	}
	if err := s.Put(ctx, cur, []state.Write{{State: Sample("r")}}, nil); err != nil {
		t.Errorf("Put by the owning generation: %v", err)
	}

	// A consumer group deleted and created again numbers its generations from 1: a
	// member that proved its generation current supersedes the refusing fence, and the
	// old incarnation's writer is refused from then on.
	if refused.Stored == "" {
		t.Fatal("a refused Claim did not say which fence refused it")
	}
	if _, err := s.Claim(ctx, state.Fence{Partition: 3, Generation: 1}, "4:1"); !errors.Is(err, state.ErrFenced) {
		t.Errorf("Claim superseding a fence value that is not the stored one: err = %v, want ErrFenced", err)
	}
	reborn, err := s.Claim(ctx, state.Fence{Partition: 3, Generation: 1}, refused.Stored)
	if err != nil {
		t.Fatalf("Claim superseding the stored fence: %v", err)
	}
	if err := s.Put(ctx, cur, []state.Write{{State: Sample("x")}}, nil); !errors.Is(err, state.ErrFenced) {
		t.Errorf("Put by the old incarnation's owner after a superseding claim: err = %v, want ErrFenced", err)
	}
	if err := s.Put(ctx, reborn.Fence, []state.Write{{State: Sample("x")}}, nil); err != nil {
		t.Errorf("Put by the superseding owner: %v", err)
	}
	// Claiming again in the same generation (a worker started anew) fences the first.
	again := claim(t, s, reborn.Fence)
	if err := s.Put(ctx, reborn.Fence, nil, nil); !errors.Is(err, state.ErrFenced) {
		t.Errorf("Put by an earlier claim of the same generation: err = %v, want ErrFenced", err)
	}
	if err := s.Put(ctx, again, nil, nil); err != nil {
		t.Errorf("Put by the latest claim: %v", err)
	}
}

// SampleOutbox returns an outbox that uses every part of state.Outbox: nil and empty
// keys and values (Kafka tells them apart), headers, several topics.
func SampleOutbox(seq uint64) *state.Outbox {
	return &state.Outbox{
		Seq:     seq,
		Offsets: map[string]int64{"crm.customers": 1 << 40, "billing.accounts": 0, "contacts.review": 7},
		Messages: []state.Message{
			{Topic: "contacts.apply.billing", Partition: 2, Key: []byte(`{"id":1}`), Value: []byte(`{"payload":{}}`), Headers: []state.Header{
				{Key: "concord.event_id", Value: []byte("0123456789abcdef")}, {Key: "empty", Value: []byte{}}, {Key: "null"},
			}},
			{Topic: "contacts.poison", Partition: 0, Key: nil, Value: []byte{}},
			{Topic: "contacts.apply.crm", Partition: 1, Key: []byte{}, Value: nil},
		},
	}
}

func testOutbox(t *testing.T, s state.Store) {
	f := claim(t, s, state.Fence{Partition: 1, Generation: 1})
	if c, err := s.Claim(ctx, state.Fence{Partition: 4, Generation: 1}, ""); err != nil || c.Outbox.Seq != 0 || c.Outbox.Messages != nil {
		t.Errorf("a partition never written has outbox %+v (err %v), want the zero Outbox", c.Outbox, err)
	}
	want := SampleOutbox(1)
	if err := s.Put(ctx, f, []state.Write{{State: Sample("r")}}, want); err != nil {
		t.Fatal(err)
	}
	next := claim(t, s, state.Fence{Partition: 1, Generation: 2})
	c, err := s.Claim(ctx, next, "")
	if err != nil {
		t.Fatal(err)
	}
	if want.Epoch != f.Epoch {
		t.Errorf("Put set the outbox's epoch to %d, want the writer's %d", want.Epoch, f.Epoch)
	}
	if !reflect.DeepEqual(c.Outbox, *want) {
		t.Errorf("Claim returned the outbox\n%#v\nwant\n%#v", c.Outbox, *want)
	}
	if err := s.Put(ctx, f, nil, SampleOutbox(2)); !errors.Is(err, state.ErrFenced) {
		t.Errorf("a fenced Put of an outbox: err = %v, want ErrFenced", err)
	}
	if err := s.Delivered(ctx, f, want); !errors.Is(err, state.ErrFenced) {
		t.Errorf("a fenced Delivered: err = %v, want ErrFenced", err)
	}
	// Delivered drops the messages and keeps the offsets; for an outbox already
	// replaced by a later batch's it does nothing.
	if err := s.Delivered(ctx, c.Fence, want); err != nil {
		t.Fatal(err)
	}
	got, err := s.Outbox(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got.Seq != 1 || got.Epoch != f.Epoch || got.Messages != nil || !reflect.DeepEqual(got.Offsets, want.Offsets) {
		t.Errorf("outbox after Delivered = %+v, want seq 1, the offsets, no messages", got)
	}
	later := SampleOutbox(2)
	if err := s.Put(ctx, c.Fence, nil, later); err != nil {
		t.Fatal(err)
	}
	if err := s.Delivered(ctx, c.Fence, want); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Outbox(ctx, 1); len(got.Messages) != len(later.Messages) {
		t.Errorf("Delivered of an earlier outbox dropped a later one's messages: %+v", got)
	}
	// A Put without an outbox leaves it.
	if err := s.Put(ctx, c.Fence, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Outbox(ctx, 1); got.Seq != 2 {
		t.Errorf("a Put without an outbox changed it: %+v", got)
	}
}

func testPartitions(t *testing.T, s state.Store) {
	f0 := claim(t, s, state.Fence{Partition: 0, Generation: 1})
	claim(t, s, state.Fence{Partition: 1, Generation: 9})
	a := Sample("same")
	a.LoopApplies = 1
	if err := s.Put(ctx, f0, []state.Write{{State: a}}, nil); err != nil {
		t.Fatal(err)
	}
	if st := get(t, s, 1, "same")[0]; st != nil {
		t.Error("a state of partition 0 is visible in partition 1")
	}
	if err := s.Put(ctx, f0, nil, nil); err != nil {
		t.Errorf("the fence of partition 1 affected partition 0: %v", err)
	}
}

func testDelete(t *testing.T, s state.Store) {
	f := state.Fence{Generation: 1}
	f = claim(t, s, f)
	st := Sample("gone")
	if err := s.Put(ctx, f, []state.Write{{State: st}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, f, []state.Write{{State: st, Delete: true}}, nil); err != nil {
		t.Fatal(err)
	}
	if got := get(t, s, 0, "gone")[0]; got != nil {
		t.Errorf("state still present after delete: %+v", got)
	}
	if err := s.Put(ctx, f, []state.Write{{State: Sample("gone")}}, nil); err != nil {
		t.Errorf("re-creating a deleted record: %v", err)
	}
}

// testConcurrentWriters: of writers that each claimed the partition (instances
// that all believe they own it after a rebalance), writing the same record at once,
// exactly one succeeds, the latest claim, and its state is the one kept.
func testConcurrentWriters(t *testing.T, s state.Store) {
	const writers = 8
	fences := make([]state.Fence, writers)
	for i := range fences {
		fences[i] = claim(t, s, state.Fence{Generation: 1})
	}
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := Sample("hot")
			st.LoopApplies = uint32(i)
			errs[i] = s.Put(ctx, fences[i], []state.Write{{State: st}}, nil)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		switch {
		case i == writers-1 && err != nil:
			t.Errorf("the latest claim's Put: %v", err)
		case i < writers-1 && !errors.Is(err, state.ErrFenced):
			t.Errorf("writer %d of an earlier claim: err = %v, want ErrFenced", i, err)
		}
	}
	if got := get(t, s, 0, "hot")[0]; got == nil || got.LoopApplies != writers-1 {
		t.Errorf("state = %+v, want the latest claim's", got)
	}
}

func testNoAliasing(t *testing.T, s state.Store) {
	f := state.Fence{Generation: 1}
	f = claim(t, s, f)
	st := Sample("alias")
	if err := s.Put(ctx, f, []state.Write{{State: st}}, nil); err != nil {
		t.Fatal(err)
	}
	st.Agreed[0].Value[1] = 'Z'
	st.Systems[0].Seen[0].FP = 999
	got := get(t, s, 0, "alias")[0]
	got.Systems[1].InFlight[0].Fields[0].Value[1] = 'Q'
	again := get(t, s, 0, "alias")[0]
	want := Sample("alias")
	want.Version = 1
	if !Equal(again, want) {
		t.Errorf("the store shares memory with its callers:\n got %+v\nwant %+v", again, want)
	}
}

// Equal compares two states, treating nil and empty slices alike.
func Equal(a, b *resolver.State) bool {
	return normal(a) == normal(b)
}

func normal(s *resolver.State) string {
	b, err := json.Marshal(s.Clone())
	if err != nil {
		return fmt.Sprint(err)
	}
	return string(b)
}

func testDue(t *testing.T, s state.Store) {
	f := state.Fence{Partition: 2, Generation: 1}
	f = claim(t, s, f)
	a, b, c, gone := Sample("a"), Sample("b"), Sample("c"), Sample("gone")
	err := s.Put(ctx, f, []state.Write{
		{State: a, DueMs: 300}, {State: b, DueMs: 100}, {State: c}, {State: gone, DueMs: 50},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, f, []state.Write{{State: gone, Delete: true, DueMs: 50}}, nil); err != nil {
		t.Fatal(err)
	}
	due := func(now int64, limit int) []string {
		t.Helper()
		got, err := s.Due(ctx, 2, now, limit)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := due(99, 10); len(got) != 0 {
		t.Errorf("Due(99) = %v, want none", got)
	}
	if got := due(300, 10); fmt.Sprint(got) != "[b a]" {
		t.Errorf("Due(300) = %v, want [b a] (earliest first; no deleted or undue records)", got)
	}
	if got := due(1000, 1); fmt.Sprint(got) != "[b]" {
		t.Errorf("Due with limit 1 = %v", got)
	}
	if got, _ := s.Due(ctx, 3, 1000, 10); len(got) != 0 {
		t.Errorf("another partition's index = %v", got)
	}
	if err := s.Put(ctx, f, []state.Write{{State: b}}, nil); err != nil {
		t.Fatal(err)
	}
	if got := due(1000, 10); fmt.Sprint(got) != "[a]" {
		t.Errorf("after b's deadline is cleared, Due = %v, want [a]", got)
	}
}

func testCounts(t *testing.T, s state.Store) {
	systems := []string{"billing", "crm"}
	f0, f1 := state.Fence{Partition: 0, Generation: 1}, state.Fence{Partition: 1, Generation: 1}
	f0 = claim(t, s, f0)
	f1 = claim(t, s, f1)
	put := func(f state.Fence, w state.Write) {
		t.Helper()
		w.Systems = systems
		if err := s.Put(ctx, f, []state.Write{w}, nil); err != nil {
			t.Fatal(err)
		}
	}
	a, b, c := Sample("a"), Sample("b"), Sample("c")
	put(f0, state.Write{State: a, Held: []string{"crm"}, DriftSinceMs: 100})            // billing lacks a since 100
	put(f1, state.Write{State: b, Held: []string{"crm", "billing"}, DriftSinceMs: 100}) // in both
	put(f1, state.Write{State: c, Held: []string{"billing"}, DriftSinceMs: 300})        // crm lacks c since 300
	put(f0, state.Write{State: a, Held: []string{"crm"}, HeldBefore: []string{"crm"}, DriftSinceMs: 200})
	counts := func(since int64) state.Counts {
		t.Helper()
		got, err := s.Counts(ctx, []int32{0, 1}, systems, since)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	got := counts(250)
	if got.Records["crm"] != 2 || got.Records["billing"] != 2 {
		t.Errorf("records = %v, want crm 2, billing 2", got.Records)
	}
	if got.Drift["billing"] != 1 || got.Drift["crm"] != 0 {
		t.Errorf("drift since 250 = %v, want billing 1 (since 100, kept by the rewrite at 200), crm 0 (since 300)", got.Drift)
	}
	if got := counts(300); got.Drift["crm"] != 1 {
		t.Errorf("drift since 300 = %v, want crm 1", got.Drift)
	}
	// billing gets record a, then c is deleted everywhere.
	put(f0, state.Write{State: a, Held: systems, HeldBefore: []string{"crm"}, DriftSinceMs: 400})
	put(f1, state.Write{State: c, Delete: true, HeldBefore: []string{"billing"}, DriftSinceMs: 500})
	got = counts(1000)
	if got.Records["crm"] != 2 || got.Records["billing"] != 2 || got.Drift["billing"] != 0 || got.Drift["crm"] != 0 {
		t.Errorf("after the fixes: %+v, want 2 records each and no drift", got)
	}
}
