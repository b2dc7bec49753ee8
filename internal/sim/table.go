package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/concord-sync/concord/internal/world"
)

// queueSize bounds a system's committed-but-unpublished change events. A full queue
// blocks writers (edits and the sink) until Kafka catches up.
const queueSize = 4096

// row is one table row: column -> canonical JSON value, key column excluded.
type row = world.Row

// table is one simulated system: its PostgreSQL table and change capture, modelled by
// world.Table (shared with the resolver's model-based test), with every commit's
// change event queued for Kafka in commit order under mu.
type table struct {
	spec    SystemSpec
	fieldOf map[string]string // column -> canonical field, for the columns Columns renames

	queue       chan kafka.Message // change events in commit order, drained by one publisher
	restart     chan struct{}      // RestartSink's requests to the sink task
	unpublished atomic.Int64       // queued or in flight, not yet acknowledged
	stats       counters
	log         *editLog // user edits, when Config.EditLog; nil otherwise

	mu    sync.Mutex
	db    *world.Table
	drift *rand.Rand // for spec.Drift; guarded by mu
}

// counters are a table's statistics (see SystemStats).
type counters struct {
	edits, creates, deletes        atomic.Int64
	published, tombstones          atomic.Int64
	applies, sinkWrites, sinkNoops atomic.Int64
	rejected, rewrites, restarts   atomic.Int64
}

func newTable(spec SystemSpec) *table {
	ws := world.Spec{
		Name: spec.Name, Schema: "public", Table: spec.Topic, KeyColumn: spec.KeyColumn,
		TimestampColumn: spec.TimestampColumn, FullBefore: spec.FullBefore,
		Types: spec.Types, Toasted: spec.Toasted, Schemas: true,
	}
	if parts := strings.Split(spec.Topic, "."); len(parts) >= 3 {
		ws.Schema, ws.Table = parts[len(parts)-2], parts[len(parts)-1]
	}
	for _, f := range spec.editable() {
		ws.Columns = append(ws.Columns, spec.column(f))
	}
	if spec.TimestampColumn != "" {
		ws.Columns = append(ws.Columns, spec.TimestampColumn)
	}
	t := &table{
		spec:    spec,
		fieldOf: make(map[string]string, len(spec.Columns)),
		queue:   make(chan kafka.Message, queueSize),
		restart: make(chan struct{}, 1),
		db:      world.NewTable(ws, true),
		drift:   rand.New(rand.NewPCG(uint64(len(spec.Name)), uint64(spec.Skew))),
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

// upsert commits an INSERT ... ON CONFLICT UPDATE of record id by a user. set is
// called under the table's lock with whether the row exists and returns the columns
// to write. It returns whether the row was created.
func (t *table) upsert(ctx context.Context, id string, set func(exists bool) row) (created bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	exists := t.db.Has(id)
	now := time.Now()
	cols := set(exists)
	c := t.db.Upsert(id, cols, t.clock(now).UnixMilli(), world.Cause{Kind: world.User})
	t.logUpsert(id, cols, now)
	return !exists, t.enqueue(ctx, c, now)
}

// remove commits a DELETE of record id by a user and its tombstone. A missing row
// is a DELETE of 0 rows: nothing is published and it returns false.
func (t *table) remove(ctx context.Context, id string) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	c, ok := t.db.Delete(id, t.clock(now).UnixMilli(), world.Cause{Kind: world.User})
	if !ok {
		return false, nil
	}
	t.logDelete(id, now)
	return true, t.enqueue(ctx, c, now)
}

// sinkWrite writes an apply as the JDBC sink does and queues its change event. It
// returns whether anything was written.
func (t *table) sinkWrite(ctx context.Context, a *world.Apply, eventID string) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	c, wrote := t.db.Sink(a, t.clock(now).UnixMilli(), eventID)
	if !wrote {
		return false, nil
	}
	return true, t.enqueue(ctx, c, now)
}

// enqueue queues the change event of a commit made at now (and a tombstone after a
// delete). The caller holds mu, so the queue is in commit order. It fails when ctx is
// done while the queue is full.
func (t *table) enqueue(ctx context.Context, c *world.Change, now time.Time) error {
	if c == nil {
		return nil
	}
	value, err := t.db.EncodeValue(c, now.UnixMilli())
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	key := t.db.EncodeKey(c.ID)
	msgs := []kafka.Message{{Key: key, Value: value}}
	if c.Op == world.OpDelete {
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
	return t.db.Has(id)
}

// canonicalRows returns a copy of the table in canonical field names, without the
// key and timestamp columns.
func (t *table) canonicalRows() map[string]map[string]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	ids := t.db.IDs()
	out := make(map[string]map[string]string, len(ids))
	for _, id := range ids {
		r, _ := t.db.Row(id)
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
		Rejected: c.rejected.Load(), Rewrites: c.rewrites.Load(), Restarts: c.restarts.Load(),
	}
}
