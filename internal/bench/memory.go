package bench

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/concord-sync/concord/pipeline/state"
	"github.com/concord-sync/concord/resolver"
)

// sampleKeys is how many states the memory figures are the mean of (at least: whole
// buckets are sampled).
const sampleKeys = 2000

// bucketKeyPattern matches the bench's state buckets (state.Redis's layout:
// {<name>:p<partition>}:b:<i>, a hash of record -> state).
const bucketKeyPattern = "{bench:p*}:b:*"

// stateSample is what the state of a run weighs: Redis's own MEMORY USAGE per record
// of the buckets sampled (0 on miniredis, which has no such figure) and the mean
// encoded length of their states, over the states of the buckets found by SCAN until
// they hold sampleKeys, and the states read (the templates of a memory load).
type stateSample struct {
	usage   float64 // MEMORY USAGE of the buckets / their records, bytes
	encoded float64 // mean len(MarshalState)
	keys    int     // states sampled
	states  []*resolver.State
}

// sampleState SCANs buckets until they hold sampleKeys states, reads their states
// through the Store (so the encoding measured is the Store's) and, on a real Redis,
// asks each bucket's MEMORY USAGE (SAMPLES 0: every element counted).
func sampleState(ctx context.Context, rdb *redis.Client, store *state.Redis, realRedis bool, progress Progress) (*stateSample, error) {
	buckets, err := scanBuckets(ctx, rdb, sampleKeys)
	if err != nil {
		return nil, err
	}
	if len(buckets) == 0 {
		return nil, errors.New("bench: no state stored")
	}
	s := &stateSample{}
	total := 0
	for _, b := range buckets {
		states, err := store.Get(ctx, b.partition, b.records)
		if err != nil {
			return nil, err
		}
		for _, st := range states {
			if st != nil {
				total += len(state.MarshalState(nil, st))
				s.states = append(s.states, st)
			}
		}
	}
	if len(s.states) == 0 {
		return nil, errors.New("bench: no state stored")
	}
	s.keys = len(s.states)
	s.encoded = float64(total) / float64(len(s.states))
	if realRedis {
		if s.usage, err = memoryUsage(ctx, rdb, buckets, progress); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// bucket is a state bucket found by SCAN and the records in it.
type bucket struct {
	key       string
	partition int32
	records   []string
}

// scanBuckets returns buckets until they hold at least n records, or all of them.
func scanBuckets(ctx context.Context, rdb *redis.Client, n int) ([]bucket, error) {
	var out []bucket
	found := 0
	var cursor uint64
	for {
		keys, next, err := rdb.Scan(ctx, cursor, bucketKeyPattern, 1000).Result()
		if err != nil {
			return nil, fmt.Errorf("bench: scanning the state buckets: %w", err)
		}
		for _, k := range keys {
			p, ok := parseBucketKey(k)
			if !ok {
				return nil, fmt.Errorf("bench: %q is not a state bucket of the layout state.Redis documents", k)
			}
			recs, err := rdb.HKeys(ctx, k).Result()
			if err != nil {
				return nil, fmt.Errorf("bench: HKEYS %s: %w", k, err)
			}
			out = append(out, bucket{key: k, partition: p, records: recs})
			if found += len(recs); found >= n {
				return out, nil
			}
		}
		if cursor = next; cursor == 0 {
			return out, nil
		}
	}
}

// parseBucketKey reads the partition of {bench:p<partition>}:b:<i>.
func parseBucketKey(k string) (int32, bool) {
	rest, ok := strings.CutPrefix(k, "{bench:p")
	if !ok {
		return 0, false
	}
	part, _, ok := strings.Cut(rest, "}:b:")
	if !ok {
		return 0, false
	}
	p, err := strconv.ParseInt(part, 10, 32)
	return int32(p), err == nil
}

// memoryUsage is the MEMORY USAGE of the buckets per record they hold, pipelined 500
// buckets at a time.
func memoryUsage(ctx context.Context, rdb *redis.Client, buckets []bucket, progress Progress) (float64, error) {
	n := records(buckets)
	if n == 0 {
		return 0, errors.New("bench: the state buckets sampled are empty")
	}
	var total int64
	for i := 0; i < len(buckets); i += 500 {
		pipe := rdb.Pipeline()
		var cmds []*redis.IntCmd
		for _, b := range buckets[i:min(i+500, len(buckets))] {
			cmds = append(cmds, pipe.MemoryUsage(ctx, b.key, 0))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return 0, fmt.Errorf("bench: MEMORY USAGE of the state buckets: %w", err)
		}
		for _, c := range cmds {
			total += c.Val()
		}
		progress(PhaseMemory, int64(i+len(cmds)), int64(len(buckets)), "buckets")
	}
	return float64(total) / float64(n), nil
}

// records is how many records the buckets hold.
func records(buckets []bucket) int {
	n := 0
	for _, b := range buckets {
		n += len(b.records)
	}
	return n
}

// usedMemory is INFO memory's used_memory.
func usedMemory(ctx context.Context, rdb *redis.Client) (int64, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, fmt.Errorf("bench: INFO memory: %w", err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("bench: INFO memory has no used_memory")
}

// memoryLoad is what --memory-records measures.
type memoryLoad struct {
	usedPerRecord  float64
	usagePerRecord float64
	keys           int
	seconds        float64
}

// loadRecords flushes Redis and writes n records' states in the shape the pipeline
// left them in: copies of templates (states read back after the run) under new record
// ids r-0 … r-<n-1>, each in the partition the workload routes it to, written
// through the real Store (Claim, then Put in batches of the pipeline's 500 with the
// claimed fence, one goroutine per partition) so that the Store's encoding, key
// layout and indexes are what is measured. The key field's value is set to the new
// id (its fingerprint is kept: it is fixed-size). It returns used_memory's growth per
// record and the mean MEMORY USAGE of a sample of the keys.
func loadRecords(ctx context.Context, rdb *redis.Client, templates []*resolver.State, n, partitions int, progress Progress) (*memoryLoad, error) {
	cfg, err := Config("localhost:9092", "localhost:6379")
	if err != nil {
		return nil, err
	}
	rules, err := resolver.New(cfg)
	if err != nil {
		return nil, err
	}
	systems := cfg.SystemNames()
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		return nil, fmt.Errorf("bench: flushing Redis: %w", err)
	}
	before, err := usedMemory(ctx, rdb)
	if err != nil {
		return nil, err
	}
	ids := make([][]int, partitions)
	for r := range n {
		p := recordPartition("r-"+strconv.Itoa(r), partitions)
		ids[p] = append(ids[p], r)
	}
	store := state.NewRedis(rdb, "bench")
	var written atomic.Int64
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for p := range partitions {
		g.Go(func() error {
			c, err := store.Claim(gctx, state.Fence{Partition: int32(p), Generation: 1}, "")
			if err != nil {
				return err
			}
			nowMs := time.Now().UnixMilli()
			for i := 0; i < len(ids[p]); i += 500 {
				var writes []state.Write
				for _, r := range ids[p][i:min(i+500, len(ids[p]))] {
					st := copyState(templates[r%len(templates)], "r-"+strconv.Itoa(r))
					writes = append(writes, state.Write{
						State: st, DueMs: st.NextDeadlineMs(rules), Systems: systems, Held: held(st), DriftSinceMs: nowMs,
					})
				}
				if err := store.Put(gctx, c.Fence, writes, nil); err != nil {
					return fmt.Errorf("bench: loading records: %w", err)
				}
				written.Add(int64(len(writes)))
			}
			return nil
		})
	}
	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case err := <-done:
			if err != nil {
				return nil, err
			}
			break wait
		case <-tick.C:
			progress(PhaseMemory, written.Load(), int64(n), "records loaded")
		}
	}
	m := &memoryLoad{seconds: time.Since(start).Seconds()}
	after, err := usedMemory(ctx, rdb)
	if err != nil {
		return nil, err
	}
	m.usedPerRecord = float64(after-before) / float64(n)
	buckets, err := scanBuckets(ctx, rdb, sampleKeys)
	if err != nil {
		return nil, err
	}
	m.keys = records(buckets)
	if m.usagePerRecord, err = memoryUsage(ctx, rdb, buckets, progress); err != nil {
		return nil, err
	}
	return m, nil
}

// copyState is a new record with the state of st: a clone under record id, with no
// stored version yet and its key field (the workload has one) set to id.
func copyState(st *resolver.State, id string) *resolver.State {
	c := st.Clone()
	c.Record, c.Version = id, 0
	if len(c.Key) == 1 { // a new slice: Clone may share the template's
		c.Key = []resolver.Value{{Name: c.Key[0].Name, FP: c.Key[0].FP, Value: strconv.AppendQuote(nil, id)}}
	}
	// The second half of an apply's event id is its record's (resolver.EventIDSuffix):
	// the copy's are the new record's, as the resolver would have made them.
	from, to := idSuffix(st.Record), idSuffix(id)
	for i := range c.Systems {
		ss := &c.Systems[i]
		for j := range ss.InFlight {
			ss.InFlight[j].EventID = reSuffixed(ss.InFlight[j].EventID, from, to)
		}
		for j := range ss.Landed {
			ss.Landed[j].EventID = reSuffixed(ss.Landed[j].EventID, from, to)
		}
	}
	return c
}

func idSuffix(record string) string {
	return fmt.Sprintf("%016x", resolver.EventIDSuffix(record))
}

// reSuffixed is id with its second half to instead of from, or id when it does not
// end in from.
func reSuffixed(id, from, to string) string {
	if head, ok := strings.CutSuffix(id, from); ok && len(head) == len(from) {
		return head + to
	}
	return id
}

// held are the systems that hold a record (the pipeline's parity counts).
func held(st *resolver.State) []string {
	var out []string
	for i := range st.Systems {
		if ss := &st.Systems[i]; ss.Known && !ss.Deleted {
			out = append(out, ss.Name)
		}
	}
	return out
}

// recordPartition is the partition the workload routes a record to (fnv-1a of its id).
func recordPartition(id string, partitions int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return int(h.Sum32() % uint32(partitions))
}
