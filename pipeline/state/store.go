package state

import (
	"context"
	"errors"

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
type Write struct {
	State  *resolver.State
	Delete bool
	DueMs  int64
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
}
