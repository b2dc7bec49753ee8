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

// sampleKeys is how many state keys the memory figures are the mean of.
const sampleKeys = 2000

// stateKeyPattern matches the bench's state keys (state.Redis's layout:
// {<name>:p<partition>}:s:<record>).
const stateKeyPattern = "{bench:p*}:s:*"

// stateSample is what the state of a run weighs: Redis's own MEMORY USAGE of the
// state keys (0 on miniredis, which has no such figure) and their encoded length,
// each the mean over up to sampleKeys keys found by SCAN, and the states read (the
// templates of a memory load).
type stateSample struct {
	usage   float64 // mean MEMORY USAGE, bytes
	encoded float64 // mean len(MarshalState)
	keys    int
	states  []*resolver.State
}

// sampleState SCANs up to sampleKeys state keys, reads their states through the
// Store (so the encoding measured is the Store's) and, on a real Redis, asks each
// key's MEMORY USAGE (SAMPLES 0: every element counted).
func sampleState(ctx context.Context, rdb *redis.Client, store *state.Redis, realRedis bool, progress Progress) (*stateSample, error) {
	keys, err := scanKeys(ctx, rdb, sampleKeys)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errors.New("bench: no state stored")
	}
	s := &stateSample{keys: len(keys)}
	byPartition := map[int32][]string{}
	for _, k := range keys {
		p, rec, ok := parseStateKey(k)
		if !ok {
			return nil, fmt.Errorf("bench: %q is not a state key of the layout state.Redis documents", k)
		}
		byPartition[p] = append(byPartition[p], rec)
	}
	total := 0
	for p, recs := range byPartition {
		states, err := store.Get(ctx, p, recs)
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
	s.encoded = float64(total) / float64(len(s.states))
	if realRedis {
		if s.usage, err = memoryUsage(ctx, rdb, keys, progress); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// scanKeys returns up to n state keys.
func scanKeys(ctx context.Context, rdb *redis.Client, n int) ([]string, error) {
	var keys []string
	var cursor uint64
	for {
		batch, next, err := rdb.Scan(ctx, cursor, stateKeyPattern, 1000).Result()
		if err != nil {
			return nil, fmt.Errorf("bench: scanning the state keys: %w", err)
		}
		keys = append(keys, batch...)
		if cursor = next; cursor == 0 || len(keys) >= n {
			break
		}
	}
	return keys[:min(n, len(keys))], nil
}

// parseStateKey splits {bench:p<partition>}:s:<record>.
func parseStateKey(k string) (int32, string, bool) {
	rest, ok := strings.CutPrefix(k, "{bench:p")
	if !ok {
		return 0, "", false
	}
	part, rec, ok := strings.Cut(rest, "}:s:")
	if !ok {
		return 0, "", false
	}
	p, err := strconv.ParseInt(part, 10, 32)
	return int32(p), rec, err == nil
}

// memoryUsage is the mean MEMORY USAGE of the keys, pipelined 500 at a time.
func memoryUsage(ctx context.Context, rdb *redis.Client, keys []string, progress Progress) (float64, error) {
	var total int64
	for i := 0; i < len(keys); i += 500 {
		pipe := rdb.Pipeline()
		var cmds []*redis.IntCmd
		for _, k := range keys[i:min(i+500, len(keys))] {
			cmds = append(cmds, pipe.MemoryUsage(ctx, k, 0))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return 0, fmt.Errorf("bench: MEMORY USAGE of the state keys: %w", err)
		}
		for _, c := range cmds {
			total += c.Val()
		}
		progress(PhaseMemory, int64(i+len(cmds)), int64(len(keys)), "keys")
	}
	return float64(total) / float64(len(keys)), nil
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
	keys, err := scanKeys(ctx, rdb, sampleKeys)
	if err != nil {
		return nil, err
	}
	m.keys = len(keys)
	if m.usagePerRecord, err = memoryUsage(ctx, rdb, keys, progress); err != nil {
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
