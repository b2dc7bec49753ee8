package sim

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
)

// queueSize bounds a system's committed-but-unpublished change events. A full queue
// blocks writers (edits and the sink) until Kafka catches up.
const queueSize = 4096

// firstLSN is where a system's log sequence numbers start; every commit moves it on.
const (
	firstLSN = 0x2000000
	lsnStep  = 232
)

// row is one table row: column -> canonical JSON value, key column excluded. Rows are
// replaced, never changed in place, so an old row can serve as a `before` image.
type row map[string]string

// table is one simulated system's database table together with its change capture:
// every write commits under mu and queues its change event in commit order.
type table struct {
	spec    SystemSpec
	schema  string            // source.schema, from the topic name
	name    string            // source.table, from the topic name
	fieldOf map[string]string // column -> canonical field, for the columns Columns renames

	queue       chan kafka.Message // change events in commit order, drained by one publisher
	unpublished atomic.Int64       // queued or in flight, not yet acknowledged
	stats       counters

	mu    sync.Mutex
	rows  map[string]row // record ID -> row
	lsn   int64
	txID  int64
	drift *rand.Rand // for spec.Drift; guarded by mu
}

// counters are a table's statistics (see SystemStats).
type counters struct {
	edits, creates, deletes        atomic.Int64
	published, tombstones          atomic.Int64
	applies, sinkWrites, sinkNoops atomic.Int64
	rejected                       atomic.Int64
}

func newTable(spec SystemSpec) *table {
	t := &table{
		spec:    spec,
		schema:  "public",
		name:    spec.Topic,
		fieldOf: make(map[string]string, len(spec.Columns)),
		queue:   make(chan kafka.Message, queueSize),
		rows:    map[string]row{},
		lsn:     firstLSN,
		txID:    700,
		drift:   rand.New(rand.NewPCG(uint64(len(spec.Name)), uint64(spec.Skew))),
	}
	if parts := strings.Split(spec.Topic, "."); len(parts) >= 3 {
		t.schema, t.name = parts[len(parts)-2], parts[len(parts)-1]
	}
	for f, col := range spec.Columns {
		t.fieldOf[col] = f
	}
	return t
}

// clock is the system's clock at now: skewed, and wandering by up to Drift. Callers
// hold mu.
func (t *table) clock(now time.Time) time.Time {
	c := now.Add(t.spec.Skew)
	if t.spec.Drift > 0 {
		c = c.Add(time.Duration(t.drift.Int64N(int64(t.spec.Drift))))
	}
	return c
}

// upsert commits an INSERT ... ON CONFLICT UPDATE of record id. set is called under the
// table's lock with whether the row exists and returns the columns to write; the
// timestamp column, when there is one, is set too. It returns whether the row was created.
// Like PostgreSQL, it publishes an update even when no value changed.
func (t *table) upsert(ctx context.Context, id string, set func(exists bool) row) (created bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	clock := t.clock(now)
	old, exists := t.rows[id]
	next := make(row, len(old)+4)
	maps.Copy(next, old)
	maps.Copy(next, set(exists))
	if tc := t.spec.TimestampColumn; tc != "" {
		next[tc] = strconv.FormatInt(clock.UnixMilli(), 10)
	}
	ev := change{op: "u", after: next}
	if !exists {
		ev.op = "c"
	} else if t.spec.FullBefore {
		ev.before = old
		ev.hasBefore = true
	}
	if err := t.commit(ctx, id, ev, now, clock); err != nil {
		return false, err
	}
	t.rows[id] = next
	return !exists, nil
}

// remove commits a DELETE of record id and its tombstone. A missing row is a DELETE
// of 0 rows: nothing is published and it returns false.
func (t *table) remove(ctx context.Context, id string) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old, ok := t.rows[id]
	if !ok {
		return false, nil
	}
	now := time.Now()
	ev := change{op: "d", hasBefore: true}
	if t.spec.FullBefore {
		ev.before = old
	} // else the default replica identity: the key alone
	if err := t.commit(ctx, id, ev, now, t.clock(now)); err != nil {
		return false, err
	}
	delete(t.rows, id)
	return true, nil
}

// commit queues the change event of a write (and a tombstone after a delete); the
// caller applies the write to rows once it succeeds. The caller holds mu, so the
// queue is in commit order. It fails when ctx is done while the queue is full.
func (t *table) commit(ctx context.Context, id string, ev change, now, clock time.Time) error {
	t.lsn += lsnStep
	t.txID++
	ev.id, ev.tsMs, ev.clockMs, ev.lsn, ev.txID = id, now.UnixMilli(), clock.UnixMilli(), t.lsn, t.txID
	value, err := t.encodeChange(&ev)
	if err != nil {
		return fmt.Errorf("sim: %s: record %s: %w", t.spec.Name, id, err)
	}
	key := t.encodeKey(id)
	msgs := []kafka.Message{{Key: key, Value: value}}
	if ev.op == "d" {
		msgs = append(msgs, kafka.Message{Key: key}) // tombstone: null value
	}
	for _, m := range msgs {
		t.unpublished.Add(1)
		select {
		case t.queue <- m:
		case <-ctx.Done():
			t.unpublished.Add(-1)
			return ctx.Err()
		}
	}
	return nil
}

// has reports whether record id exists.
func (t *table) has(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.rows[id]
	return ok
}

// canonicalRows returns a copy of the table in canonical field names, without the
// key and timestamp columns.
func (t *table) canonicalRows() map[string]map[string]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]map[string]string, len(t.rows))
	for id, r := range t.rows {
		fields := make(map[string]string, len(r))
		for col, v := range r {
			if col == t.spec.TimestampColumn {
				continue
			}
			if f, ok := t.fieldOf[col]; ok {
				col = f
			}
			fields[col] = v
		}
		out[id] = fields
	}
	return out
}

func (t *table) snapshot() SystemStats {
	c := &t.stats
	return SystemStats{
		Edits: c.edits.Load(), Creates: c.creates.Load(), Deletes: c.deletes.Load(),
		Published: c.published.Load(), Tombstones: c.tombstones.Load(),
		Applies: c.applies.Load(), SinkWrites: c.sinkWrites.Load(), SinkNoops: c.sinkNoops.Load(),
		Rejected: c.rejected.Load(),
	}
}
