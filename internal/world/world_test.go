package world_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/concord-sync/concord/codecs"
	"github.com/concord-sync/concord/internal/jdbcsink"
	"github.com/concord-sync/concord/internal/world"
)

func typedTable() *world.Table {
	return world.NewTable(world.Spec{
		Name: "billing", Table: "accounts", KeyColumn: "id",
		Columns: []string{"balance", "renewed_at", "born", "active", "meta", "notes", "updated_at"},
		Types: map[string]string{
			"balance": "numeric(12,2)", "renewed_at": world.PGTimestamptz, "born": world.PGDate,
			"active": world.PGBoolean, "meta": world.PGJSONB, "notes": world.PGText,
		},
		TimestampColumn: "updated_at", Toasted: []string{"notes"}, Schemas: true,
	}, true)
}

// TestTypedEventsAreWhatDebeziumWrites: a typed table's change events are valid
// JsonConverter messages (the emulation from Kafka's source reads them) and concord's
// decoder reads back the values the table holds; an unchanged TOASTed column comes as
// the placeholder.
func TestTypedEventsAreWhatDebeziumWrites(t *testing.T) {
	tbl := typedTable()
	set := world.Row{
		"balance": `"12.5"`, "renewed_at": `"2026-12-01T10:00:00.123456Z"`, "born": `"1990-02-28"`,
		"active": `true`, "meta": `"{\"a\":1}"`, "notes": `"` + strings.Repeat("n", 9000) + `"`,
	}
	c := tbl.Upsert("r-1", set, 1_764_000_000_000, world.Cause{Kind: world.User})
	c2 := tbl.Upsert("r-1", world.Row{"balance": `"13"`}, 1_764_000_000_001, world.Cause{Kind: world.User})
	dec := codecs.NewDecoder(codecs.Options{})
	for i, ch := range []*world.Change{c, c2} {
		value, err := tbl.EncodeValue(ch, 1)
		if err != nil {
			t.Fatal(err)
		}
		key := tbl.EncodeKey("r-1")
		if _, err := jdbcsink.ToConnectData("billing.public.accounts", value, true); err != nil {
			t.Fatalf("event %d is no JsonConverter message: %v\n%s", i, err, value)
		}
		if _, err := jdbcsink.ToConnectData("billing.public.accounts", key, true); err != nil {
			t.Fatalf("key: %v", err)
		}
		var ev codecs.Event
		if err := dec.Decode(codecs.Message{Key: key, Value: value}, &ev); err != nil {
			t.Fatal(err)
		}
		for col, want := range ch.After {
			if col == "meta" {
				// Stored as jsonb prints it; concord reads a document in one form.
				if want != `"{\"a\": 1}"` {
					t.Errorf("meta is stored as %s, want jsonb's printing", want)
				}
				want = `"{\"a\":1}"`
			}
			got, _ := ev.After.Get(col)
			if string(got) != want {
				t.Errorf("event %d: %s decodes to %.40s, want %.40s", i, col, got, want)
			}
		}
	}
	if c2.After["notes"] != world.Unavailable {
		t.Errorf("an unchanged TOASTed column is %.20s, want the placeholder", c2.After["notes"])
	}
}

// TestReadApplyStoresAsPostgreSQL: the sink's write of concord's apply events into
// typed columns: stored as PostgreSQL stores them (a numeric rounded to its scale),
// refused where PostgreSQL refuses.
func TestReadApplyStoresAsPostgreSQL(t *testing.T) {
	enc := codecs.ApplyEncoder{Format: codecs.FormatFlat, Schema: true}
	decimal := codecs.ColumnType{Type: codecs.TypeBytes, Name: codecs.NameDecimal, Scale: 3}
	apply := func(fields ...codecs.TypedColumn) (key, value []byte) {
		a := codecs.Apply{Key: []codecs.TypedColumn{{Name: "id", Value: []byte(`"r-1"`)}}, Fields: fields}
		key, _ = enc.AppendKey(nil, &a)
		value, _, err := enc.AppendValue(nil, &a)
		if err != nil {
			t.Fatal(err)
		}
		return key, value
	}
	tbl := typedTable()
	key, value := apply(
		codecs.TypedColumn{Name: "balance", Value: []byte(`"12.345"`), Type: decimal}, // more scale than the column
		codecs.TypedColumn{Name: "renewed_at", Value: []byte(`"2026-12-01T10:00:00Z"`), Type: codecs.ColumnType{Type: codecs.TypeString, Name: codecs.NameZonedTimestamp}},
		codecs.TypedColumn{Name: "meta", Value: []byte(`"{\"bb\":[2,3],\"a\":1}"`)}, // stored as jsonb prints it
	)
	a, err := tbl.ReadApply(world.FormatFlat, key, value)
	if err != nil {
		t.Fatal(err)
	}
	if a.Set["balance"] != `"12.35"` || a.Set["renewed_at"] != `"2026-12-01T10:00:00Z"` || a.Set["meta"] != `"{\"a\": 1, \"bb\": [2, 3]}"` {
		t.Errorf("stored %v", a.Set)
	}
	for name, f := range map[string]codecs.TypedColumn{
		"a string into numeric":     {Name: "balance", Value: []byte(`"12.5"`)},
		"a string into timestamptz": {Name: "renewed_at", Value: []byte(`"2026-12-01T10:00:00Z"`)},
		"a number into boolean":     {Name: "active", Value: []byte(`1`)},
		"text that is no JSON":      {Name: "meta", Value: []byte(`"{nope"`)},
		"numeric overflow":          {Name: "balance", Value: []byte(`"12345678901.5"`), Type: decimal},
	} {
		key, value := apply(f)
		if _, err := tbl.ReadApply(world.FormatFlat, key, value); !errors.Is(err, world.ErrRefused) {
			t.Errorf("%s: %v, want PostgreSQL's refusal", name, err)
		}
	}
	// Without a schema, JsonConverter refuses the record before the sink sees it.
	if _, err := tbl.ReadApply(world.FormatFlat, []byte(`{"id":"r-1"}`), []byte(`{"id":"r-1"}`)); !errors.Is(err, world.ErrApply) {
		t.Errorf("schemaless: %v", err)
	}
}
