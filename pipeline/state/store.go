package state

import (
	"context"
	"errors"
	"slices"

	"github.com/concord-sync/concord/resolver"
)

// Sentinel errors of Store.Put.
var (
	// ErrFenced: a newer consumer-group generation owns the partition. The caller has
	// lost the partition and must stop processing it without committing.
	ErrFenced = errors.New("state: partition fenced by a newer generation")
	// ErrVersionConflict: a record's stored version is not the one the caller read;
	// someone else wrote it. The caller must re-read and reprocess.
	ErrVersionConflict = errors.New("state: record version conflict")
)

// Fence identifies the writer of a partition's states: the consumer-group generation
// that owns the partition.
type Fence struct {
	Partition  int32
	Generation int64
}

// Write is one record's new state. Delete removes the record's state instead (a
// tombstone past its retention). DueMs is when the record next has time-driven work
// (resolver.State.NextDeadlineMs; 0 for none): the store indexes it for Due.
//
// Held and HeldBefore are the systems that hold the record after this write and that
// held it in the stored state (nil for a new record): the store counts records per
// system and indexes records some system lacks while another holds them (parity
// drift), from DriftSinceMs on.
type Write struct {
	State        *resolver.State
	Delete       bool
	DueMs        int64
	Systems      []string // every configured system (for the drift index)
	Held         []string
	HeldBefore   []string
	DriftSinceMs int64 // the write's time: when a drift the write starts began
}

// Counts are the parity figures of some partitions, summed.
type Counts struct {
	Records map[string]int64 // system -> records it holds
	Drift   map[string]int64 // system -> records it has lacked, while another holds them, since at least the grace time
}

// Store keeps resolver.State per record, grouped by input partition.
//
// Implementations are safe for concurrent use. States returned by Get belong to the
// caller; Put does not retain the states it is given.
type Store interface {
	// Claim raises the partition's fence to the given generation, so that writers of
	// older generations are refused from now on. It fails with ErrFenced when a newer
	// generation already holds the partition.
	Claim(ctx context.Context, fence Fence) error
	// Get reads the states of the records of one partition in one round trip.
	// result[i] is nil when records[i] has no state.
	Get(ctx context.Context, partition int32, records []string) ([]*resolver.State, error)
	// Put writes the states of one partition in one round trip, atomically: either
	// every write is applied or none is. It is refused with ErrFenced when a newer
	// generation has claimed the partition, and with ErrVersionConflict when a
	// record's stored version differs from its State.Version (0 = no state). On
	// success each written State.Version is incremented to the stored version.
	Put(ctx context.Context, fence Fence, writes []Write) error
	// Due returns, earliest first, up to limit records of the partition whose DueMs
	// is at or before nowMs: records whose pairing window closes or whose applies
	// time out without a new event. The index survives restarts with the states.
	Due(ctx context.Context, partition int32, nowMs int64, limit int) ([]string, error)
	// Counts sums, over the given partitions, the records each system holds and
	// the records each system has lacked since before sinceMs while another system
	// holds them.
	Counts(ctx context.Context, partitions []int32, systems []string, sinceMs int64) (Counts, error)
}

// drift is what a write changes in the parity figures: per system, +1/-1 records
// held, and, for the systems whose drift starts or ends with this write, whether the
// record now drifts for it (another system holds it, it does not). A system whose
// drift is unchanged is left out, so a batch of records held everywhere costs the
// drift index nothing.
func (w *Write) drift() (deltas map[string]int64, lacking map[string]bool) {
	deltas, lacking = map[string]int64{}, map[string]bool{}
	held := w.Held
	if w.Delete {
		held = nil
	}
	for _, s := range w.Systems {
		now, before := slices.Contains(held, s), slices.Contains(w.HeldBefore, s)
		switch {
		case now && !before:
			deltas[s]++
		case before && !now:
			deltas[s]--
		}
		lackNow, lackBefore := !now && len(held) > 0, !before && len(w.HeldBefore) > 0
		if lackNow != lackBefore {
			lacking[s] = lackNow
		}
	}
	return deltas, lacking
}
