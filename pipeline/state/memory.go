package state

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/concord-sync/concord/resolver"
)

// Memory is an in-process Store: for replay, tests and the demo fallback. It keeps
// deep copies, so callers can never alias stored state.
type Memory struct {
	mu     sync.Mutex
	fences map[int32]Fence
	boxes  map[int32][]byte // encoded, so callers never alias stored messages
	states map[memKey]*resolver.State
	due    map[memKey]int64
	counts map[int32]map[string]int64   // partition -> system -> records held
	drift  map[memKey]map[string]int64  // record -> system -> lacking since (ms)
	types  map[string]map[string]string // learned column types (see SaveColumnTypes)
}

type memKey struct {
	partition int32
	record    string
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{
		fences: make(map[int32]Fence), boxes: make(map[int32][]byte), states: make(map[memKey]*resolver.State), due: make(map[memKey]int64),
		counts: make(map[int32]map[string]int64), drift: make(map[memKey]map[string]int64),
	}
}

// Claim implements Store.
func (m *Memory) Claim(_ context.Context, f Fence, supersede string) (Claimed, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	box, err := unmarshalOutbox(string(m.boxes[f.Partition]))
	if err != nil {
		return Claimed{}, err
	}
	cur, claimed := m.fences[f.Partition]
	stored := ""
	if claimed {
		stored = fmt.Sprintf("%d:%d", cur.Generation, cur.Epoch)
	}
	if claimed && cur.Generation > f.Generation && stored != supersede {
		return Claimed{Fence: f, Outbox: box, Stored: stored},
			fmt.Errorf("%w: partition %d is held by %q (generation:epoch), newer than generation %d", ErrFenced, f.Partition, stored, f.Generation)
	}
	f.Epoch = cur.Epoch + 1
	m.fences[f.Partition] = f
	return Claimed{Fence: f, Outbox: box}, nil
}

// fenced checks that f holds the partition's latest claim.
func (m *Memory) fenced(f Fence) error {
	if cur := m.fences[f.Partition]; cur.Epoch != f.Epoch {
		return fmt.Errorf("%w: partition %d was claimed as %d:%d after generation %d's claim (epoch %d)",
			ErrFenced, f.Partition, cur.Generation, cur.Epoch, f.Generation, f.Epoch)
	}
	return nil
}

// Outbox implements Store.
func (m *Memory) Outbox(_ context.Context, partition int32) (Outbox, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return unmarshalOutbox(string(m.boxes[partition]))
}

// Delivered implements Store.
func (m *Memory) Delivered(_ context.Context, f Fence, box *Outbox) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fenced(f); err != nil {
		return err
	}
	if stored, err := unmarshalOutbox(string(m.boxes[f.Partition])); err == nil && stored.Seq == box.Seq {
		kept := Outbox{Seq: box.Seq, Epoch: box.Epoch, Offsets: box.Offsets}
		m.boxes[f.Partition] = kept.marshal()
	}
	return nil
}

// Get implements Store.
func (m *Memory) Get(_ context.Context, partition int32, records []string) ([]*resolver.State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*resolver.State, len(records))
	for i, r := range records {
		if st, ok := m.states[memKey{partition, r}]; ok {
			out[i] = st.Clone()
		}
	}
	return out, nil
}

// Put implements Store.
func (m *Memory) Put(_ context.Context, f Fence, writes []Write, box *Outbox) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fenced(f); err != nil {
		return err
	}
	if box != nil {
		box.Epoch = f.Epoch
		m.boxes[f.Partition] = box.marshal()
	}
	for _, w := range writes {
		k := memKey{f.Partition, w.State.Record}
		m.count(f.Partition, k, &w)
		if w.DueMs > 0 && !w.Delete {
			m.due[k] = w.DueMs
		} else {
			delete(m.due, k)
		}
		if w.Delete {
			delete(m.states, k)
			w.State.Version = 0
			continue
		}
		w.State.Version++
		m.states[k] = w.State.Clone()
	}
	return nil
}

// Due implements Store.
func (m *Memory) Due(_ context.Context, partition int32, nowMs int64, limit int) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	type due struct {
		record string
		at     int64
	}
	var all []due
	for k, at := range m.due {
		if k.partition == partition && at <= nowMs {
			all = append(all, due{k.record, at})
		}
	}
	slices.SortFunc(all, func(a, b due) int { return cmp.Or(cmp.Compare(a.at, b.at), strings.Compare(a.record, b.record)) })
	out := make([]string, 0, min(limit, len(all)))
	for _, d := range all[:min(limit, len(all))] {
		out = append(out, d.record)
	}
	return out, nil
}

// count applies a write's parity changes.
func (m *Memory) count(partition int32, k memKey, w *Write) {
	if m.counts[partition] == nil {
		m.counts[partition] = map[string]int64{}
	}
	w.drift(m.counts[partition], func(s string, lack bool) {
		switch {
		case lack && m.drift[k] == nil:
			m.drift[k] = map[string]int64{s: w.DriftSinceMs}
		case lack:
			if _, ok := m.drift[k][s]; !ok {
				m.drift[k][s] = w.DriftSinceMs
			}
		case m.drift[k] != nil:
			delete(m.drift[k], s)
		}
	})
}

// Counts implements Store.
func (m *Memory) Counts(_ context.Context, partitions []int32, systems []string, sinceMs int64) (Counts, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := Counts{Records: map[string]int64{}, Drift: map[string]int64{}}
	for _, p := range partitions {
		for _, s := range systems {
			c.Records[s] += m.counts[p][s]
		}
	}
	for k, bySystem := range m.drift {
		if !slices.Contains(partitions, k.partition) {
			continue
		}
		for _, s := range systems {
			if at, ok := bySystem[s]; ok && at <= sinceMs {
				c.Drift[s]++
			}
		}
	}
	return c, nil
}
