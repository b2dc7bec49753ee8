package deploy_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/segmentio/kafka-go"

	"github.com/concord-sync/concord/internal/jdbcsink"
	"github.com/concord-sync/concord/internal/testenv"
	"github.com/concord-sync/concord/pipeline"
	"github.com/concord-sync/concord/resolver"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// stackTable is a system's table as the stack creates it: its init.sql run on a
// fresh database of a real PostgreSQL server.
func stackTable(t *testing.T, system string) *pgx.Conn {
	t.Helper()
	conn := testenv.Postgres(t).Conn(t)
	sql := readFile(t, filepath.Join("deploy/postgres", system, "init.sql"))
	if _, err := conn.Exec(context.Background(), string(sql)); err != nil {
		t.Fatalf("deploy/postgres/%s/init.sql: %v", system, err)
	}
	return conn
}

// sinkOf starts the sink of a connector config file (connect/<file>) on conn: the
// Debezium or the Confluent JDBC sink, emulated from their source (internal/jdbcsink).
func sinkOf(t *testing.T, conn *pgx.Conn, file string) interface {
	Put(context.Context, []jdbcsink.Record) error
} {
	t.Helper()
	var props map[string]string
	if err := json.Unmarshal(readFile(t, filepath.Join(connectDir, file)), &props); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	switch props["connector.class"] {
	case "io.confluent.connect.jdbc.JdbcSinkConnector":
		s, err := jdbcsink.NewConfluentSink(ctx, conn, props)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		return s
	default:
		s, err := jdbcsink.NewDebeziumSink(ctx, conn, props)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		return s
	}
}

// TestStackSinksWriteConcordsApplies sends concord's own apply messages for the
// stack's configuration (pipeline.ApplyMessage) through each system's sink, as
// configured in deploy/connect, into the system's table as deploy/postgres creates
// it, and checks the rows: a create, an update of one field (the others keep their
// values), and a delete; and that the origin marker names the apply that wrote the
// row, until an edit clears it (the *_a_clear_marker trigger).
func TestStackSinksWriteConcordsApplies(t *testing.T) {
	cfg := loadConcord(t)
	res, err := resolver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ system, sinkFile, table string }{
		{"crm", "crm-sink.json", "public.contacts"},
		{"billing", "billing-sink.json", "public.customers"},
		{"billing", "confluent/billing-sink.json", "public.customers"},
	} {
		t.Run(tc.sinkFile, func(t *testing.T) {
			conn := stackTable(t, tc.system)
			sink := sinkOf(t, conn, tc.sinkFile)
			key := []resolver.Value{{Name: "id", Value: []byte(`"c-9"`)}}
			put := func(d resolver.Decision) {
				t.Helper()
				d.Kind, d.Target, d.Origin, d.Rule = resolver.KindApply, tc.system, "other", resolver.RuleSync
				m, err := pipeline.ApplyMessage(cfg, res, key, &d, time.UnixMilli(1_764_000_000_000))
				if err != nil {
					t.Fatal(err)
				}
				if err := sink.Put(context.Background(), []jdbcsink.Record{record(m)}); err != nil {
					t.Fatalf("the sink refused concord's apply %s: %v\nkey %s\nvalue %s", d.EventID, err, m.Key, m.Value)
				}
			}
			column := func(field string) string { return cfg.Systems[tc.system].Column(field) }
			row := func() map[string]*string {
				t.Helper()
				return readRow(t, conn, tc.table, column("id"), "c-9")
			}

			put(resolver.Decision{EventID: "e1", Fields: values("email", `"ann@example.com"`, "name", `"Ann"`, "notes", `"first"`, "phone", `null`)})
			got := row()
			want := map[string]string{column("email"): "ann@example.com", column("name"): "Ann", "notes": "first", "concord_event": "e1"}
			for col, v := range want {
				if got[col] == nil || *got[col] != v {
					t.Errorf("after the create, %s = %v, want %q", col, str(got[col]), v)
				}
			}
			if got["phone"] != nil {
				t.Errorf("phone = %q, want NULL", *got["phone"])
			}

			put(resolver.Decision{EventID: "e2", Fields: values("notes", `"second"`)})
			got = row()
			if str(got["notes"]) != "second" || str(got[column("email")]) != "ann@example.com" || str(got["concord_event"]) != "e2" {
				t.Errorf("after an update of notes: %v", printable(got))
			}

			// A user's edit clears the marker; the sink writing e2 again (a restart
			// rewriting it) then puts back an id the row no longer showed.
			execSQL(t, conn, "UPDATE "+tc.table+" SET notes = 'mine' WHERE "+column("id")+" = 'c-9'")
			if got := row(); got["concord_event"] != nil || str(got["notes"]) != "mine" {
				t.Errorf("after a user's edit: %v, want concord_event NULL", printable(got))
			}
			put(resolver.Decision{EventID: "e2", Fields: values("notes", `"second"`)})
			if got := row(); str(got["concord_event"]) != "e2" {
				t.Errorf("after the rewrite of e2: %v, want concord_event e2", printable(got))
			}
			// Written again with nothing in between, the same id is cleared: that
			// write changes nothing concord syncs.
			put(resolver.Decision{EventID: "e2", Fields: values("notes", `"second"`)})
			if got := row(); got["concord_event"] != nil {
				t.Errorf("after e2 written twice in a row: %v, want concord_event NULL", printable(got))
			}

			put(resolver.Decision{EventID: "e3", Delete: true})
			if got := row(); got != nil {
				t.Errorf("after the delete the row is still there: %v", printable(got))
			}
			put(resolver.Decision{EventID: "e4", Delete: true}) // deletes nothing
		})
	}
}

func values(kv ...string) []resolver.Value {
	var vs []resolver.Value
	for i := 0; i < len(kv); i += 2 {
		vs = append(vs, resolver.Value{Name: kv[i], FP: resolver.Fingerprint([]byte(kv[i+1])), Value: []byte(kv[i+1])})
	}
	return vs
}

func record(m kafka.Message) jdbcsink.Record {
	return jdbcsink.Record{Topic: m.Topic, Key: m.Key, Value: m.Value}
}

// readRow returns a row's columns as text (nil for NULL), or nil when there is no row.
func readRow(t *testing.T, conn *pgx.Conn, table, keyColumn, id string) map[string]*string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT * FROM "+table+" WHERE "+keyColumn+" = $1", id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil
	}
	vals, err := rows.Values()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*string{}
	for i, f := range rows.FieldDescriptions() {
		if vals[i] == nil {
			out[f.Name] = nil
			continue
		}
		s := toText(vals[i])
		out[f.Name] = &s
	}
	return out
}

func toText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	case int64:
		return strconv.FormatInt(v, 10)
	case int32:
		return strconv.FormatInt(int64(v), 10)
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

func execSQL(t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func str(p *string) string {
	if p == nil {
		return "<NULL>"
	}
	return *p
}

func printable(row map[string]*string) map[string]string {
	out := map[string]string{}
	for k, v := range row {
		out[k] = str(v)
	}
	return out
}
