package state

import "github.com/concord-sync/concord/resolver"

// Test hooks for format 3, which only the Redis store writes.

// TestNames indexes names in a fixed list, appending those it lacks.
type TestNames struct{ Names []string }

func (n *TestNames) ref(name string) uint64 {
	for i, have := range n.Names {
		if have == name {
			return uint64(i)
		}
	}
	n.Names = append(n.Names, name)
	return uint64(len(n.Names) - 1)
}

// MarshalStored is marshalStored for tests.
func MarshalStored(dst []byte, st *resolver.State, names *TestNames) []byte {
	return marshalStored(dst, st, names)
}

// UnmarshalStored is unmarshalStored for tests.
func UnmarshalStored(b []byte, record string, names []string, st *resolver.State) error {
	return unmarshalStored(b, record, names, st)
}

// BatchNames is the Redis store's index of one Put's names, over a dictionary that
// starts empty.
type BatchNames struct{ b batchNames }

// NewBatchNames returns an index of names as a Put makes it.
func NewBatchNames() *BatchNames {
	return &BatchNames{batchNames{d: &dictionary{index: map[string]uint64{}}}}
}

// Names are the names indexed so far, in the order of their refs.
func (n *BatchNames) Names() []string { return n.b.added }

// MarshalStoredBatch is marshalStored with the Redis store's name index.
func MarshalStoredBatch(dst []byte, st *resolver.State, names *BatchNames) []byte {
	return marshalStored(dst, st, &names.b)
}
