package state

import (
	"context"
	"errors"
	"slices"

	"github.com/concord-sync/concord/resolver"
)

// Sentinel errors of Store.Put.
var (
	// ErrFenced: another owner has claimed the partition since the caller did (or a
	// newer generation holds it, at Claim). The caller has lost the partition and must
	// stop processing it without committing.
	ErrFenced = errors.New("state: partition fenced by a newer owner")
	// ErrVersionConflict: a record's stored version is not the one the caller read;
	// someone else wrote it. The caller must re-read and reprocess. The stores of
	// this package no longer return it: the fence alone makes one writer per
	// partition (see Store.Put). It is kept for callers and other implementations.
	ErrVersionConflict = errors.New("state: record version conflict")
)

// Fence identifies the writer of a partition's states: the consumer-group generation
// that owns the partition, and the epoch its Claim was given. Every Claim takes a new
// epoch and Put accepts only the latest, so a writer that lost the partition (a
// frozen process of an older generation, a worker of the same process that has not
// noticed yet) is refused whatever its generation.
type Fence struct {
	Partition  int32
	Generation int64
	Epoch      int64 // set by Claim; 0 writes only to a partition never claimed
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
	// Claim takes the partition for the fence's generation with a new epoch, so that
	// every earlier writer is refused from now on, and returns the fence to write with
	// and the partition's outbox (whose messages, if any, must be produced before
	// anything else). It fails with ErrFenced when a newer generation holds the
	// partition, unless the stored fence value is supersede: a caller that proved its
	// generation current (the group coordinator accepted it) passes the refusing
	// Claimed.Stored, because a consumer group that was deleted and created again
	// numbers its generations from 1.
	Claim(ctx context.Context, fence Fence, supersede string) (Claimed, error)
	// Get reads the states of the records of one partition in one round trip.
	// result[i] is nil when records[i] has no state; a state returned has a Version
	// of at least 1 (what it is beyond that depends on the store: Redis keeps none
	// and says 1).
	Get(ctx context.Context, partition int32, records []string) ([]*resolver.State, error)
	// Put writes the states of one partition in one round trip, atomically with the
	// batch's outbox (when box is not nil): either everything is applied or nothing
	// is. It is refused with ErrFenced when the partition was claimed since fence was.
	// Records' versions are not compared: every Claim takes a new epoch and Put
	// accepts only the latest, so the partition has one writer, which reads and
	// writes its records batch after batch; nobody else can have written a record
	// between its Get and its Put. The caller must not run two Puts of one fence
	// concurrently. On success each written State.Version is incremented (0 stays
	// "never stored", see Get) and a deleted one set to 0. Put sets box.Epoch to the
	// fence's: an outbox read back names the claim that wrote it.
	Put(ctx context.Context, fence Fence, writes []Write, box *Outbox) error
	// Outbox reads the partition's outbox.
	Outbox(ctx context.Context, partition int32) (Outbox, error)
	// Delivered records that the messages of box (the outbox last Put) were produced:
	// they are dropped, its offsets kept. A later outbox (another Seq) is left alone.
	// It is refused with ErrFenced as Put is.
	Delivered(ctx context.Context, fence Fence, box *Outbox) error
	// Due returns, earliest first, up to limit records of the partition whose DueMs
	// is at or before nowMs: records whose pairing window closes or whose applies
	// time out without a new event. The index survives restarts with the states.
	Due(ctx context.Context, partition int32, nowMs int64, limit int) ([]string, error)
	// Counts sums, over the given partitions, the records each system holds and
	// the records each system has lacked since before sinceMs while another system
	// holds them.
	Counts(ctx context.Context, partitions []int32, systems []string, sinceMs int64) (Counts, error)
}

// drift is what a write changes in the parity figures: it adds to deltas, per
// system, +1/-1 records held, and calls lacking, in the order of w.Systems, for the
// systems whose drift starts or ends with this write, with whether the record now
// drifts for it (another system holds it, it does not). A system whose drift is
// unchanged is left out, so a batch of records held everywhere costs the drift index
// nothing.
func (w *Write) drift(deltas map[string]int64, lacking func(system string, lack bool)) {
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
			lacking(s, lackNow)
		}
	}
}
