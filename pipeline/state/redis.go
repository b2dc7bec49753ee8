package state

import (
	"context"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/concord-sync/concord/resolver"
)

// Redis is a Store in Redis (standalone, Sentinel or Cluster through
// redis.UniversalClient).
//
// Key layout: every key of one input partition carries the hash tag
// {<name>:p<partition>}, so a partition lives in one hash slot and one script can
// check its fence and write every record of a batch atomically:
//
//	{<name>:p<partition>}:fence       "<generation>:<epoch>", decimal
//	{<name>:p<partition>}:outbox      the last batch's Outbox (see outbox.go)
//	{<name>:p<partition>}:names       the name dictionary of the states (names.go)
//	{<name>:p<partition>}:s:<record>  the state in format 5 (encoding.go); states
//	                                  written before are format 3, or version (8
//	                                  bytes big-endian) + format 1, read as such
//	                                  and rewritten in format 5 by the next Put
//
// Get is one MGET (with an LRANGE of the names the first time, or when a state uses
// a name appended by another process since); Put, Claim and Delivered are one
// EVALSHA each (EVAL when the server does not have the script cached yet).
// Generations and epochs are compared as Lua numbers: exact within ±2^53, far beyond
// Kafka's int32 generation ids.
//
// No version is stored with a state and Put compares none: the partition fence
// already makes one writer per partition (every Claim takes a new epoch and put.lua
// refuses any other, atomically with the writes), and that writer reads and writes
// its partition's records one batch after another, so a per-record compare-and-set
// could only ever fail for a writer the fence refuses anyway, or for the writer's own
// earlier write still on its way after its reply was lost: the pipeline claims the
// partition again before deciding such a batch again, which fences that write too.
// It cost 8 bytes per state and a GET per record in the script. Get returns Version 1 for every stored
// state (a format-1 state, the version it was stored with), so 0 still means "never
// stored".
//
// A Redis is safe for concurrent use. name must not start with '}' (config names are
// [A-Za-z0-9._-]+), or the hash tag would be empty and keys would spread over slots.
type Redis struct {
	client redis.UniversalClient
	name   string

	dictsMu sync.Mutex
	dicts   map[int32]*dictionary // partition -> cached name dictionary
}

// NewRedis returns a Store keeping its keys under name (the config's name) in client.
func NewRedis(client redis.UniversalClient, name string) *Redis {
	return &Redis{client: client, name: name, dicts: map[int32]*dictionary{}}
}

var (
	//go:embed fence.lua
	fenceSource string

	//go:embed put.lua
	putSource string
	putScript = redis.NewScript(fenceSource + putSource)

	//go:embed claim.lua
	claimSource string
	claimScript = redis.NewScript(fenceSource + claimSource)

	//go:embed delivered.lua
	deliveredSource string
	deliveredScript = redis.NewScript(fenceSource + deliveredSource)
)

// Script replies: the first element says what happened.
const (
	replyOK     = 0
	replyFenced = 1 // {1, stored fence} ({1, stored fence, outbox} from Claim)
	replyNames  = 3 // {3, length of the name dictionary}: encoded against another
)

// versionLen is the size of the version prefix of a state stored in format 1.
const versionLen = 8

// putAttempts bounds how often Put encodes a batch again after the name dictionary
// grew under it (another process appending names to the same partition, which only
// a process that lost the partition would do, and then the fence refuses it).
const putAttempts = 3

// partitionTag returns "{<name>:p<partition>}", the prefix of every key of the partition.
func (r *Redis) partitionTag(partition int32) string {
	return "{" + r.name + ":p" + strconv.FormatInt(int64(partition), 10) + "}"
}

// FenceKey returns the key of the partition's fence.
func (r *Redis) FenceKey(partition int32) string {
	return r.partitionTag(partition) + ":fence"
}

// DueKey returns the key of a partition's deadline index (a sorted set of records
// scored by when they next have time-driven work).
func (r *Redis) DueKey(partition int32) string {
	return r.partitionTag(partition) + ":due"
}

// StateKey returns the key of a record's state.
func (r *Redis) StateKey(partition int32, record string) string {
	return r.partitionTag(partition) + ":s:" + record
}

// Ping checks that the server answers.
func (r *Redis) Ping(ctx context.Context) error { return r.client.Ping(ctx).Err() }

// OutboxKey returns the key of the partition's outbox.
func (r *Redis) OutboxKey(partition int32) string {
	return r.partitionTag(partition) + ":outbox"
}

// Claim implements Store.
func (r *Redis) Claim(ctx context.Context, f Fence, supersede string) (Claimed, error) {
	keys := []string{r.FenceKey(f.Partition), r.OutboxKey(f.Partition)}
	res, err := claimScript.Run(ctx, r.client, keys, generation(f), supersede).Slice()
	if err != nil {
		return Claimed{}, fmt.Errorf("state: claiming partition %d for generation %d in Redis: %w", f.Partition, f.Generation, err)
	}
	if len(res) != 3 {
		return Claimed{}, fmt.Errorf("state: the claim script returned %v", res)
	}
	c := Claimed{Fence: f}
	box, _ := res[2].(string)
	if c.Outbox, err = unmarshalOutbox(box); err != nil {
		return Claimed{}, fmt.Errorf("state: %s: %w", keys[1], err)
	}
	switch code, _ := res[0].(int64); code {
	case replyOK:
		c.Fence.Epoch, _ = res[1].(int64)
		return c, nil
	case replyFenced:
		c.Stored, _ = res[1].(string)
		return c, fmt.Errorf("%w: partition %d is held by %q (generation:epoch), newer than generation %d", ErrFenced, f.Partition, c.Stored, f.Generation)
	}
	return Claimed{}, fmt.Errorf("state: the claim script returned %v", res)
}

// Outbox implements Store: one GET.
func (r *Redis) Outbox(ctx context.Context, partition int32) (Outbox, error) {
	v, err := r.client.Get(ctx, r.OutboxKey(partition)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return Outbox{}, fmt.Errorf("state: reading the outbox of partition %d: %w", partition, err)
	}
	b, err := unmarshalOutbox(v)
	if err != nil {
		return Outbox{}, fmt.Errorf("state: %s: %w", r.OutboxKey(partition), err)
	}
	return b, nil
}

// Delivered implements Store: one script call.
func (r *Redis) Delivered(ctx context.Context, f Fence, box *Outbox) error {
	kept := Outbox{Seq: box.Seq, Epoch: box.Epoch, Offsets: box.Offsets}
	seq := binary.BigEndian.AppendUint64(nil, box.Seq)
	keys := []string{r.FenceKey(f.Partition), r.OutboxKey(f.Partition)}
	res, err := deliveredScript.Run(ctx, r.client, keys, f.Epoch, seq, kept.marshal()).Slice()
	if err != nil {
		return fmt.Errorf("state: clearing the delivered outbox of partition %d: %w", f.Partition, err)
	}
	return fenceReply(f, res)
}

// Get implements Store.
func (r *Redis) Get(ctx context.Context, partition int32, records []string) ([]*resolver.State, error) {
	out := make([]*resolver.State, len(records))
	if len(records) == 0 {
		return out, nil
	}
	keys := make([]string, len(records))
	for i, rec := range records {
		keys[i] = r.StateKey(partition, rec)
	}
	d := r.dict(partition)
	names, loaded := d.snapshot()
	var vals []any
	var err error
	if loaded {
		vals, err = r.client.MGet(ctx, keys...).Result()
	} else { // the first read of the partition: its names in the same round trip
		pipe := r.client.Pipeline()
		mget := pipe.MGet(ctx, keys...)
		lrange := pipe.LRange(ctx, r.NamesKey(partition), 0, -1)
		if _, err = pipe.Exec(ctx); err == nil {
			d.set(lrange.Val())
			names, _ = d.snapshot()
			vals = mget.Val()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("state: reading %d states of partition %d from Redis: %w", len(records), partition, err)
	}
	if len(vals) != len(keys) {
		return nil, fmt.Errorf("state: MGET of %d keys returned %d values", len(keys), len(vals))
	}
	reloaded := false
	for i, v := range vals {
		if v == nil {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("state: MGET returned a %T for %s", v, keys[i])
		}
		st, err := decodeStored(s, records[i], names)
		if err != nil && !reloaded && errors.Is(err, errUnknownName) {
			// A name appended since the dictionary was cached (by an earlier owner of
			// the partition): read it again, once per Get.
			if err := r.load(ctx, partition, d); err != nil {
				return nil, err
			}
			names, _ = d.snapshot()
			reloaded = true
			st, err = decodeStored(s, records[i], names)
		}
		if err != nil {
			return nil, fmt.Errorf("state: %s: %w", keys[i], err)
		}
		out[i] = st
	}
	return out, nil
}

// decodeStored decodes a stored value: format 5 or 3, or the version prefix and format 1
// that states were stored as before (a version below 2^56 starts with a zero byte,
// which no format byte is).
func decodeStored(s, record string, names []string) (*resolver.State, error) {
	st := new(resolver.State)
	if names == nil {
		names = []string{} // a dictionary that is empty so far: unknown names, not "no dictionary"
	}
	if len(s) > 0 && (s[0] == formatV3 || s[0] == formatV5) {
		if err := unmarshalStored([]byte(s), record, names, st); err != nil {
			return nil, err
		}
		st.Version = 1
		return st, nil
	}
	if len(s) < versionLen || s[0] != 0 {
		return nil, fmt.Errorf("%w: %d bytes, neither format 5 or 3 nor a version and format 1", ErrCorrupt, len(s))
	}
	if err := UnmarshalState([]byte(s[versionLen:]), st); err != nil {
		return nil, err
	}
	st.Version = max(binary.BigEndian.Uint64([]byte(s[:versionLen])), 1)
	st.Record = record
	return st, nil
}

// CountsKey returns the key of a partition's records-per-system counts.
func (r *Redis) CountsKey(partition int32) string { return r.partitionTag(partition) + ":counts" }

// DriftKey returns the key of a partition's index of records a system lacks while
// another holds them, scored by since when.
func (r *Redis) DriftKey(partition int32, system string) string {
	return r.partitionTag(partition) + ":drift:" + system
}

// Put implements Store: one script call (see put.lua for its keys and arguments).
func (r *Redis) Put(ctx context.Context, f Fence, writes []Write, box *Outbox) error {
	d := r.dict(f.Partition)
	if _, loaded := d.snapshot(); !loaded && len(writes) > 0 {
		if err := r.load(ctx, f.Partition, d); err != nil {
			return err
		}
	}
	if box != nil {
		box.Epoch = f.Epoch
	}
	for attempt := 1; ; attempt++ {
		keys, args, added := r.putArgs(f, writes, box, d)
		res, err := putScript.Run(ctx, r.client, keys, args...).Slice()
		if err != nil {
			return fmt.Errorf("state: writing %d states of partition %d to Redis: %w", len(writes), f.Partition, err)
		}
		if err := fenceReply(f, res); err != nil {
			return err
		}
		if code, _ := res[0].(int64); code == replyNames {
			if attempt == putAttempts {
				return fmt.Errorf("state: the name dictionary of partition %d kept changing during %d writes", f.Partition, attempt)
			}
			if err := r.load(ctx, f.Partition, d); err != nil {
				return err
			}
			continue
		}
		d.appended(added)
		break
	}
	for _, w := range writes {
		if w.Delete {
			w.State.Version = 0
		} else {
			w.State.Version++
		}
	}
	return nil
}

// putArgs encodes a batch against the partition's dictionary as cached.
func (r *Redis) putArgs(f Fence, writes []Write, box *Outbox, d *dictionary) ([]string, []any, *batchNames) {
	n := len(writes)
	keys := make([]string, 5, 5+n+4)
	keys[0], keys[1], keys[2], keys[3], keys[4] = r.FenceKey(f.Partition), r.DueKey(f.Partition), r.CountsKey(f.Partition),
		r.OutboxKey(f.Partition), r.NamesKey(f.Partition)
	vals := make([]any, n)
	d.mu.Lock()
	names := &batchNames{d: d, base: len(d.names)}
	for i, w := range writes {
		if !w.Delete {
			vals[i] = marshalStored(make([]byte, 0, 256), w.State, names)
		}
	}
	d.mu.Unlock()
	args := make([]any, 5, 5+len(names.added)+3*n+8)
	args[0], args[1], args[2], args[3], args[4] = f.Epoch, "", n, names.base, len(names.added)
	if box != nil {
		args[1] = box.marshal()
	}
	for _, name := range names.added {
		args = append(args, name)
	}
	for i, w := range writes {
		keys = append(keys, r.StateKey(f.Partition, w.State.Record))
		due, val := "0", vals[i]
		if w.DueMs > 0 && !w.Delete {
			due = strconv.FormatInt(w.DueMs, 10)
		}
		if w.Delete {
			val = ""
		}
		args = append(args, val, due, w.State.Record)
	}
	keys, args = r.parityArgs(f.Partition, writes, keys, args)
	return keys, args, names
}

func generation(f Fence) string { return strconv.FormatInt(f.Generation, 10) }

// fenceReply interprets a script's reply as far as the fence goes: nil for OK and
// for a refusal over the name dictionary (left to the caller), ErrFenced, or an
// unexpected reply.
func fenceReply(f Fence, res []any) error {
	if len(res) == 0 {
		return errors.New("state: the Redis script returned an empty reply")
	}
	code, ok := res[0].(int64)
	switch {
	case !ok:
		return fmt.Errorf("state: the Redis script returned %T %v", res[0], res[0])
	case code == replyOK || code == replyNames && len(res) == 2:
		return nil
	case code == replyFenced && len(res) == 2:
		return fmt.Errorf("%w: partition %d was claimed as %q (generation:epoch) after generation %d's claim (epoch %d)",
			ErrFenced, f.Partition, res[1], f.Generation, f.Epoch)
	}
	return fmt.Errorf("state: the Redis script returned %v", res)
}

// Due implements Store: one ZRANGEBYSCORE.
func (r *Redis) Due(ctx context.Context, partition int32, nowMs int64, limit int) ([]string, error) {
	records, err := r.client.ZRangeByScore(ctx, r.DueKey(partition), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(nowMs, 10), Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("state: reading due records of partition %d: %w", partition, err)
	}
	return records, nil
}

// parityArgs appends the counts deltas and drift index changes of the writes.
func (r *Redis) parityArgs(partition int32, writes []Write, keys []string, args []any) ([]string, []any) {
	deltas := map[string]int64{}
	type change struct {
		system, op, record string
		since              int64
	}
	var changes []change
	for i := range writes {
		d, lacking := writes[i].drift()
		for s, v := range d {
			deltas[s] += v
		}
		for _, s := range writes[i].Systems {
			lack, changed := lacking[s]
			if !changed {
				continue
			}
			op := "r"
			if lack {
				op = "a"
			}
			changes = append(changes, change{s, op, writes[i].State.Record, writes[i].DriftSinceMs})
		}
	}
	fields := make([]string, 0, len(deltas))
	for s, v := range deltas {
		if v != 0 {
			fields = append(fields, s)
		}
	}
	slices.Sort(fields)
	args = append(args, len(fields))
	for _, s := range fields {
		args = append(args, "records:"+s, deltas[s])
	}
	index := map[string]int{}
	args = append(args, len(changes))
	for _, c := range changes {
		i, ok := index[c.system]
		if !ok {
			keys = append(keys, r.DriftKey(partition, c.system))
			i = len(index) + 1
			index[c.system] = i
		}
		args = append(args, i, c.op, c.record, c.since)
	}
	return keys, args
}

// Counts implements Store: one pipelined round trip.
func (r *Redis) Counts(ctx context.Context, partitions []int32, systems []string, sinceMs int64) (Counts, error) {
	pipe := r.client.Pipeline()
	type cmds struct {
		records *redis.MapStringStringCmd
		drift   map[string]*redis.IntCmd
	}
	all := make([]cmds, len(partitions))
	for i, p := range partitions {
		all[i].records = pipe.HGetAll(ctx, r.CountsKey(p))
		all[i].drift = map[string]*redis.IntCmd{}
		for _, s := range systems {
			all[i].drift[s] = pipe.ZCount(ctx, r.DriftKey(p, s), "-inf", strconv.FormatInt(sinceMs, 10))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return Counts{}, fmt.Errorf("state: reading parity counts: %w", err)
	}
	c := Counts{Records: map[string]int64{}, Drift: map[string]int64{}}
	for _, p := range all {
		for _, s := range systems {
			n, _ := strconv.ParseInt(p.records.Val()["records:"+s], 10, 64)
			c.Records[s] += n
			c.Drift[s] += p.drift[s].Val()
		}
	}
	return c, nil
}
