package jdbcsink_test

import (
	"errors"
	"maps"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/concord-sync/concord/internal/jdbcsink"
)

// confluentProps is a typical Confluent JDBC sink configuration for the customers
// topic.
var confluentProps = map[string]string{
	"name":              "customers-sink",
	"connector.class":   "io.confluent.connect.jdbc.JdbcSinkConnector",
	"insert.mode":       "upsert",
	"pk.mode":           "record_key",
	"pk.fields":         "id",
	"delete.enabled":    "true",
	"table.name.format": "customers",
	"auto.create":       "false",
}

func confluent(t *testing.T, conn *pgx.Conn, override map[string]string) *jdbcsink.ConfluentSink {
	t.Helper()
	props := maps.Clone(confluentProps)
	maps.Copy(props, override)
	s, err := jdbcsink.NewConfluentSink(ctx, conn, props)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Connect's own logical types, which the Confluent sink binds by name; Debezium's
// (ZonedTimestamp, Date, MicroTimestamp, Json) it only knows as plain strings and
// integers.
var (
	cRenewedAt = field{name: "renewed_at", typ: "int64", logical: "org.apache.kafka.connect.data.Timestamp"}
	cBorn      = field{name: "born", typ: "int32", logical: "org.apache.kafka.connect.data.Date"}
	cSeenAt    = field{name: "seen_at", typ: "int64", logical: "org.apache.kafka.connect.data.Timestamp"}
	cMeta      = field{name: "meta", typ: "string"}

	confluentFields = []field{fID, fName, fBalance, cRenewedAt, cBorn, fActive, cMeta, fNotes, cSeenAt}
)

func confluentRow(id int) map[string]any {
	return map[string]any{
		"id": id, "name": "Ada", "balance": decimalBase64(123450),
		"renewed_at": int64(1709296496789), "born": 19000, "active": true,
		"meta": `{"tier":"gold","n":1}`, "notes": "first", "seen_at": int64(1709296496123),
	}
}

const confluentRowText = `Ada|1234.50|2024-03-01T12:34:56.789000Z|2022-01-08|true|{"n": 1, "tier": "gold"}|first|2024-03-01 12:34:56.123`

func TestConfluentWritesEachTypeAsPostgreSQLReadsIt(t *testing.T) {
	t.Parallel()
	conn, check := db(t)
	s := confluent(t, conn, nil)
	if err := s.Put(ctx, []jdbcsink.Record{rec(key(t, 1), flat(t, confluentFields, confluentRow(1)))}); err != nil {
		t.Fatal(err)
	}
	// Connect Timestamps are sent untyped with an offset, so they fit timestamptz and
	// timestamp alike; a string into jsonb gets ?::jsonb from the column's type.
	if got := row(t, check, 1); got != confluentRowText {
		t.Errorf("row 1 =\n%s\nwant\n%s", got, confluentRowText)
	}
}

func TestConfluentUpsertWritesOnlyTheRecordsFields(t *testing.T) {
	t.Parallel()
	conn, check := db(t)
	s := confluent(t, conn, nil)
	if err := s.Put(ctx, []jdbcsink.Record{rec(key(t, 1), flat(t, confluentFields, confluentRow(1)))}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, []jdbcsink.Record{rec(key(t, 1), flat(t, []field{fID, fName}, map[string]any{"id": 1, "name": "Grace"}))}); err != nil {
		t.Fatal(err)
	}
	want := "Grace" + confluentRowText[len("Ada"):]
	if got := row(t, check, 1); got != want {
		t.Errorf("after a name-only upsert row 1 =\n%s\nwant\n%s", got, want)
	}
	// Key-only: DO NOTHING on the existing row, a row of NULLs for a new key.
	err := s.Put(ctx, []jdbcsink.Record{
		rec(key(t, 1), flat(t, []field{fID}, map[string]any{"id": 1})),
		rec(key(t, 2), flat(t, []field{fID}, map[string]any{"id": 2})),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := row(t, check, 1); got != want {
		t.Errorf("after a key-only upsert row 1 = %s; want it unchanged", got)
	}
	if got, want := row(t, check, 2), "NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL"; got != want {
		t.Errorf("key-only insert row 2 = %s; want %s", got, want)
	}
}

func TestConfluentTombstonesDelete(t *testing.T) {
	t.Parallel()
	conn, check := db(t)
	s := confluent(t, conn, nil)
	err := s.Put(ctx, []jdbcsink.Record{
		rec(key(t, 1), flat(t, confluentFields, confluentRow(1))),
		rec(key(t, 2), flat(t, confluentFields, confluentRow(2))),
		rec(key(t, 1), nil), // deletes the row written just before it, in the same batch
		rec(key(t, 9), nil), // no such row: fine
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := row(t, check, 1); got != "absent" {
		t.Errorf("row 1 = %s; want it deleted", got)
	}
	if got := row(t, check, 2); got != confluentRowText {
		t.Errorf("row 2 = %s; want it kept", got)
	}
}

func TestConfluentRefusals(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		override map[string]string
		record   func(t *testing.T) jdbcsink.Record
		want     []string
		pgCode   string
	}{{
		name:     "schemaless value with deletes off",
		override: map[string]string{"value.converter.schemas.enable": "false", "delete.enabled": "false"},
		record: func(t *testing.T) jdbcsink.Record {
			return rec(key(t, 1), mustJSON(t, map[string]any{"id": 1, "name": "Ada"}))
		},
		want: []string{"Sink connector 'customers-sink' is configured with 'delete.enabled=false' and 'pk.mode=record_key' and therefore requires records with a non-null Struct or String value and non-null Struct or String schema, but found record at (topic='customers',partition=0,offset=0,timestamp=0) with a HashMap value and null value schema."},
	}, {
		name:     "schemaless value with deletes on",
		override: map[string]string{"value.converter.schemas.enable": "false"},
		record: func(t *testing.T) jdbcsink.Record {
			return rec(key(t, 1), mustJSON(t, map[string]any{"id": 1, "name": "Ada"}))
		},
		want: []string{`NullPointerException: Cannot invoke "org.apache.kafka.connect.data.Schema.type()"`},
	}, {
		name:     "null key schema",
		override: map[string]string{"key.converter.schemas.enable": "false"},
		record: func(t *testing.T) jdbcsink.Record {
			return rec([]byte(`{"id":1}`), flat(t, confluentFields, confluentRow(1)))
		},
		want: []string{"requires records with a non-null key and non-null Struct or primitive key schema", "with a HashMap key and null key schema"},
	}, {
		name: "Debezium's ZonedTimestamp (a string) into timestamptz",
		record: func(t *testing.T) jdbcsink.Record {
			return rec(key(t, 1), flat(t, []field{fID, fRenewedAt}, map[string]any{"id": 1, "renewed_at": "2024-03-01T12:34:56Z"}))
		},
		want:   []string{`column "renewed_at" is of type timestamp with time zone but expression is of type character varying`},
		pgCode: "42804",
	}, {
		name: "Debezium's Date (an int32) into date",
		record: func(t *testing.T) jdbcsink.Record {
			return rec(key(t, 1), flat(t, []field{fID, fBorn}, map[string]any{"id": 1, "born": 19000}))
		},
		want:   []string{`column "born" is of type date but expression is of type integer`},
		pgCode: "42804",
	}, {
		name: "a plain string into numeric",
		record: func(t *testing.T) jdbcsink.Record {
			return rec(key(t, 1), flat(t, []field{fID, {name: "balance", typ: "string"}}, map[string]any{"id": 1, "balance": "1.00"}))
		},
		want:   []string{`column "balance" is of type numeric but expression is of type character varying`},
		pgCode: "42804",
	}, {
		name: "a struct field",
		record: func(t *testing.T) jdbcsink.Record {
			schema := structSchema("customers.Value", false, []field{fID})
			fields, _ := schema["fields"].([]any)
			schema["fields"] = append(fields, withFieldName(structSchema("", true, []field{fName}), "notes"))
			return rec(key(t, 1), mustJSON(t, map[string]any{"schema": schema, "payload": map[string]any{"id": 1, "notes": map[string]any{"name": "x"}}}))
		},
		want: []string{"Unsupported source data type: STRUCT"},
	}, {
		name:     "a table that does not exist",
		override: map[string]string{"table.name.format": "nosuch"},
		record: func(t *testing.T) jdbcsink.Record {
			return rec(key(t, 1), flat(t, confluentFields, confluentRow(1)))
		},
		want: []string{`Table "`, `"."public"."nosuch" is missing and auto-creation is disabled`},
	}, {
		name: "a field with no column",
		record: func(t *testing.T) jdbcsink.Record {
			return rec(key(t, 1), flat(t, []field{fID, {name: "nickname", typ: "string"}}, map[string]any{"id": 1, "nickname": "A"}))
		},
		want: []string{`is missing fields ([SinkRecordField{schema=Schema{STRING}, name='nickname', isPrimaryKey=false}]) and auto-evolution is disabled`},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			conn, check := db(t)
			override := map[string]string{"max.retries": "0"}
			maps.Copy(override, c.override)
			s := confluent(t, conn, override)
			// One transaction per Put: the good record before the refused one is not
			// committed either.
			good := rec(key(t, 7), flat(t, confluentFields, confluentRow(7)))
			err := s.Put(ctx, []jdbcsink.Record{good, c.record(t)})
			wantErr(t, err, c.want...)
			t.Logf("refused: %v", err)
			if !errors.Is(err, jdbcsink.ErrTaskFailed) {
				t.Errorf("errors.Is(%v, ErrTaskFailed) = false", err)
			}
			var pe *pgconn.PgError
			if c.pgCode != "" && (!errors.As(err, &pe) || pe.Code != c.pgCode) {
				t.Errorf("want PostgreSQL error %s in the chain, got %v", c.pgCode, err)
			}
			if n := count(t, check); n != 0 {
				t.Errorf("%d rows after the refused Put; want none", n)
			}
		})
	}
}

// TestConfluentRetriesSQLErrorsThenFails: an SQLException rolls the whole batch back
// and is retriable until max.retries runs out.
func TestConfluentRetriesSQLErrorsThenFails(t *testing.T) {
	t.Parallel()
	conn, check := db(t)
	s := confluent(t, conn, map[string]string{"max.retries": "1"})
	bad := confluentRow(2)
	bad["meta"] = "not json"
	batch := []jdbcsink.Record{
		rec(key(t, 1), flat(t, confluentFields, confluentRow(1))),
		rec(key(t, 2), flat(t, confluentFields, bad)),
	}
	err := s.Put(ctx, batch)
	wantErr(t, err, "invalid input syntax for type json")
	if !errors.Is(err, jdbcsink.ErrRetriable) || errors.Is(err, jdbcsink.ErrTaskFailed) {
		t.Errorf("first failure %v; want ErrRetriable only", err)
	}
	if n := count(t, check); n != 0 {
		t.Errorf("%d rows after the rolled-back batch; want 0", n)
	}
	if err := s.Put(ctx, batch); !errors.Is(err, jdbcsink.ErrTaskFailed) {
		t.Errorf("after max.retries=1 the second failure is %v; want ErrTaskFailed", err)
	}
}
