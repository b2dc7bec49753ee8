package state

import (
	"context"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/concord-sync/concord/resolver"
)

// Redis is a Store in Redis (standalone, Sentinel or Cluster through
// redis.UniversalClient).
//
// Key layout: every key of one input partition carries the hash tag
// {<name>:p<partition>}, so a partition lives in one hash slot and one script can
// check its fence and compare-and-set every record of a batch atomically:
//
//	{<name>:p<partition>}:fence       "<generation>:<epoch>", decimal
//	{<name>:p<partition>}:outbox      the last batch's Outbox (see outbox.go)
//	{<name>:p<partition>}:s:<record>  version (8 bytes big-endian) + MarshalState
//
// Get is one MGET; Put, Claim and Delivered are one EVALSHA each (EVAL when the
// server does not have the script cached yet). Generations and epochs are compared as
// Lua numbers: exact within ±2^53, far beyond Kafka's int32 generation ids.
//
// A Redis is safe for concurrent use. name must not start with '}' (config names are
// [A-Za-z0-9._-]+), or the hash tag would be empty and keys would spread over slots.
type Redis struct {
	client redis.UniversalClient
	name   string
}

// NewRedis returns a Store keeping its keys under name (the config's name) in client.
func NewRedis(client redis.UniversalClient, name string) *Redis {
	return &Redis{client: client, name: name}
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
	replyOK       = 0
	replyFenced   = 1 // {1, stored fence} ({1, stored fence, outbox} from Claim)
	replyConflict = 2 // {2, 1-based index of the write, stored version (8 bytes)}
)

// versionLen is the size of the version prefix of a stored state.
const versionLen = 8

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
	vals, err := r.client.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("state: reading %d states of partition %d from Redis: %w", len(records), partition, err)
	}
	if len(vals) != len(keys) {
		return nil, fmt.Errorf("state: MGET of %d keys returned %d values", len(keys), len(vals))
	}
	for i, v := range vals {
		if v == nil {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("state: MGET returned a %T for %s", v, keys[i])
		}
		st, err := decodeStored(s)
		if err != nil {
			return nil, fmt.Errorf("state: %s: %w", keys[i], err)
		}
		st.Record = records[i]
		out[i] = st
	}
	return out, nil
}

func decodeStored(s string) (*resolver.State, error) {
	if len(s) < versionLen {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the version", ErrCorrupt, len(s))
	}
	st := new(resolver.State)
	if err := UnmarshalState([]byte(s[versionLen:]), st); err != nil {
		return nil, err
	}
	st.Version = binary.BigEndian.Uint64([]byte(s[:versionLen]))
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
	n := len(writes)
	keys := make([]string, 4, 4+n+4)
	keys[0], keys[1], keys[2], keys[3] = r.FenceKey(f.Partition), r.DueKey(f.Partition), r.CountsKey(f.Partition), r.OutboxKey(f.Partition)
	args := make([]any, 3, 3+4*n+8)
	args[0], args[1], args[2] = f.Epoch, "", n
	if box != nil {
		box.Epoch = f.Epoch
		args[1] = box.marshal()
	}
	for _, w := range writes {
		keys = append(keys, r.StateKey(f.Partition, w.State.Record))
		due, val := "0", any("")
		if w.DueMs > 0 && !w.Delete {
			due = strconv.FormatInt(w.DueMs, 10)
		}
		if !w.Delete {
			val = MarshalState(versionBytes(w.State.Version+1), w.State)
		}
		args = append(args, versionBytes(w.State.Version), val, due, w.State.Record)
	}
	keys, args = r.parityArgs(f.Partition, writes, keys, args)
	res, err := putScript.Run(ctx, r.client, keys, args...).Slice()
	if err != nil {
		return fmt.Errorf("state: writing %d states of partition %d to Redis: %w", len(writes), f.Partition, err)
	}
	if err := fenceReply(f, res); err != nil {
		return err
	}
	if code, _ := res[0].(int64); code == replyConflict {
		return conflictReply(writes, res)
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

func generation(f Fence) string { return strconv.FormatInt(f.Generation, 10) }

func versionBytes(v uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 256), v)
}

// fenceReply interprets a script's reply as far as the fence goes: nil for OK and
// for a version conflict (left to the caller), ErrFenced, or an unexpected reply.
func fenceReply(f Fence, res []any) error {
	if len(res) == 0 {
		return errors.New("state: the Redis script returned an empty reply")
	}
	code, ok := res[0].(int64)
	switch {
	case !ok:
		return fmt.Errorf("state: the Redis script returned %T %v", res[0], res[0])
	case code == replyOK || code == replyConflict:
		return nil
	case code == replyFenced && len(res) == 2:
		return fmt.Errorf("%w: partition %d was claimed as %q (generation:epoch) after generation %d's claim (epoch %d)",
			ErrFenced, f.Partition, res[1], f.Generation, f.Epoch)
	}
	return fmt.Errorf("state: the Redis script returned %v", res)
}

func conflictReply(writes []Write, res []any) error {
	if len(res) != 3 {
		return fmt.Errorf("state: the Redis script returned %q", res)
	}
	idx, _ := res[1].(int64)
	stored, _ := res[2].(string)
	if idx < 1 || int(idx) > len(writes) || len(stored) != versionLen {
		return fmt.Errorf("state: the Redis script returned %q", res)
	}
	w := writes[idx-1]
	return fmt.Errorf("%w: record %q is at version %d, not %d", ErrVersionConflict,
		w.State.Record, binary.BigEndian.Uint64([]byte(stored)), w.State.Version)
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
