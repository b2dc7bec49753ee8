package resolver_test

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/concord-sync/concord/codecs"
	"github.com/concord-sync/concord/config"
	"github.com/concord-sync/concord/resolver"
)

// testConfig is two systems whose column names and key column differ:
// crm (key id, email_address, full_name) and billing (key cust_id, timestamp updated_at).
func testConfig() *config.Config {
	return &config.Config{
		Name: "contacts",
		Systems: map[string]*config.System{
			"crm": {
				Name: "crm", Topic: "crm.public.contacts", Key: []string{"id"},
				Timestamp: "source.ts_ms",
				Fields:    map[string]string{"email": "email_address", "name": "full_name"},
			},
			"billing": {
				Name: "billing", Topic: "billing.public.customers", Key: []string{"id"},
				Timestamp: "updated_at",
				Fields:    map[string]string{"id": "cust_id", "status": "payment_status"},
			},
		},
		Resolution: config.Resolution{
			ClockSkewTolerance: config.Duration{Duration: 500 * time.Millisecond},
			Granularity:        "field",
			Deletes:            "review",
			UnmappedFields:     "skip",
			TombstoneRetention: config.Duration{Duration: time.Hour},
			ApplyTimeout:       config.Duration{Duration: 15 * time.Minute},
			LoopGuard:          config.LoopGuard{MaxApplies: 1000, Window: config.Duration{Duration: time.Minute}},
		},
		Authority: map[string]string{
			"email": "crm", "name": "crm", "status": "billing",
			"notes": "shared", "phone": "shared",
		},
	}
}

// table is one simulated system: its rows in its own column names, its CDC stream
// (what Debezium would publish, in commit order) and its sink's inbox of applies.
type table struct {
	name      string
	keyCol    string
	tsCol     string // "" when the timestamp is source.ts_ms
	fullImage bool   // REPLICA IDENTITY FULL: events carry a before image
	skewMs    int64
	rows      map[string]map[string]string // record -> column -> canonical JSON
	cdc       []codecs.Event
	edits     []*edit // parallel to cdc: the user edit an event publishes, nil for sink writes
	inbox     []resolver.Decision
	lsn       uint64
}

func newTable(name, keyCol, tsCol string, full bool, skewMs int64) *table {
	return &table{name: name, keyCol: keyCol, tsCol: tsCol, fullImage: full, skewMs: skewMs, rows: map[string]map[string]string{}}
}

// write commits a change to a row (nil cols = delete) and publishes its change event,
// tagged with the user edit it carries (nil for a sink's write).
func (t *table) write(record string, cols map[string]string, nowMs int64, e *edit) {
	old, existed := t.rows[record]
	ts := nowMs + t.skewMs
	ev := codecs.Event{Kind: codecs.KindChange, TsMs: ts}
	t.lsn++
	ev.Position = codecs.Position{Kind: codecs.PosPostgres, A: t.lsn}
	key := `"` + record + `"`
	ev.Key = codecs.Row{{Name: t.keyCol, Value: []byte(key)}}
	if cols == nil {
		if !existed {
			return
		}
		delete(t.rows, record)
		ev.Op = codecs.OpDelete
		ev.Before = codecs.Row{{Name: t.keyCol, Value: []byte(key)}}
		if t.fullImage {
			ev.Before = rowOf(t.keyCol, key, old)
		}
	} else {
		next := map[string]string{}
		for k, v := range old {
			next[k] = v
		}
		for k, v := range cols {
			next[k] = v
		}
		if t.tsCol != "" {
			next[t.tsCol] = strconv.FormatInt(ts, 10)
		}
		t.rows[record] = next
		ev.Op = codecs.OpUpdate
		if !existed {
			ev.Op = codecs.OpCreate
		} else if t.fullImage {
			ev.Before = rowOf(t.keyCol, key, old)
		}
		ev.After = rowOf(t.keyCol, key, next)
	}
	t.cdc = append(t.cdc, ev)
	t.edits = append(t.edits, e)
}

func rowOf(keyCol, key string, cols map[string]string) codecs.Row {
	row := codecs.Row{{Name: keyCol, Value: []byte(key)}}
	names := make([]string, 0, len(cols))
	for k := range cols {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		row = append(row, codecs.Column{Name: k, Value: []byte(cols[k])})
	}
	return row
}

// sink applies the oldest apply in the inbox as a JDBC sink would (upsert of the
// fields it carries, or delete).
func (t *table) sink(r *resolver.Resolver, nowMs int64) {
	a := t.inbox[0]
	t.inbox = t.inbox[1:]
	if a.Delete {
		t.write(a.Record, nil, nowMs, nil)
		return
	}
	cols := map[string]string{}
	for _, f := range a.Fields {
		cols[r.Column(t.name, f.Name)] = string(f.Value)
	}
	t.write(a.Record, cols, nowMs, nil)
}

const debugSim = false

// world runs a resolver over simulated systems, keeping one state per record.
type world struct {
	r      *resolver.Resolver
	tables map[string]*table
	states map[string]*resolver.State
	nowMs  int64
	out    resolver.Output
	ch     resolver.Change
	log    []resolver.Decision // every decision, values copied
}

func newWorld(cfg *config.Config, tables ...*table) (*world, error) {
	r, err := resolver.New(cfg)
	if err != nil {
		return nil, err
	}
	w := &world{r: r, tables: map[string]*table{}, states: map[string]*resolver.State{}, nowMs: 1_700_000_000_000}
	for _, t := range tables {
		w.tables[t.name] = t
	}
	return w, nil
}

// deliver feeds the oldest change event of a system to the resolver and routes the
// resulting applies to the sinks. The edit the event carries, if any, keeps the decisions.
func (w *world) deliver(system string) error {
	t := w.tables[system]
	ev, e := t.cdc[0], t.edits[0]
	t.cdc, t.edits = t.cdc[1:], t.edits[1:]
	if err := w.r.Canonicalize(system, &ev, &w.ch); err != nil {
		return fmt.Errorf("canonicalize %s event: %w", system, err)
	}
	st := w.states[w.ch.Record]
	if st == nil {
		st = &resolver.State{Record: w.ch.Record}
		w.states[w.ch.Record] = st
	}
	w.out.Reset()
	w.r.Resolve(time.UnixMilli(w.nowMs), st, &w.ch, &w.out)
	ds := w.route()
	if debugSim && w.ch.Record == "r3" {
		fmt.Printf("DEBUG %s op=%c after=%s -> %d decisions %+v\n", system, w.ch.Op, fieldsString(w.ch.After), len(ds), ds)
	}
	if e != nil {
		e.decisions = ds
	}
	return nil
}

func (w *world) route() []resolver.Decision {
	var ds []resolver.Decision
	for _, d := range w.out.Decisions {
		d.Fields = cloneValues(d.Fields)
		for i := range d.Versions {
			d.Versions[i].Fields = cloneValues(d.Versions[i].Fields)
		}
		if d.Kind == resolver.KindApply {
			w.tables[d.Target].inbox = append(w.tables[d.Target].inbox, d)
		}
		ds = append(ds, d)
	}
	w.log = append(w.log, ds...)
	return ds
}

func cloneValues(vs []resolver.Value) []resolver.Value {
	out := make([]resolver.Value, len(vs))
	for i, v := range vs {
		v.Value = append([]byte(nil), v.Value...)
		out[i] = v
	}
	return out
}

// settle delivers everything in flight until nothing moves, as a sync that is left
// alone long enough would. It fails if that does not end (a loop).
func (w *world) settle(maxSteps int) error {
	for range maxSteps {
		moved := false
		for _, name := range w.names() {
			t := w.tables[name]
			if len(t.cdc) > 0 {
				if err := w.deliver(name); err != nil {
					return err
				}
				moved = true
			}
			if len(t.inbox) > 0 {
				t.sink(w.r, w.nowMs)
				moved = true
			}
		}
		w.nowMs += 10
		if !moved {
			return nil
		}
	}
	return fmt.Errorf("still moving after %d steps: a loop", maxSteps)
}

// drain settles, then lets time pass so pairing windows close, until nothing is left
// in flight or pending.
func (w *world) drain() error {
	for range 100 {
		if err := w.settle(10_000); err != nil {
			return err
		}
		w.nowMs += 1000
		pending := false
		for _, rec := range w.recordIDs() {
			st := w.states[rec]
			pending = pending || len(st.Pending) > 0
			w.out.Reset()
			w.r.Expire(time.UnixMilli(w.nowMs), st, &w.out)
			w.route()
		}
		if !pending {
			return w.settle(10_000)
		}
	}
	return fmt.Errorf("changes still pending after 100 windows")
}

func (w *world) recordIDs() []string {
	ids := make([]string, 0, len(w.states))
	for id := range w.states {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (w *world) names() []string {
	names := make([]string, 0, len(w.tables))
	for n := range w.tables {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// canonicalRow returns a system's row of a record in canonical field names, without
// the key and timestamp columns.
func (w *world) canonicalRow(system, record string) (map[string]string, bool) {
	t := w.tables[system]
	row, ok := t.rows[record]
	if !ok {
		return nil, false
	}
	out := map[string]string{}
	for col, v := range row {
		if col == t.tsCol || col == t.keyCol {
			continue
		}
		out[fieldOf(w.r, system, col)] = v
	}
	return out, true
}

func fieldOf(r *resolver.Resolver, system, col string) string {
	for _, f := range []string{"email", "name", "status", "notes", "phone"} {
		if r.Column(system, f) == col {
			return f
		}
	}
	return col
}
