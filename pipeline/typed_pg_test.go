package pipeline_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/concord-sync/concord/config"
	"github.com/concord-sync/concord/internal/jdbcsink"
	"github.com/concord-sync/concord/internal/testenv"
	"github.com/concord-sync/concord/pipeline"
	"github.com/concord-sync/concord/resolver"
)

// typedTable is a target table with the column types a billing platform has.
const typedTable = `CREATE TABLE accounts (
	id         bigint PRIMARY KEY,
	balance    numeric(12,2),
	renewed_at timestamptz,
	seen_at    timestamp,
	born       date,
	active     boolean,
	meta       jsonb,
	visits     integer,
	ratio      double precision,
	notes      text
)`

// typedConfig syncs crm (whose events carry no schema: every value is what its JSON
// says) into billing's typed table, billing's column types configured.
func typedConfig(t *testing.T, format, sink, columns string) *config.Config {
	t.Helper()
	cfg, err := config.Parse(fmt.Appendf(nil, `
name: typed
systems:
  crm: {topic: crm.public.contacts, key: [id]}
  billing:
    topic: billing.public.accounts
    key: [id]
    apply: {topic: typed.apply.billing, format: %s, sink: %s}
    columns: {%s}
authority: {balance: crm, renewed_at: crm, seen_at: crm, born: crm, active: crm, meta: crm, visits: crm, ratio: crm, notes: crm}
`, format, sink, columns))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

const typedColumns = `balance: "decimal(12,2)", renewed_at: zoned_timestamp, seen_at: micro_timestamp, born: date, ` +
	`active: boolean, meta: json, visits: int32, ratio: double, notes: string`

// TestTypedAppliesIntoPostgreSQL writes concord's applies into typed PostgreSQL
// columns through both JDBC sinks (emulated from their source, internal/jdbcsink,
// binding parameters as pgjdbc does) and reads the values back: each must be what
// was decided, in the column's type. Without the types (inferred from the values)
// the same apply is refused by PostgreSQL, as it is by the real sinks. The Confluent
// sink knows only Connect's own logical types: concord sends it those
// (apply.sink: confluent).
func TestTypedAppliesIntoPostgreSQL(t *testing.T) {
	long := strings.Repeat("x", 9000) // TOASTed in PostgreSQL
	fields := []resolver.Value{
		val("balance", `"1234.5"`), val("renewed_at", `"2026-12-01T10:00:00.123Z"`), val("seen_at", `"2026-12-01T10:00:00.5Z"`),
		val("born", `"1990-02-28"`), val("active", `true`), val("meta", `"{\"tier\": \"gold\", \"tags\": [1, 2]}"`),
		val("visits", `42`), val("ratio", `0.25`), val("notes", `"`+long+`"`),
	}
	want := map[string]string{
		"balance": "1234.50", "renewed_at": "2026-12-01 10:00:00.123+00", "seen_at": "2026-12-01 10:00:00.5",
		"born": "1990-02-28", "active": "true", "meta": `{"tags": [1, 2], "tier": "gold"}`,
		"visits": "42", "ratio": "0.25", "notes": long,
	}
	for _, tc := range []struct{ format, class string }{
		{"debezium", "debezium"}, {"flat", "debezium"}, {"flat", "confluent"},
	} {
		t.Run(tc.format+" into the "+tc.class+" sink", func(t *testing.T) {
			pg := testenv.Postgres(t)
			conn := pg.Conn(t)
			ctx := context.Background()
			if _, err := conn.Exec(ctx, typedTable); err != nil {
				t.Fatal(err)
			}
			put := newTypedSink(t, pg, tc.class)
			cfg := typedConfig(t, tc.format, tc.class, typedColumns)
			if err := put(applyRecord(t, cfg, fields)); err != nil {
				t.Fatalf("the sink refused a typed apply: %v", err)
			}
			var got [9]string
			err := conn.QueryRow(ctx, `SELECT balance::text, renewed_at::text, seen_at::text, born::text, active::text,
				coalesce(meta::text, ''), visits::text, ratio::text, notes FROM accounts WHERE id = 7`).
				Scan(&got[0], &got[1], &got[2], &got[3], &got[4], &got[5], &got[6], &got[7], &got[8])
			if err != nil {
				t.Fatal(err)
			}
			for i, col := range []string{"balance", "renewed_at", "seen_at", "born", "active", "meta", "visits", "ratio", "notes"} {
				if got[i] != want[col] {
					t.Errorf("%s = %.80q, want %.80q", col, got[i], want[col])
				}
			}

			// The same apply with the types inferred from the values: decimals and
			// timestamps are text, which PostgreSQL refuses for these columns.
			untyped := typedConfig(t, tc.format, tc.class, "")
			err = newTypedSink(t, pg, tc.class)(applyRecord(t, untyped, fields))
			if err == nil || !strings.Contains(err.Error(), "is of type") {
				t.Fatalf("an untyped apply into typed columns: %v, want PostgreSQL's type error", err)
			}
		})
	}
}

func val(name, v string) resolver.Value {
	return resolver.Value{Name: name, FP: resolver.Fingerprint([]byte(v)), Value: []byte(v)}
}

// applyRecord is concord's apply message of a create of record 7 in billing.
func applyRecord(t *testing.T, cfg *config.Config, fields []resolver.Value) jdbcsink.Record {
	t.Helper()
	res, err := resolver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := resolver.Decision{Kind: resolver.KindApply, Target: "billing", Origin: "crm", Rule: resolver.RuleSync, EventID: "e1", Fields: fields}
	m, err := pipeline.ApplyMessage(cfg, res, []resolver.Value{val("id", "7")}, &d, time.UnixMilli(1_764_000_000_000))
	if err != nil {
		t.Fatal(err)
	}
	return jdbcsink.Record{Topic: m.Topic, Key: m.Key, Value: m.Value}
}

// newTypedSink starts a sink task writing typed.apply.billing into accounts and
// returns its Put of one record.
func newTypedSink(t *testing.T, pg *testenv.PG, class string) func(jdbcsink.Record) error {
	t.Helper()
	ctx := context.Background()
	conn := pg.Conn(t)
	var put func(context.Context, []jdbcsink.Record) error
	switch class {
	case "confluent":
		s, err := jdbcsink.NewConfluentSink(ctx, conn, map[string]string{
			"connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector", "table.name.format": "accounts",
			"insert.mode": "upsert", "pk.mode": "record_key", "pk.fields": "id", "delete.enabled": "true",
		})
		if err != nil {
			t.Fatal(err)
		}
		put = s.Put
	default:
		s, err := jdbcsink.NewDebeziumSink(ctx, conn, map[string]string{
			"connector.class": "io.debezium.connector.jdbc.JdbcSinkConnector", "collection.name.format": "accounts",
			"insert.mode": "upsert", "primary.key.mode": "record_key", "primary.key.fields": "id", "delete.enabled": "true",
			"schema.evolution": "none",
		})
		if err != nil {
			t.Fatal(err)
		}
		put = s.Put
	}
	return func(r jdbcsink.Record) error { return put(ctx, []jdbcsink.Record{r}) }
}
