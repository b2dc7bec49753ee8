package state

import (
	"context"
	"crypto/sha1" //nolint:gosec // a bucket hash Lua can compute too (redis.sha1hex), not a security boundary
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
//	{<name>:p<partition>}:buckets     the bucket layout: level, split, records
//	{<name>:p<partition>}:b:<i>       bucket i: a hash of record -> its state in
//	                                  format 7 (encoding.go; 5 still read)
//	{<name>:p<partition>}:s:<record>  a state as versions before buckets kept it
//	                                  (format 3, or version (8 bytes big-endian) +
//	                                  format 1): read when the record's bucket has
//	                                  no field for it, deleted by the record's next Put
//
// States live in buckets, not in a key each, because Redis spends 60 to 90 bytes on
// a key of its own (the key's own string, its object, the keyspace's entry) and
// little on a field of a small hash, which it keeps as one listpack while the hash
// has at most hash-max-listpack-entries fields of at most hash-max-listpack-value
// bytes each (README, Redis memory). The buckets grow by linear hashing (buckets.lua):
// a record is in a bucket chosen by the first 32 bits of the SHA-1 of its id (computed
// here, and by the script when it splits a bucket), and put.lua splits one bucket
// into two whenever the partition holds more than bucketLoad records per bucket, so a
// bucket holds about bucketLoad to 2×bucketLoad records whatever the partition's size.
//
// Get is one EVALSHA of get.lua (with an LRANGE of the names the first time, or when a
// state uses a name appended by another process since); Put, Claim and Delivered are
// one EVALSHA each (EVAL when the server does not have the script cached yet). The
// scripts name the bucket and old state keys they build in their partition's hash
// tag, which is the slot of the keys they are given, so they run on Redis Cluster.
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

	// partition -> records read from a state key of before buckets and not written
	// since: at most the records still stored that way.
	oldMu sync.Mutex
	old   map[int32]map[string]bool
}

// NewRedis returns a Store keeping its keys under name (the config's name) in client.
func NewRedis(client redis.UniversalClient, name string) *Redis {
	return &Redis{client: client, name: name, dicts: map[int32]*dictionary{}, old: map[int32]map[string]bool{}}
}

var (
	//go:embed fence.lua
	fenceSource string

	//go:embed buckets.lua
	bucketsSource string

	//go:embed put.lua
	putSource string
	putScript = redis.NewScript(fenceSource + bucketsSource + putSource)

	//go:embed get.lua
	getSource string
	getScript = redis.NewScript(bucketsSource + getSource)

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

// bucketLoad is the mean records per bucket beyond which put.lua splits one: a bucket
// then holds 16 to 64 records on average (15 to 72 in a sample of 495 buckets of a
// load of 1,000,000), within Redis's default hash-max-listpack-entries (128).
const bucketLoad = 32

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

// LayoutKey returns the key of a partition's bucket layout.
func (r *Redis) LayoutKey(partition int32) string {
	return r.partitionTag(partition) + ":buckets"
}

// OldStateKey returns the key a record's state had before states were kept in
// buckets: still read, never written.
func (r *Redis) OldStateKey(partition int32, record string) string {
	return r.partitionTag(partition) + ":s:" + record
}

// BucketKey returns the key of a partition's bucket i.
func (r *Redis) BucketKey(partition int32, i uint32) string {
	return r.partitionTag(partition) + ":b:" + strconv.FormatUint(uint64(i), 10)
}

// BucketOf returns the key of the bucket that holds a record's state, or would: one
// HMGET of the partition's layout, read as buckets.lua reads it.
func (r *Redis) BucketOf(ctx context.Context, partition int32, record string) (string, error) {
	v, err := r.client.HMGet(ctx, r.LayoutKey(partition), "level", "split").Result()
	if err != nil {
		return "", fmt.Errorf("state: reading the bucket layout of partition %d: %w", partition, err)
	}
	var level, split uint64
	for i, p := range []*uint64{&level, &split} {
		if s, ok := v[i].(string); ok {
			if *p, err = strconv.ParseUint(s, 10, 32); err != nil {
				return "", fmt.Errorf("state: %s: %w", r.LayoutKey(partition), err)
			}
		}
	}
	h := uint64(RecordHash(record))
	b := h % (1 << level)
	if b < split {
		b = h % (2 << level)
	}
	return r.BucketKey(partition, uint32(b)), nil
}

// RecordHash is what a record's bucket is chosen by: the first 32 bits of the SHA-1
// of its id, as buckets.lua reads redis.sha1hex.
func RecordHash(record string) uint32 {
	sum := sha1.Sum([]byte(record))
	return binary.BigEndian.Uint32(sum[:4])
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

// Get implements Store: one script call (get.lua).
func (r *Redis) Get(ctx context.Context, partition int32, records []string) ([]*resolver.State, error) {
	out := make([]*resolver.State, len(records))
	if len(records) == 0 {
		return out, nil
	}
	d := r.dict(partition)
	if _, loaded := d.snapshot(); !loaded {
		if err := r.load(ctx, partition, d); err != nil {
			return nil, err
		}
	}
	names, _ := d.snapshot()
	args := make([]any, 1, 1+2*len(records))
	args[0] = r.partitionTag(partition)
	for _, rec := range records {
		args = append(args, RecordHash(rec), rec)
	}
	vals, err := getScript.Run(ctx, r.client, []string{r.LayoutKey(partition)}, args...).Slice()
	if err != nil {
		return nil, fmt.Errorf("state: reading %d states of partition %d from Redis: %w", len(records), partition, err)
	}
	if len(vals) != 2*len(records) {
		return nil, fmt.Errorf("state: the get script returned %d values for %d records", len(vals), len(records))
	}
	reloaded := false
	for i, rec := range records {
		v := vals[2*i]
		if v == nil {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("state: the get script returned a %T for %s", v, rec)
		}
		st, err := decodeStored(s, rec, names)
		if err != nil && !reloaded && errors.Is(err, errUnknownName) {
			// A name appended since the dictionary was cached (by an earlier owner of
			// the partition): read it again, once per Get.
			if err := r.load(ctx, partition, d); err != nil {
				return nil, err
			}
			names, _ = d.snapshot()
			reloaded = true
			st, err = decodeStored(s, rec, names)
		}
		if err != nil {
			return nil, fmt.Errorf("state: record %q of partition %d: %w", rec, partition, err)
		}
		if old, _ := vals[2*i+1].(int64); old == 1 {
			r.markOld(partition, rec)
		}
		out[i] = st
	}
	return out, nil
}

// oldKeys says which writes' records were read from a key of before buckets, or nil
// when none of the partition's were.
func (r *Redis) oldKeys(partition int32, writes []Write) []bool {
	r.oldMu.Lock()
	defer r.oldMu.Unlock()
	m := r.old[partition]
	if len(m) == 0 {
		return nil
	}
	old := make([]bool, len(writes))
	for i, w := range writes {
		old[i] = m[w.State.Record]
	}
	return old
}

// markOld notes that a record's state was read from its key of before buckets, which
// its next Put deletes.
func (r *Redis) markOld(partition int32, record string) {
	r.oldMu.Lock()
	defer r.oldMu.Unlock()
	m := r.old[partition]
	if m == nil {
		m = map[string]bool{}
		r.old[partition] = m
	}
	m[record] = true
}

// decodeStored decodes a stored value: format 7, 5 or 3, or the version prefix and format 1
// that states were stored as before (a version below 2^56 starts with a zero byte,
// which no format byte is).
func decodeStored(s, record string, names []string) (*resolver.State, error) {
	st := new(resolver.State)
	if names == nil {
		names = []string{} // a dictionary that is empty so far: unknown names, not "no dictionary"
	}
	if len(s) > 0 && (s[0] == formatV3 || s[0] == formatV5 || s[0] == formatV7) {
		if err := unmarshalStored([]byte(s), record, names, st); err != nil {
			return nil, err
		}
		st.Version = 1
		return st, nil
	}
	if len(s) < versionLen || s[0] != 0 {
		return nil, fmt.Errorf("%w: %d bytes, neither format 7, 5 or 3 nor a version and format 1", ErrCorrupt, len(s))
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
	_, err := r.PutAfter(ctx, f, writes, box, nil)
	return err
}

// Client is the Redis client the store writes with.
func (r *Redis) Client() redis.UniversalClient { return r.client }

// PutAfter is Put with before's commands (another store's on the same client, such
// as a batch's DLQ note) sent ahead of the script in the same round trip, saving one
// round trip per batch. On a single-node client the pipeline goes over one
// connection, which Redis runs in order: if the script ran, so did every command
// before it. A Cluster or Ring client would send them to their nodes concurrently, so
// there before's commands run first, in a round trip of their own, and the states
// are written only when they succeeded.
//
// err is Put's: when it is not nil, the states may or may not be written, as with
// Put, and beforeErr says nothing more. When err is nil, beforeErr is the first
// failure among before's commands, which the caller must then do again on its own.
// When before cannot queue its commands, nothing is sent and both are its error.
func (r *Redis) PutAfter(ctx context.Context, f Fence, writes []Write, box *Outbox, before func(redis.Pipeliner) error) (beforeErr, err error) {
	d := r.dict(f.Partition)
	if _, loaded := d.snapshot(); !loaded && len(writes) > 0 {
		if err := r.load(ctx, f.Partition, d); err != nil {
			return nil, err
		}
	}
	if box != nil {
		box.Epoch = f.Epoch
	}
	var pipe redis.Pipeliner // before's commands, to go ahead of the script
	if before != nil {
		pipe = r.client.Pipeline()
		if err := before(pipe); err != nil {
			return err, err
		}
		if _, single := r.client.(*redis.Client); !single {
			if _, err := pipe.Exec(ctx); err != nil {
				err = fmt.Errorf("state: the commands before the states of partition %d: %w", f.Partition, err)
				return err, err
			}
			pipe = nil
		}
	}
	old := r.oldKeys(f.Partition, writes)
	for attempt := 1; ; attempt++ {
		keys, args, added := r.putArgs(f, writes, box, d, old)
		var res []any
		if pipe != nil {
			res, beforeErr, err = putPipelined(ctx, r.client, pipe, keys, args)
			pipe = nil // a retry over the dictionary writes the states alone
		} else {
			res, err = putScript.Run(ctx, r.client, keys, args...).Slice()
		}
		if err != nil {
			return nil, fmt.Errorf("state: writing %d states of partition %d to Redis: %w", len(writes), f.Partition, err)
		}
		if err := fenceReply(f, res); err != nil {
			return nil, err
		}
		if code, _ := res[0].(int64); code == replyNames {
			if attempt == putAttempts {
				return beforeErr, fmt.Errorf("state: the name dictionary of partition %d kept changing during %d writes", f.Partition, attempt)
			}
			if err := r.load(ctx, f.Partition, d); err != nil {
				return beforeErr, err
			}
			continue
		}
		d.appended(added)
		break
	}
	if old != nil {
		r.oldMu.Lock()
		for _, w := range writes {
			delete(r.old[f.Partition], w.State.Record)
		}
		r.oldMu.Unlock()
	}
	for _, w := range writes {
		if w.Delete {
			w.State.Version = 0
		} else {
			w.State.Version++
		}
	}
	return beforeErr, nil
}

// putPipelined sends pipe's commands and then the put script (EVALSHA) in one
// round trip. A server that does not have the script yet (NOSCRIPT) gets it by EVAL
// in a round trip of its own; pipe's commands have run by then.
func putPipelined(ctx context.Context, client redis.UniversalClient, pipe redis.Pipeliner, keys []string, args []any) (res []any, beforeErr, err error) {
	put := putScript.EvalSha(ctx, pipe, keys, args...)
	cmds, _ := pipe.Exec(ctx) // each command's error is looked at below
	for _, c := range cmds[:len(cmds)-1] {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			beforeErr = err
			break
		}
	}
	res, err = put.Slice()
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		res, err = putScript.Run(ctx, client, keys, args...).Slice()
	}
	if err != nil {
		beforeErr = nil // the caller does everything again
	}
	return res, beforeErr, err
}

// putArgs encodes a batch against the partition's dictionary as cached. old says
// which writes' records were read from a key of before buckets (nil: none).
func (r *Redis) putArgs(f Fence, writes []Write, box *Outbox, d *dictionary, old []bool) ([]string, []any, *batchNames) {
	n := len(writes)
	keys := make([]string, 6, 6+4)
	keys[0], keys[1], keys[2], keys[3], keys[4], keys[5] = r.FenceKey(f.Partition), r.DueKey(f.Partition), r.CountsKey(f.Partition),
		r.OutboxKey(f.Partition), r.NamesKey(f.Partition), r.LayoutKey(f.Partition)
	// Every write's arguments are bytes of one buffer, passed as pointers into one
	// slice of cells: boxing a []byte, a string or a number in an interface
	// allocates, a pointer does not. Those were five allocations per record.
	buf := make([]byte, 0, n*(256+32))
	marks := make([]int, 1, 4*n+1) // cell k is buf[marks[k]:marks[k+1]]
	d.mu.Lock()
	names := &batchNames{d: d, base: len(d.names)}
	for _, w := range writes { // cells 0 to n-1: the encoded states
		if !w.Delete {
			buf = marshalStored(buf, w.State, names)
		}
		marks = append(marks, len(buf))
	}
	d.mu.Unlock()
	for _, w := range writes { // then three per write: due, record, record hash
		if w.DueMs > 0 && !w.Delete {
			buf = strconv.AppendInt(buf, w.DueMs, 10)
		} else {
			buf = append(buf, '0')
		}
		marks = append(marks, len(buf))
		buf = append(buf, w.State.Record...)
		marks = append(marks, len(buf))
		buf = strconv.AppendUint(buf, uint64(RecordHash(w.State.Record)), 10)
		marks = append(marks, len(buf))
	}
	cells := make([]argBytes, 4*n)
	for k := range cells {
		cells[k].b = buf[marks[k]:marks[k+1]:marks[k+1]]
	}
	args := make([]any, 7, 7+len(names.added)+5*n+8)
	args[0], args[1], args[2], args[3], args[4], args[5], args[6] = f.Epoch, "", n, names.base, len(names.added),
		r.partitionTag(f.Partition), bucketLoad
	if box != nil {
		args[1] = box.marshal()
	}
	for _, name := range names.added {
		args = append(args, name)
	}
	for i, w := range writes {
		oldKey := argZero
		if w.Delete || old != nil && old[i] { // a delete cannot know: an old key must not outlive it
			oldKey = argOne
		}
		args = append(args, &cells[i], &cells[n+3*i], &cells[n+3*i+1], &cells[n+3*i+2], oldKey)
	}
	keys, args = r.parityArgs(f.Partition, writes, keys, args)
	return keys, args, names
}

// argBytes is a script argument go-redis writes as its bytes (encoding.BinaryMarshaler).
type argBytes struct{ b []byte }

func (a *argBytes) MarshalBinary() ([]byte, error) { return a.b, nil }

// argZero and argOne are the old-key flags, boxed once.
var argZero, argOne any = "0", "1"

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
		w := &writes[i]
		w.drift(deltas, func(s string, lack bool) {
			op := "r"
			if lack {
				op = "a"
			}
			changes = append(changes, change{s, op, w.State.Record, w.DriftSinceMs})
		})
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

// minListpackValue is the hash-max-listpack-value that keeps the buckets listpacks:
// states are about 150 to 400 bytes (README, Redis memory).
const minListpackValue = 1024

// ListpackAdvice reads the server's hash-max-listpack-value and returns, when it is
// below what keeps the buckets as listpacks, what that costs and how to change it;
// "" when it holds. An error means the setting could not be read (managed services
// may refuse CONFIG); the states work either way.
func (r *Redis) ListpackAdvice(ctx context.Context) (string, error) {
	v, err := r.client.ConfigGet(ctx, "hash-max-listpack-value").Result()
	if err != nil {
		return "", fmt.Errorf("state: reading Redis's hash-max-listpack-value: %w", err)
	}
	n, err := strconv.Atoi(v["hash-max-listpack-value"])
	if err != nil {
		return "", fmt.Errorf("state: Redis's hash-max-listpack-value is %q: %w", v["hash-max-listpack-value"], err)
	}
	if n >= minListpackValue {
		return "", nil
	}
	return fmt.Sprintf("Redis's hash-max-listpack-value is %d: the state buckets will be hash tables, about 57 bytes per record more than as listpacks; set it to %d or more (CONFIG SET hash-max-listpack-value %d, and in redis.conf)",
		n, minListpackValue, minListpackValue), nil
}
