package state

import (
	"context"
	"fmt"
	"sync"

	"github.com/concord-sync/concord/resolver"
)

// The Redis store's states (format 7) name fields and systems by their index in a
// per-partition dictionary, the LIST {<name>:p<partition>}:names, instead of carrying
// a table of their own (45 bytes of the benchmark's 14 names in every state). The
// list is append-only, so an index never changes meaning: a state stays readable
// whatever was appended since, and a cached copy that is a prefix of the list is
// right as far as it goes. Names are appended by put.lua, atomically with the states
// that use them and only if the list still has the length the writer encoded against
// (else the writer reloads and encodes again). The list is in the partition's hash
// slot, so this works on Redis Cluster as the rest of the partition does.

// NamesKey returns the key of the partition's name dictionary.
func (r *Redis) NamesKey(partition int32) string { return r.partitionTag(partition) + ":names" }

// dictionary is the cached copy of a partition's names.
type dictionary struct {
	mu     sync.Mutex
	loaded bool
	names  []string // append-only: a slice of it taken under mu stays valid
	index  map[string]uint64
}

// dict returns the partition's cached dictionary, empty and not loaded the first time.
func (r *Redis) dict(partition int32) *dictionary {
	r.dictsMu.Lock()
	defer r.dictsMu.Unlock()
	d, ok := r.dicts[partition]
	if !ok {
		d = &dictionary{index: map[string]uint64{}}
		r.dicts[partition] = d
	}
	return d
}

// snapshot returns the names known so far and whether they were ever loaded.
func (d *dictionary) snapshot() ([]string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.names[:len(d.names):len(d.names)], d.loaded
}

// set replaces the cached names by the list as read from Redis.
func (d *dictionary) set(names []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.loaded = true
	d.names = names
	clear(d.index)
	for i, n := range names {
		if _, dup := d.index[n]; !dup { // a name appended twice keeps its first index
			d.index[n] = uint64(i)
		}
	}
}

// load reads the partition's names from Redis into its cached dictionary.
func (r *Redis) load(ctx context.Context, partition int32, d *dictionary) error {
	names, err := r.client.LRange(ctx, r.NamesKey(partition), 0, -1).Result()
	if err != nil {
		return fmt.Errorf("state: reading the name dictionary of partition %d: %w", partition, err)
	}
	d.set(names)
	return nil
}

// batchNames indexes the names of one Put's states: the dictionary's (whose lock the
// encoding holds), then those new to it, which the Put appends.
type batchNames struct {
	d        *dictionary
	base     int // the dictionary's length the batch was encoded against
	added    []string
	addedIdx map[string]uint64
	// The last state's agreed names and their refs: the states of a batch mostly
	// agree on the same fields in the same order.
	lastAgreed []string
	lastRefs   []uint64
}

// agreedRefs appends the refs of the agreed fields' names to dst.
func (b *batchNames) agreedRefs(dst []uint64, fields []resolver.AgreedField) []uint64 {
	if len(fields) == len(b.lastAgreed) {
		same := true
		for i := range fields {
			if fields[i].Name != b.lastAgreed[i] {
				same = false
				break
			}
		}
		if same {
			return append(dst, b.lastRefs...)
		}
	}
	b.lastAgreed, b.lastRefs = b.lastAgreed[:0], b.lastRefs[:0]
	for i := range fields {
		ref := b.ref(fields[i].Name)
		b.lastAgreed, b.lastRefs = append(b.lastAgreed, fields[i].Name), append(b.lastRefs, ref)
	}
	return append(dst, b.lastRefs...)
}

func (b *batchNames) ref(name string) uint64 {
	if i, ok := b.d.index[name]; ok {
		return i
	}
	if i, ok := b.addedIdx[name]; ok {
		return i
	}
	if b.addedIdx == nil {
		b.addedIdx = map[string]uint64{}
	}
	i := uint64(b.base + len(b.added))
	b.added = append(b.added, name)
	b.addedIdx[name] = i
	return i
}

// appended records that the batch's new names were appended to the list: the cache
// follows unless it has changed meanwhile (then the next unknown index or refused
// Put reloads it).
func (d *dictionary) appended(b *batchNames) {
	if len(b.added) == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.names) != b.base {
		return
	}
	for _, n := range b.added {
		d.index[n] = uint64(len(d.names))
		d.names = append(d.names, n)
	}
}
