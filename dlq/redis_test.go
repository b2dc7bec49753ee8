package dlq_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/concord-sync/concord/dlq"
	"github.com/concord-sync/concord/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var (
	ctx = context.Background()
	t0  = time.Date(2026, 11, 27, 9, 30, 0, 123456789, time.UTC)
)

// backend is a Redis to run a test against, with the store name to use in it.
type backend struct {
	client redis.UniversalClient
	name   string
	real   bool
}

// eachBackend runs fn against real Redis (or its miniredis fallback), miniredis, and
// a one-node Redis Cluster (which refuses commands spanning hash slots).
func eachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Run("redis", func(t *testing.T) {
		s := testenv.Redis(t)
		fn(t, backend{client: s.Client(t), name: "contacts", real: s.Real})
	})
	t.Run("miniredis", func(t *testing.T) {
		fn(t, backend{client: testenv.Miniredis(t).Client(t), name: "contacts"})
	})
	t.Run("cluster", func(t *testing.T) {
		cl := testenv.RedisCluster(t)
		fn(t, backend{client: cl.Client(t), name: cl.Name, real: true})
	})
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

// conflict is a clock_skew conflict on notes between crm and billing.
func conflict() dlq.Change {
	return dlq.Change{
		EntryID: "e1", Record: "42", Reason: "clock_skew", Fields: []string{"notes"},
		Versions: []dlq.Version{
			{System: "crm", TsUs: 1_000_000, Values: map[string]json.RawMessage{"notes": raw(`"called"`)}},
			{System: "billing", TsUs: 1_200_000, Values: map[string]json.RawMessage{"notes": raw(`"disputed"`)}},
		},
		Base:  map[string]json.RawMessage{"notes": raw(`"new lead"`)},
		Cause: "billing@1:0:7:0", At: t0,
	}
}

func record(t *testing.T, s *dlq.Store, changes ...dlq.Change) {
	t.Helper()
	if err := s.Record(ctx, changes); err != nil {
		t.Fatalf("Record: %v", err)
	}
}

func get(t *testing.T, s *dlq.Store, id string) *dlq.Entry {
	t.Helper()
	e, err := s.Get(ctx, id)
	if err != nil {
		t.Fatalf("Get(%q): %v", id, err)
	}
	return e
}

func TestStoreCreatesAnEntry(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s := dlq.NewStore(b.client, b.name)
		record(t, s, conflict())
		got := get(t, s, "e1")
		want := &dlq.Entry{
			ID: "e1", Record: "42", Reason: "clock_skew", Reasons: []string{"clock_skew"},
			Status: dlq.StatusPending, Fields: []string{"notes"},
			Versions: map[string]dlq.Version{
				"crm":     {System: "crm", TsUs: 1_000_000, Values: map[string]json.RawMessage{"notes": raw(`"called"`)}},
				"billing": {System: "billing", TsUs: 1_200_000, Values: map[string]json.RawMessage{"notes": raw(`"disputed"`)}},
			},
			Base:     map[string]json.RawMessage{"notes": raw(`"new lead"`)},
			Attached: []dlq.Attached{}, Causes: []string{"billing@1:0:7:0"},
			QueuedAt: t0, UpdatedAt: t0, Rev: 1,
		}
		assertEntry(t, got, want)
		if n, err := s.Pending(ctx); err != nil || n != 1 {
			t.Errorf("Pending = %d, %v; want 1", n, err)
		}
		score, err := b.client.ZScore(ctx, "{"+b.name+":dlq}:queue", "e1").Result()
		if err != nil || int64(score) != t0.UnixMilli() {
			t.Errorf("queue score = %v, %v; want %d (queued_at in unix ms)", score, err, t0.UnixMilli())
		}
		if _, err := s.Get(ctx, "nope"); !errors.Is(err, dlq.ErrNotFound) {
			t.Errorf("Get of an unknown id: err = %v, want ErrNotFound", err)
		}
	})
}

func TestStoreMergesLaterChanges(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s := dlq.NewStore(b.client, b.name)
		later := dlq.Change{
			EntryID: "e1", Record: "42", Reason: "loop", Fields: []string{"email", "notes"},
			Versions: []dlq.Version{
				{System: "crm", TsUs: 3_000_000, Values: map[string]json.RawMessage{"email": raw(`"x@example.com"`)}},
				{System: "billing", TsUs: 900_000, Values: map[string]json.RawMessage{"notes": raw(`"older"`)}}, // older than stored
			},
			Base:  map[string]json.RawMessage{"notes": raw(`"other base"`), "email": raw(`"a@example.com"`)},
			Cause: "crm@1:0:9:0", At: t0.Add(time.Minute),
		}
		record(t, s, conflict(), later)
		got := get(t, s, "e1")
		if !reflect.DeepEqual(got.Fields, []string{"notes", "email"}) {
			t.Errorf("Fields = %q, want the union in order", got.Fields)
		}
		if !reflect.DeepEqual(got.Reasons, []string{"clock_skew", "loop"}) || got.Reason != "clock_skew" {
			t.Errorf("Reason, Reasons = %q, %q", got.Reason, got.Reasons)
		}
		if !got.WholeRecord() {
			t.Error("a loop joined the entry but WholeRecord is false")
		}
		if v := got.Versions["crm"]; v.TsUs != 3_000_000 || string(v.Values["email"]) != `"x@example.com"` {
			t.Errorf("crm's newer version did not replace the older one: %+v", v)
		}
		if v := got.Versions["billing"]; v.TsUs != 1_200_000 || string(v.Values["notes"]) != `"disputed"` {
			t.Errorf("billing's older version replaced the newer one: %+v", v)
		}
		if string(got.Base["notes"]) != `"new lead"` || string(got.Base["email"]) != `"a@example.com"` {
			t.Errorf("Base = %s, want the first known value of each field", got.Base)
		}
		if !got.QueuedAt.Equal(t0) || !got.UpdatedAt.Equal(t0.Add(time.Minute)) || got.Rev != 2 {
			t.Errorf("QueuedAt, UpdatedAt, Rev = %v, %v, %d", got.QueuedAt, got.UpdatedAt, got.Rev)
		}
		if len(got.Attached) != 0 {
			t.Errorf("a conflict joining the entry was attached: %+v", got.Attached)
		}
		if n, _ := s.Pending(ctx); n != 1 {
			t.Errorf("Pending = %d after a merge, want 1", n)
		}
	})
}

func TestStoreAttachesLaterChanges(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s := dlq.NewStore(b.client, b.name)
		// 2^64-1 must survive exactly: it would not as a double in Lua's cjson.
		big := raw(`18446744073709551615`)
		attach := func(ts int64, value json.RawMessage, cause string, at time.Time) dlq.Change {
			return dlq.Change{
				EntryID: "e1", Record: "42", Reason: "attached", Fields: []string{"notes"},
				Versions: []dlq.Version{{System: "crm", TsUs: ts, Values: map[string]json.RawMessage{"notes": value}}},
				Cause:    cause, At: at,
			}
		}
		record(t, s, conflict(), attach(5_000_000, raw(`"first"`), "crm@1:0:10:0", t0.Add(time.Second)))
		record(t, s, attach(6_000_000, big, "crm@1:0:11:0", t0.Add(2*time.Second)))
		got := get(t, s, "e1")
		want := []dlq.Attached{
			{Version: dlq.Version{System: "crm", TsUs: 5_000_000, Values: map[string]json.RawMessage{"notes": raw(`"first"`)}}, Cause: "crm@1:0:10:0", At: t0.Add(time.Second)},
			{Version: dlq.Version{System: "crm", TsUs: 6_000_000, Values: map[string]json.RawMessage{"notes": big}}, Cause: "crm@1:0:11:0", At: t0.Add(2 * time.Second)},
		}
		if !reflect.DeepEqual(got.Attached, want) {
			t.Errorf("Attached =\n%+v\nwant\n%+v", got.Attached, want)
		}
		if v := got.Versions["crm"]; v.TsUs != 6_000_000 || string(v.Values["notes"]) != string(big) {
			t.Errorf("crm's version = %+v, want the last attached change", v)
		}
		if got.Rev != 3 {
			t.Errorf("Rev = %d, want 3", got.Rev)
		}
	})
}

func TestStoreReplayIsIdempotent(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s := dlq.NewStore(b.client, b.name)
		batch := []dlq.Change{
			conflict(),
			{
				EntryID: "e1", Record: "42", Reason: "attached", Fields: []string{"notes"}, Cause: "crm@1:0:12:0", At: t0,
				Versions: []dlq.Version{{System: "crm", TsUs: 7_000_000, Values: map[string]json.RawMessage{"notes": raw(`"again"`)}}},
			},
			// The same event raising a second change in the entry is not a replay.
			{EntryID: "e1", Record: "42", Reason: "clock_skew", Fields: []string{"email"}, Cause: "billing@1:0:7:0", At: t0},
			{
				EntryID: "e2", Record: "43", Reason: "apply_unconfirmed", Fields: []string{"name"}, Cause: "unconfirmed@abc",
				Target: "billing", EventID: "abc", At: t0.Add(time.Hour),
			},
		}
		record(t, s, batch...)
		first, second := get(t, s, "e1"), get(t, s, "e2")
		if first.Rev != 3 || !reflect.DeepEqual(first.Fields, []string{"notes", "email"}) {
			t.Errorf("e1 rev %d, fields %q: want 3 distinct changes recorded", first.Rev, first.Fields)
		}
		if second.Target != "billing" || second.EventID != "abc" {
			t.Errorf("e2 target, event id = %q, %q", second.Target, second.EventID)
		}
		record(t, s, batch...)
		record(t, s, batch[1])
		assertEntry(t, get(t, s, "e1"), first)
		assertEntry(t, get(t, s, "e2"), second)
		if n, _ := s.Pending(ctx); n != 2 {
			t.Errorf("Pending = %d, want 2", n)
		}
		list, err := s.List(ctx, dlq.Filter{Status: dlq.StatusPending})
		if err != nil || len(list) != 2 || list[0].ID != "e1" || list[1].ID != "e2" {
			t.Errorf("List(pending) = %v, %v; want e1 then e2 (oldest first)", list, err)
		}
		if list, _ := s.List(ctx, dlq.Filter{Status: dlq.StatusResolved}); len(list) != 0 {
			t.Errorf("List(resolved) = %v", list)
		}
	})
}

func TestStoreKeysShareOneHashTag(t *testing.T) {
	srv := testenv.Redis(t)
	c := srv.Client(t)
	s := dlq.NewStore(c, "contacts")
	odd := conflict()
	odd.EntryID = "{x}:y"
	record(t, s, conflict(), odd)
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"{contacts:dlq}:e:e1", "{contacts:dlq}:e:{x}:y", "{contacts:dlq}:pending", "{contacts:dlq}:queue"}
	if !sameSet(keys, want) {
		t.Errorf("keys = %q, want %q", keys, want)
	}
	for _, k := range keys {
		if tag := testenv.HashTag(k); tag != "contacts:dlq" {
			t.Errorf("key %q hashes %q, want the hash tag contacts:dlq", k, tag)
		}
	}
}

func TestStoreRecoversFromAFlushedScriptCache(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s := dlq.NewStore(b.client, b.name)
		record(t, s, conflict())
		if err := b.client.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		later := conflict()
		later.Cause, later.Fields = "crm@1:0:99:0", []string{"email"}
		record(t, s, later)
		if got := get(t, s, "e1"); got.Rev != 2 {
			t.Errorf("Rev = %d after recording with a flushed script cache, want 2", got.Rev)
		}
	})
}

func TestStoreRefusesAChangeWithoutEntryID(t *testing.T) {
	s := dlq.NewStore(testenv.Redis(t).Client(t), "contacts")
	bad := conflict()
	bad.EntryID = ""
	if err := s.Record(ctx, []dlq.Change{conflict(), bad}); err == nil || !strings.Contains(err.Error(), "no EntryID") {
		t.Fatalf("err = %v, want a refusal naming the missing EntryID", err)
	}
	if n, _ := s.Pending(ctx); n != 0 {
		t.Errorf("a refused call recorded %d entries", n)
	}
}

// countingHook counts round trips: each command or pipeline is one.
type countingHook struct{ n atomic.Int64 }

func (*countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}

func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(1); return next(ctx, cmds) }
}

func TestStoreRecordIsOneRoundTrip(t *testing.T) {
	c := testenv.Redis(t).Client(t)
	var h countingHook
	c.AddHook(&h)
	s := dlq.NewStore(c, "contacts")
	record(t, s, conflict()) // loads the script
	h.n.Store(0)
	var batch []dlq.Change
	for i := range 20 {
		ch := conflict()
		ch.EntryID = "e" + string(rune('a'+i))
		batch = append(batch, ch)
	}
	record(t, s, batch...)
	if n := h.n.Load(); n != 1 {
		t.Errorf("recording 20 changes took %d round trips, want 1", n)
	}
}

func assertEntry(t *testing.T, got, want *dlq.Entry) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) || !got.QueuedAt.Equal(want.QueuedAt) {
		t.Errorf("entry =\n%s\nwant\n%s", g, w)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		seen[x]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

// TestStoreMergesVersionsFieldByField: a later change to one held field keeps the
// system's latest value of the others; an older change never overwrites a newer value.
func TestStoreMergesVersionsFieldByField(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s := dlq.NewStore(b.client, b.name)
		phone := dlq.Change{
			EntryID: "e1", Record: "42", Reason: "clock_skew", Fields: []string{"phone"},
			Versions: []dlq.Version{{System: "crm", TsUs: 1_000_000, Values: map[string]json.RawMessage{"phone": raw(`"1"`)}}},
			Cause:    "crm@phone", At: t0,
		}
		older := dlq.Change{
			EntryID: "e1", Record: "42", Reason: "attached", Fields: []string{"notes"},
			Versions: []dlq.Version{{System: "crm", TsUs: 500_000, Values: map[string]json.RawMessage{"notes": raw(`"stale"`)}}},
			Cause:    "crm@old", At: t0,
		}
		record(t, s, conflict(), phone, older)
		crm := get(t, s, "e1").Versions["crm"]
		if string(crm.Values["notes"]) != `"called"` || string(crm.Values["phone"]) != `"1"` || crm.TsUs != 1_000_000 {
			t.Errorf("crm's version = %+v, want notes \"called\" and phone \"1\"", crm)
		}
	})
}
