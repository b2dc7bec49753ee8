package state_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/concord-sync/concord/internal/testenv"
	"github.com/concord-sync/concord/pipeline/state"
	"github.com/concord-sync/concord/pipeline/state/statetest"
	"github.com/concord-sync/concord/resolver"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var ctx = context.Background()

func TestRedisContract(t *testing.T) {
	statetest.Run(t, func(t *testing.T) state.Store {
		return state.NewRedis(testenv.Redis(t).Client(t), "contacts")
	})
}

func TestMiniredisContract(t *testing.T) {
	statetest.Run(t, func(t *testing.T) state.Store {
		return state.NewRedis(testenv.Miniredis(t).Client(t), "contacts")
	})
}

// TestRedisClusterContract runs the suite on a Redis Cluster node, which refuses
// any command or script whose keys span hash slots.
func TestRedisClusterContract(t *testing.T) {
	statetest.Run(t, func(t *testing.T) state.Store {
		cl := testenv.RedisCluster(t)
		return state.NewRedis(cl.Client(t), cl.Name)
	})
}

// TestRedisFencedWriterTwoClients is the failover case: the instance that lost a
// partition (its own connection, older generation) is refused once the new owner
// has claimed it, and the new owner's state survives.
func TestRedisFencedWriterTwoClients(t *testing.T) {
	srv := testenv.Redis(t)
	oldOwner := state.NewRedis(srv.Client(t), "contacts")
	newOwner := state.NewRedis(srv.Client(t), "contacts")
	gen1, gen2 := state.Fence{Partition: 2, Generation: 1}, state.Fence{Partition: 2, Generation: 2}

	c1, err := oldOwner.Claim(ctx, gen1, "")
	if err != nil {
		t.Fatal(err)
	}
	gen1 = c1.Fence
	st := statetest.Sample("r1")
	if err := oldOwner.Put(ctx, gen1, []state.Write{{State: st}}, nil); err != nil {
		t.Fatal(err)
	}
	c2, err := newOwner.Claim(ctx, gen2, "")
	if err != nil {
		t.Fatal(err)
	}
	gen2 = c2.Fence
	got, err := newOwner.Get(ctx, 2, []string{"r1"})
	if err != nil || got[0] == nil {
		t.Fatalf("new owner's Get = %v, %v", got, err)
	}
	got[0].LoopApplies = 9
	if err := newOwner.Put(ctx, gen2, []state.Write{{State: got[0]}}, nil); err != nil {
		t.Fatal(err)
	}

	stale := st.Clone() // the old owner still believes it holds the partition
	stale.LoopApplies = 1
	err = oldOwner.Put(ctx, gen1, []state.Write{{State: stale}, {State: statetest.Sample("r2")}}, nil)
	if !errors.Is(err, state.ErrFenced) {
		t.Fatalf("old owner's Put after the new Claim: err = %v, want ErrFenced", err)
	}
	if errors.Is(err, state.ErrVersionConflict) {
		t.Errorf("ErrFenced must be distinguishable from a version conflict: %v", err)
	}
	after, err := newOwner.Get(ctx, 2, []string{"r1", "r2"})
	if err != nil {
		t.Fatal(err)
	}
	if after[0] == nil || after[0].LoopApplies != 9 || after[0].Version != 1 {
		t.Errorf("the new owner's state was overwritten: %+v", after[0])
	}
	if after[1] != nil {
		t.Errorf("the fenced batch wrote r2: %+v", after[1])
	}
	if fence, _ := srv.Client(t).Get(ctx, oldOwner.FenceKey(2)).Result(); fence != "2:2" {
		t.Errorf("fence = %q, want 2:2 (generation 2, the second claim)", fence)
	}
}

// TestRedisReadsFormat1 reads a state as versions before format 3 stored it (an
// 8-byte version, then format 1: record r-2933 of a bench run, in a key of its own),
// and the next Put rewrites it in format 7 into its bucket and deletes the old key.
func TestRedisReadsFormat1(t *testing.T) {
	srv := testenv.Redis(t)
	c := srv.Client(t)
	s := state.NewRedis(c, "bench")
	want, raw := benchTemplateV1(t) // its ids as format 1 stored them, not record-suffixed
	key := s.OldStateKey(3, "r-2933")
	if err := c.Set(ctx, key, raw, 0).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, 3, []string{"r-2933"})
	if err != nil {
		t.Fatal(err)
	}
	if got[0] == nil || got[0].Version != 4 {
		t.Fatalf("format-1 state read as %+v, want version 4 (as stored)", got[0])
	}
	if want.Version = 4; !statetest.Equal(got[0], want) {
		t.Errorf("format-1 state read as\n%+v\nwant\n%+v", got[0], want)
	}
	f, err := s.Claim(ctx, state.Fence{Partition: 3, Generation: 1}, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, f.Fence, []state.Write{{State: got[0]}}, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Exists(ctx, key).Result(); err != nil || n != 0 {
		t.Errorf("the old state key is still there after the Put (EXISTS %d, %v)", n, err)
	}
	bucket, err := s.BucketOf(ctx, 3, "r-2933")
	if err != nil {
		t.Fatal(err)
	}
	stored, err := c.HGet(ctx, bucket, "r-2933").Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if stored[0] != 7 || len(stored) >= len(raw) {
		t.Errorf("rewritten as %d bytes starting %#x, want format 7 and fewer than format 1's %d", len(stored), stored[0], len(raw))
	}
	again, err := state.NewRedis(c, "bench").Get(ctx, 3, []string{"r-2933"})
	if err != nil {
		t.Fatal(err)
	}
	if want.Version = 1; !statetest.Equal(again[0], want) {
		t.Errorf("rewritten state read as\n%+v\nwant\n%+v", again[0], want)
	}
}

// TestRedisNameDictionaryShared: two processes writing one partition in turn (an
// owner and the next) share its name dictionary. The second encodes against a
// dictionary that grew since it cached it, is refused by the script and encodes
// again; the first reads states that use names it has not cached.
func TestRedisNameDictionaryShared(t *testing.T) {
	srv := testenv.Redis(t)
	c := srv.Client(t)
	a, b := state.NewRedis(c, "contacts"), state.NewRedis(srv.Client(t), "contacts")
	if _, err := a.Get(ctx, 0, []string{"x"}); err != nil { // caches the empty dictionary
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, 0, []string{"x"}); err != nil {
		t.Fatal(err)
	}
	fa, err := a.Claim(ctx, state.Fence{Generation: 1}, "")
	if err != nil {
		t.Fatal(err)
	}
	first := typicalState()
	first.Record = "first"
	if err := a.Put(ctx, fa.Fence, []state.Write{{State: first}}, nil); err != nil {
		t.Fatal(err)
	}
	fb, err := b.Claim(ctx, state.Fence{Generation: 2}, "")
	if err != nil {
		t.Fatal(err)
	}
	second := statetest.Sample("second") // other names, some new
	if err := b.Put(ctx, fb.Fence, []state.Write{{State: second}}, nil); err != nil {
		t.Fatalf("Put against a dictionary that grew since: %v", err)
	}
	names, err := c.LRange(ctx, a.NamesKey(0), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			t.Errorf("name %q twice in the dictionary %q", n, names)
		}
		seen[n] = true
	}
	got, err := a.Get(ctx, 0, []string{"first", "second"})
	if err != nil {
		t.Fatalf("Get of a state using names appended by another process: %v", err)
	}
	second.Version = 1
	first.Version = 1
	if !statetest.Equal(got[0], first) || !statetest.Equal(got[1], second) {
		t.Errorf("Get = %+v, %+v", got[0], got[1])
	}

	// A reader that cached the partition's dictionary while it was still empty.
	reader := state.NewRedis(c, "contacts")
	if _, err := reader.Get(ctx, 5, []string{"later"}); err != nil {
		t.Fatal(err)
	}
	f5, err := b.Claim(ctx, state.Fence{Partition: 5, Generation: 1}, "")
	if err != nil {
		t.Fatal(err)
	}
	later := statetest.Sample("later")
	if err := b.Put(ctx, f5.Fence, []state.Write{{State: later}}, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := reader.Get(ctx, 5, []string{"later"}); err != nil || !statetest.Equal(got[0], later) {
		t.Errorf("Get after the dictionary was created = %+v, %v", got, err)
	}
}

// TestRedisKeyLayout pins the documented key layout: one hash tag per partition,
// format 3 states, the partition's names in a list.
func TestRedisKeyLayout(t *testing.T) {
	srv := testenv.Redis(t)
	c := srv.Client(t)
	s := state.NewRedis(c, "contacts")
	c0, err := s.Claim(ctx, state.Fence{Partition: 7, Generation: 3}, "")
	if err != nil {
		t.Fatal(err)
	}
	recs := []string{"1", "a{b}c", "x/y"}
	var writes []state.Write
	for _, r := range recs {
		st := statetest.Sample(r)
		st.Key[0].FP = resolver.Fingerprint(st.Key[0].Value) // the key is then only its name
		writes = append(writes, state.Write{State: st})
	}
	if err := s.Put(ctx, c0.Fence, writes, statetest.SampleOutbox(1)); err != nil {
		t.Fatal(err)
	}
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 5 {
		t.Errorf("keys = %q, want a bucket of %d states, its layout, a fence, an outbox and names", keys, len(recs))
	}
	for _, k := range keys {
		if tag := testenv.HashTag(k); tag != "contacts:p7" {
			t.Errorf("key %q has hash tag %q, want contacts:p7", k, tag)
		}
	}
	raw, err := c.HGet(ctx, "{contacts:p7}:b:0", "a{b}c").Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if raw[0] != 7 || bytes.Contains(raw, []byte("a{b}c")) {
		t.Errorf("stored value %q, want format 7 without the record id", raw)
	}
	names, err := c.LRange(ctx, "{contacts:p7}:names", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"id", "email", "name", "crm", "billing", "notes"}; !slices.Equal(names, want) {
		t.Errorf("names = %q, want %q", names, want)
	}
}

func TestRedisGetCorruptState(t *testing.T) {
	srv := testenv.Redis(t)
	c := srv.Client(t)
	s := state.NewRedis(c, "contacts")
	if err := c.Set(ctx, s.OldStateKey(0, "bad"), "\x00\x00\x00\x00\x00\x00\x00\x01\x09junk", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, 0, []string{"bad"}); !errors.Is(err, state.ErrCorrupt) {
		t.Errorf("Get of a damaged state: err = %v, want ErrCorrupt", err)
	}
	if err := c.Set(ctx, s.OldStateKey(0, "bad"), "\x03\x00\x00\x00\x00\x00\x09", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, 0, []string{"bad"}); !errors.Is(err, state.ErrCorrupt) {
		t.Errorf("Get of a format-3 state naming names the dictionary lacks: err = %v, want ErrCorrupt", err)
	}
}

// roundTrips counts the commands and pipelines a client sends: each is one round trip.
type roundTrips struct{ n atomic.Int64 }

func (*roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmds)
	}
}

func batch(n int) []string {
	recs := make([]string, n)
	for i := range recs {
		recs[i] = fmt.Sprint(1_000_000 + i)
	}
	return recs
}

// getPut is one batch's state traffic: read every record, write every record back.
func getPut(s *state.Redis, f state.Fence, recs []string) error {
	states, err := s.Get(ctx, f.Partition, recs)
	if err != nil {
		return err
	}
	writes := make([]state.Write, len(recs))
	for i, st := range states {
		if st == nil {
			st = typicalState()
			st.Record = recs[i]
		}
		st.LoopApplies++
		writes[i] = state.Write{State: st}
	}
	return s.Put(ctx, f, writes, nil)
}

func TestRedisBatchIsTwoRoundTrips(t *testing.T) {
	srv := testenv.Redis(t)
	c := srv.Client(t)
	var rt roundTrips
	c.AddHook(&rt)
	s := state.NewRedis(c, "contacts")
	f := state.Fence{Generation: 1}
	recs := batch(500)
	if err := getPut(s, f, recs); err != nil { // loads the script (EVALSHA, then EVAL)
		t.Fatal(err)
	}
	rt.n.Store(0)
	if err := getPut(s, f, recs); err != nil {
		t.Fatal(err)
	}
	if n := rt.n.Load(); n != 2 {
		t.Errorf("Get+Put of 500 records took %d round trips, want 2", n)
	}
}

// BenchmarkRedisGetPut500 is one batch of 500 typical records against real Redis:
// two EVALSHA (get.lua and put.lua).
func BenchmarkRedisGetPut500(b *testing.B) {
	srv := testenv.Redis(b)
	if !srv.Real {
		b.Skip("needs redis-server")
	}
	c := srv.Client(b)
	var rt roundTrips
	c.AddHook(&rt)
	s := state.NewRedis(c, "contacts")
	f := state.Fence{Generation: 1}
	recs := batch(500)
	if err := getPut(s, f, recs); err != nil {
		b.Fatal(err)
	}
	if err := c.ConfigResetStat(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	rt.n.Store(0)
	b.ReportAllocs()
	for b.Loop() {
		if err := getPut(s, f, recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rt.n.Load())/float64(b.N), "roundtrips/op")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/500, "us/record")
	// The server's own time in the put script and the MGET (INFO commandstats), which
	// the other processes on the machine disturb less than the wall clock.
	stats, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(stats, "\r\n") {
		for _, cmd := range []string{"evalsha"} {
			if rest, ok := strings.CutPrefix(line, "cmdstat_"+cmd+":"); ok {
				for kv := range strings.SplitSeq(rest, ",") {
					if v, ok := strings.CutPrefix(kv, "usec_per_call="); ok {
						us, _ := strconv.ParseFloat(v, 64)
						b.ReportMetric(us, "redis_us/"+cmd)
					}
				}
			}
		}
	}
}

// BenchmarkRedisMemoryPerRecord reports what a typical record costs in Redis memory
// (key, value and Redis's own overhead), for sizing: it writes b.N×1000 typical states
// into a fresh database and compares used_memory before and after.
func BenchmarkRedisMemoryPerRecord(b *testing.B) {
	srv := testenv.Redis(b)
	if !srv.Real {
		b.Skip("needs a real redis-server")
	}
	client := srv.Client(b)
	s := state.NewRedis(client, "contacts")
	ctx := context.Background()
	f := state.Fence{Partition: 0, Generation: 1}
	c, err := s.Claim(ctx, f, "")
	if err != nil {
		b.Fatal(err)
	}
	f = c.Fence
	used := func() int64 { return usedMemory(b, client) }
	before := used()
	records := 0
	for i := range b.N * 1000 {
		st := typicalState()
		st.Record = strconv.Itoa(1_000_000 + i)
		if err := s.Put(ctx, f, []state.Write{{State: st, Systems: []string{"billing", "crm"}, Held: []string{"billing", "crm"}}}, nil); err != nil {
			b.Fatal(err)
		}
		records++
	}
	b.ReportMetric(float64(used()-before)/float64(records), "redis_bytes/record")
}

// TestRedisBucketsSplit grows a partition to 5,000 records in batches of 500 and
// deletes some: the buckets split as linear hashing does (buckets.lua), every record
// is where BucketOf (Go's copy of the script's arithmetic and hash) says and reads
// back, no bucket outgrows Redis's default listpack size, and the layout's record
// count stays exact.
func TestRedisBucketsSplit(t *testing.T) {
	srv := testenv.Redis(t)
	c := srv.Client(t)
	s := state.NewRedis(c, "contacts")
	f, err := s.Claim(ctx, state.Fence{Partition: 2, Generation: 1}, "")
	if err != nil {
		t.Fatal(err)
	}
	const n = 5000
	recs := make([]string, n)
	for i := range recs {
		recs[i] = "c-" + strconv.Itoa(i)
	}
	for i := 0; i < n; i += 500 {
		var writes []state.Write
		for _, r := range recs[i : i+500] {
			st := typicalState()
			st.Record = r
			writes = append(writes, state.Write{State: st})
		}
		if err := s.Put(ctx, f.Fence, writes, nil); err != nil {
			t.Fatal(err)
		}
	}
	var deletes []state.Write
	for _, r := range recs[:n/10] {
		deletes = append(deletes, state.Write{State: &resolver.State{Record: r}, Delete: true})
	}
	if err := s.Put(ctx, f.Fence, deletes, nil); err != nil {
		t.Fatal(err)
	}
	layout, err := c.HGetAll(ctx, s.LayoutKey(2)).Result()
	if err != nil {
		t.Fatal(err)
	}
	level, _ := strconv.Atoi(layout["level"])
	split, _ := strconv.Atoi(layout["split"])
	buckets := 1<<level + split
	// 5,000 records at most 32 per bucket: 157 buckets (128 + 29), kept after deletes.
	if layout["records"] != strconv.Itoa(n-n/10) || level != 7 || split != 29 {
		t.Errorf("layout %v, want %d records, level 7, split 29", layout, n-n/10)
	}
	for i := range buckets {
		size, err := c.HLen(ctx, s.BucketKey(2, uint32(i))).Result()
		if err != nil {
			t.Fatal(err)
		}
		if size > 128 {
			t.Errorf("bucket %d holds %d records, more than Redis's default listpack of 128 entries", i, size)
		}
	}
	if extra, err := c.Exists(ctx, s.BucketKey(2, uint32(buckets))).Result(); err != nil || extra != 0 {
		t.Errorf("bucket %d exists beyond the layout's %d (%d, %v)", buckets, buckets, extra, err)
	}
	for i, r := range recs {
		key, err := s.BucketOf(ctx, 2, r)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := c.HExists(ctx, key, r).Result(); err != nil || ok != (i >= n/10) {
			t.Fatalf("record %s: in %s = %v (%v), deleted %v", r, key, ok, err, i < n/10)
		}
	}
	got, err := s.Get(ctx, 2, recs)
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range got {
		if deleted := i < n/10; deleted != (st == nil) {
			t.Fatalf("record %s read as %v, deleted %v", recs[i], st, deleted)
		}
		if st != nil && st.Record != recs[i] {
			t.Fatalf("record %s read as record %s", recs[i], st.Record)
		}
	}
}

// TestRedisOldStateKeyGoesWithDelete: a record whose state is still in a key of
// before buckets, deleted without having been read, leaves no old key that a later
// Get would take for its state.
func TestRedisOldStateKeyGoesWithDelete(t *testing.T) {
	srv := testenv.Redis(t)
	c := srv.Client(t)
	s := state.NewRedis(c, "bench")
	_, raw := benchTemplateV1(t)
	if err := c.Set(ctx, s.OldStateKey(3, "r-2933"), raw, 0).Err(); err != nil {
		t.Fatal(err)
	}
	f, err := s.Claim(ctx, state.Fence{Partition: 3, Generation: 1}, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, f.Fence, []state.Write{{State: &resolver.State{Record: "r-2933"}, Delete: true}}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := state.NewRedis(c, "bench").Get(ctx, 3, []string{"r-2933"})
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != nil {
		t.Errorf("a deleted record read back as %+v from its old state key", got[0])
	}
}

func TestRedisListpackAdvice(t *testing.T) {
	srv := testenv.Redis(t)
	if !srv.Real {
		t.Skip("miniredis has no CONFIG GET of hash-max-listpack-value")
	}
	c := srv.Client(t)
	s := state.NewRedis(c, "contacts")
	if err := c.ConfigSet(ctx, "hash-max-listpack-value", "64").Err(); err != nil { // Redis's default
		t.Fatal(err)
	}
	t.Cleanup(func() { c.ConfigSet(ctx, "hash-max-listpack-value", "64") })
	if advice, err := s.ListpackAdvice(ctx); err != nil || !strings.Contains(advice, "hash-max-listpack-value 1024") {
		t.Errorf("advice at Redis's default = %q, %v; want how to raise it", advice, err)
	}
	if err := c.ConfigSet(ctx, "hash-max-listpack-value", "1024").Err(); err != nil {
		t.Fatal(err)
	}
	if advice, err := s.ListpackAdvice(ctx); err != nil || advice != "" {
		t.Errorf("advice at 1024 = %q, %v; want none", advice, err)
	}
}

// TestRedisPutAfter sends other commands ahead of a Put in its round trip: they run
// once, also when the server has to be given the script first (NOSCRIPT); one that
// fails is reported apart while the states are still written; one that cannot be
// queued sends nothing; on a Cluster client they go first in a round trip of their
// own, and their failure stops the Put.
func TestRedisPutAfter(t *testing.T) {
	check := func(t *testing.T, c redis.UniversalClient, name string, rt *roundTrips, sequential bool) {
		s := state.NewRedis(c, name)
		counter := "{" + name + ":dlq}:stats"
		f, err := s.Claim(ctx, state.Fence{Generation: 1}, "")
		if err != nil {
			t.Fatal(err)
		}
		put := func(rec string, before func(redis.Pipeliner) error) (error, error) {
			st := typicalState()
			st.Record = rec
			return s.PutAfter(ctx, f.Fence, []state.Write{{State: st}}, nil, before)
		}
		incr := func(pipe redis.Pipeliner) error { pipe.HIncrBy(ctx, counter, "events", 1); return nil }
		stored := func(rec string) bool {
			got, err := s.Get(ctx, 0, []string{rec})
			return err == nil && got[0] != nil
		}

		if err := c.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if noteErr, err := put("a", incr); noteErr != nil || err != nil || !stored("a") {
			t.Fatalf("after SCRIPT FLUSH: noteErr %v, err %v, stored %v", noteErr, err, stored("a"))
		}
		if rt != nil {
			rt.n.Store(0)
		}
		if noteErr, err := put("b", incr); noteErr != nil || err != nil || !stored("b") {
			t.Fatalf("noteErr %v, err %v, stored %v", noteErr, err, stored("b"))
		}
		if rt != nil {
			if n := rt.n.Load(); n != 2 { // and the Get of stored
				t.Errorf("PutAfter took %d round trips, want 1", n-1)
			}
		}
		if n, _ := c.HGet(ctx, counter, "events").Int(); n != 2 {
			t.Errorf("the commands before ran %d times in 2 Puts, want 2", n)
		}

		notHash := "{" + name + ":dlq}:string"
		c.Set(ctx, notHash, "x", 0)
		noteErr, err := put("c", func(pipe redis.Pipeliner) error { pipe.HIncrBy(ctx, notHash, "events", 1); return nil })
		switch {
		case noteErr == nil || !strings.Contains(noteErr.Error(), "WRONGTYPE"):
			t.Errorf("a failing command before: noteErr %v, want WRONGTYPE", noteErr)
		case !sequential && (err != nil || !stored("c")):
			t.Errorf("a failing command before: err %v, stored %v; want the states written all the same", err, stored("c"))
		case sequential && (err == nil || stored("c")):
			t.Errorf("a failing command before, in a round trip of its own: err %v, stored %v; want nothing written", err, stored("c"))
		}

		refused := errors.New("cannot encode")
		noteErr, err = put("d", func(redis.Pipeliner) error { return refused })
		if !errors.Is(err, refused) || !errors.Is(noteErr, refused) || stored("d") {
			t.Errorf("before failing to queue: noteErr %v, err %v, stored %v; want both the failure and nothing stored", noteErr, err, stored("d"))
		}
	}
	t.Run("single node", func(t *testing.T) {
		c := testenv.Redis(t).Client(t)
		var rt roundTrips
		c.AddHook(&rt)
		check(t, c, "contacts", &rt, false)
	})
	t.Run("cluster", func(t *testing.T) {
		cl := testenv.RedisCluster(t)
		check(t, cl.Client(t), cl.Name, nil, true)
	})
}
