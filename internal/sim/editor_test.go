package sim

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap/zaptest"
)

// newTestEditor returns an editor over fresh tables with no Kafka: change events stay
// in the tables' queues for drain.
func newTestEditor(t *testing.T, cfg Config) (*editor, []*table, *int) {
	t.Helper()
	cfg.Brokers = []string{"unused:9092"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg = cfg.withDefaults()
	var tables []*table
	for _, spec := range cfg.Systems {
		tables = append(tables, newTable(spec))
	}
	pairs := new(int)
	return newEditor(cfg, tables, zaptest.NewLogger(t), func() { *pairs++ }), tables, pairs
}

func drain(t *table) []kafka.Message {
	var out []kafka.Message
	for {
		select {
		case m := <-t.queue:
			out = append(out, m)
		default:
			return out
		}
	}
}

func TestEditorDeterministic(t *testing.T) {
	run := func(seed int64) []map[string]map[string]string {
		e, tables, _ := newTestEditor(t, Config{
			Systems: []SystemSpec{crmSpec(), billingSpec()}, Records: 20, Rate: 1,
			ConcurrentRatio: 0.2, DeleteRatio: 0.1, Seed: seed,
		})
		var rows []map[string]map[string]string
		for range 400 {
			if err := e.act(context.Background()); err != nil {
				t.Fatal(err)
			}
			for _, tb := range tables {
				drain(tb)
			}
		}
		for _, tb := range tables {
			rows = append(rows, tb.canonicalRows())
		}
		return rows
	}
	a, b, c := run(3), run(3), run(4)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed gave different tables")
	}
	if reflect.DeepEqual(a, c) {
		t.Fatal("different seeds gave the same tables")
	}
}

// TestEditorActions checks each kind of action through the change events it queues:
// creates carry every editable field, updates 1-3 of them, deletes a tombstone, and a
// concurrent pair is one update of the same shared field of one record in each system,
// within pairGap.
func TestEditorActions(t *testing.T) {
	e, tables, pairs := newTestEditor(t, Config{
		Systems: []SystemSpec{crmSpec(), billingSpec()}, Records: 4, Rate: 1,
		ConcurrentRatio: 0.5, DeleteRatio: 0.1, Seed: 11,
	})
	crm, billing := tables[0], tables[1]
	seen := map[string]int{}
	for range 600 {
		before := *pairs
		if err := e.act(context.Background()); err != nil {
			t.Fatal(err)
		}
		events := map[*table][]envelope{}
		for _, tb := range tables {
			for _, m := range drain(tb) {
				if m.Value == nil {
					seen["tombstone"]++
					continue
				}
				var env envelope
				if err := json.Unmarshal(payloadOf(m.Value), &env); err != nil {
					t.Fatal(err)
				}
				events[tb] = append(events[tb], env)
				checkEdit(t, tb, env)
				seen[env.Op]++
			}
		}
		if *pairs == before {
			continue
		}
		seen["pair"]++
		a, b := events[crm], events[billing]
		if len(a) != 1 || len(b) != 1 || a[0].Op != "u" || b[0].Op != "u" {
			t.Fatalf("pair made crm %v and billing %v", a, b)
		}
		if string(a[0].After["id"]) != string(b[0].After["cust_id"]) {
			t.Fatalf("pair edited two records: %s and %s", a[0].After["id"], b[0].After["cust_id"])
		}
		// Timers overshoot on a loaded machine (and under -race); what matters is that
		// the gap stays far inside concord's default 500ms clock-skew tolerance.
		if gap := time.Duration(a[0].TsMs-b[0].TsMs) * time.Millisecond; gap.Abs() > pairGap+50*time.Millisecond {
			t.Fatalf("pair %v apart", gap)
		}
	}
	for _, kind := range []string{"c", "u", "d", "tombstone", "pair"} {
		if seen[kind] == 0 {
			t.Fatalf("no %s in %v", kind, seen)
		}
	}
	if seen["d"] != seen["tombstone"] {
		t.Fatalf("%d deletes, %d tombstones", seen["d"], seen["tombstone"])
	}
}

// checkEdit checks that a user's create carries every editable field and an update
// changes between one and three of them (billing's full before image shows which).
func checkEdit(t *testing.T, tb *table, env envelope) {
	t.Helper()
	editable := len(tb.spec.editable())
	switch env.Op {
	case "c":
		for _, f := range tb.spec.editable() {
			if _, ok := env.After[tb.spec.column(f)]; !ok {
				t.Fatalf("%s create without %s: %v", tb.spec.Name, f, env.After)
			}
		}
	case "u":
		if env.Before == nil {
			return
		}
		changed := 0
		for col, v := range env.After {
			if col != tb.spec.TimestampColumn && string(env.Before[col]) != string(v) {
				changed++
			}
		}
		if changed < 1 || changed > min(3, editable) {
			t.Fatalf("%s update changed %d fields: %v -> %v", tb.spec.Name, changed, env.Before, env.After)
		}
	}
}

// envelope is the part of a published change event the editor tests read.
type envelope struct {
	Before map[string]json.RawMessage `json:"before"`
	After  map[string]json.RawMessage `json:"after"`
	Op     string                     `json:"op"`
	TsMs   int64                      `json:"ts_ms"`
}
