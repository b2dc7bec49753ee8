package jdbcsink_test

import (
	"errors"
	"maps"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/concord-sync/concord/internal/jdbcsink"
)

// debeziumProps is a typical Debezium JDBC sink configuration for the customers
// topic.
var debeziumProps = map[string]string{
	"connector.class":        "io.debezium.connector.jdbc.JdbcSinkConnector",
	"insert.mode":            "upsert",
	"primary.key.mode":       "record_key",
	"primary.key.fields":     "id",
	"delete.enabled":         "true",
	"collection.name.format": "${topic}",
	"schema.evolution":       "none",
}

func debezium(t *testing.T, conn *pgx.Conn, override map[string]string) *jdbcsink.DebeziumSink {
	t.Helper()
	props := maps.Clone(debeziumProps)
	maps.Copy(props, override)
	s, err := jdbcsink.NewDebeziumSink(ctx, conn, props)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDebeziumWritesEachTypeAsPostgreSQLReadsIt(t *testing.T) {
	t.Parallel()
	conn, check := db(t)
	s := debezium(t, conn, nil)
	if err := s.Put(ctx, []jdbcsink.Record{rec(key(t, 1), envelope(t, "c", allFields, nil, fullRow(1)))}); err != nil {
		t.Fatal(err)
	}
	// Decimal from Base64 with its scale, ZonedTimestamp moved to UTC, Date from epoch
	// days, Json cast into jsonb, MicroTimestamp as a timestamp in UTC.
	if got := row(t, check, 1); got != fullRowText {
		t.Errorf("row 1 =\n%s\nwant\n%s", got, fullRowText)
	}
}

func TestDebeziumUpsertWritesOnlyTheRecordsFields(t *testing.T) {
	t.Parallel()
	conn, check := db(t)
	s := debezium(t, conn, nil)
	if err := s.Put(ctx, []jdbcsink.Record{rec(key(t, 1), envelope(t, "r", allFields, nil, fullRow(1)))}); err != nil {
		t.Fatal(err)
	}
	// An update whose row has only id and name: ON CONFLICT DO UPDATE SET name only.
	partial := []field{fID, fName}
	if err := s.Put(ctx, []jdbcsink.Record{rec(key(t, 1), envelope(t, "u", partial, nil, map[string]any{"id": 1, "name": "Grace"}))}); err != nil {
		t.Fatal(err)
	}
	want := "Grace" + fullRowText[len("Ada"):]
	if got := row(t, check, 1); got != want {
		t.Errorf("after a name-only upsert row 1 =\n%s\nwant\n%s", got, want)
	}
	// A key-only row: ON CONFLICT DO NOTHING leaves the row as it is...
	keyOnly := []field{fID}
	if err := s.Put(ctx, []jdbcsink.Record{rec(key(t, 1), envelope(t, "u", keyOnly, nil, map[string]any{"id": 1}))}); err != nil {
		t.Fatal(err)
	}
	if got := row(t, check, 1); got != want {
		t.Errorf("after a key-only upsert row 1 =\n%s\nwant it unchanged", got)
	}
	// ...and inserts a new one with every other column NULL.
	if err := s.Put(ctx, []jdbcsink.Record{rec(key(t, 2), envelope(t, "c", keyOnly, nil, map[string]any{"id": 2}))}); err != nil {
		t.Fatal(err)
	}
	if got, want := row(t, check, 2), "NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL"; got != want {
		t.Errorf("key-only insert row 2 = %s; want %s", got, want)
	}
}

func TestDebeziumDeletes(t *testing.T) {
	t.Parallel()
	conn, check := db(t)
	s := debezium(t, conn, nil)
	err := s.Put(ctx, []jdbcsink.Record{
		rec(key(t, 1), envelope(t, "c", allFields, nil, fullRow(1))),
		rec(key(t, 2), envelope(t, "c", allFields, nil, fullRow(2))),
		rec(key(t, 3), envelope(t, "c", allFields, nil, fullRow(3))),
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Put(ctx, []jdbcsink.Record{
		rec(key(t, 1), envelope(t, "d", allFields, fullRow(1), nil)), // op d: DELETE by key
		rec(key(t, 2), nil), // tombstone: DELETE by key
		rec(key(t, 9), envelope(t, "d", allFields, fullRow(9), nil)), // no such row: deletes nothing, no error
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[int]string{1: "absent", 2: "absent", 3: fullRowText} {
		if got := row(t, check, id); got != want {
			t.Errorf("row %d = %s; want %s", id, got, want)
		}
	}

	// With delete.enabled=false both are skipped, silently.
	kept := debezium(t, conn, map[string]string{"delete.enabled": "false"})
	if err := kept.Put(ctx, []jdbcsink.Record{rec(key(t, 3), envelope(t, "d", allFields, fullRow(3), nil)), rec(key(t, 3), nil)}); err != nil {
		t.Fatal(err)
	}
	if got := row(t, check, 3); got != fullRowText {
		t.Errorf("with deletes disabled row 3 = %s; want it kept", got)
	}
}

// TestDebeziumRefusals shows what the real sink refuses, each with its message, and
// that a refused Put leaves the table as it was.
func TestDebeziumRefusals(t *testing.T) {
	t.Parallel()
	asString := func(f field) field { f.typ, f.logical, f.params = "string", "", nil; return f }
	cases := []struct {
		name     string
		override map[string]string
		record   func(t *testing.T) jdbcsink.Record
		want     []string
		pgCode   string // the PostgreSQL SQLSTATE, when the server refused it
	}{{
		name: "schemaless value under schemas.enable=true",
		record: func(t *testing.T) jdbcsink.Record {
			return rec(key(t, 1), mustJSON(t, map[string]any{"id": 1, "name": "Ada"}))
		},
		want: []string{"Tolerance exceeded in error handler", `JsonConverter with schemas.enable requires "schema" and "payload" fields and may not contain additional fields. If you are trying to deserialize plain JSON data, set schemas.enable=false in your converter configuration.`},
	}, {
		name:     "schemaless value under schemas.enable=false",
		override: map[string]string{"value.converter.schemas.enable": "false"},
		record: func(t *testing.T) jdbcsink.Record {
			return rec(key(t, 1), mustJSON(t, map[string]any{"id": 1, "name": "Ada"}))
		},
		want: []string{`NullPointerException: Cannot invoke "org.apache.kafka.connect.data.Struct.schema()" because "data" is null`},
	}, {
		name:     "null key schema under record_key",
		override: map[string]string{"key.converter.schemas.enable": "false"},
		record: func(t *testing.T) jdbcsink.Record {
			return rec([]byte(`{"id":1}`), envelope(t, "c", allFields, nil, fullRow(1)))
		},
		want: []string{"Configured primary key mode 'record_key' cannot have null schema"},
	}, {
		name: "plain string into numeric",
		record: func(t *testing.T) jdbcsink.Record {
			return rec(key(t, 1), envelope(t, "c", []field{fID, asString(fBalance)}, nil, map[string]any{"id": 1, "balance": "1234.50"}))
		},
		want:   []string{"Failed to flush records for table 'customers'", `column "balance" is of type numeric but expression is of type character varying`},
		pgCode: "42804",
	}, {
		name: "plain string into timestamptz",
		record: func(t *testing.T) jdbcsink.Record {
			return rec(key(t, 1), envelope(t, "c", []field{fID, asString(fRenewedAt)}, nil, map[string]any{"id": 1, "renewed_at": "2024-03-01T12:34:56Z"}))
		},
		want:   []string{`column "renewed_at" is of type timestamp with time zone but expression is of type character varying`},
		pgCode: "42804",
	}, {
		name: "plain string that is not JSON into jsonb",
		record: func(t *testing.T) jdbcsink.Record {
			return rec(key(t, 1), envelope(t, "c", []field{fID, asString(fMeta)}, nil, map[string]any{"id": 1, "meta": "gold"}))
		},
		want:   []string{"invalid input syntax for type json"},
		pgCode: "22P02",
	}, {
		name: "int64 epoch micros without the MicroTimestamp name into timestamp",
		record: func(t *testing.T) jdbcsink.Record {
			plain := fSeenAt
			plain.logical = ""
			return rec(key(t, 1), envelope(t, "c", []field{fID, plain}, nil, map[string]any{"id": 1, "seen_at": 1709296496123456}))
		},
		want:   []string{`column "seen_at" is of type timestamp without time zone but expression is of type bigint`},
		pgCode: "42804",
	}, {
		name: "ZonedTimestamp that does not parse",
		record: func(t *testing.T) jdbcsink.Record {
			return rec(key(t, 1), envelope(t, "c", []field{fID, fRenewedAt}, nil, map[string]any{"id": 1, "renewed_at": "2024-02-30T00:00:00Z"}))
		},
		want: []string{"Failed to flush records for table 'customers'", "Text '2024-02-30T00:00:00Z' could not be parsed"},
	}, {
		name: "a field with no column",
		record: func(t *testing.T) jdbcsink.Record {
			return rec(key(t, 1), envelope(t, "c", []field{fID, {name: "nickname", typ: "string"}}, nil, map[string]any{"id": 1, "nickname": "A"}))
		},
		want: []string{"Error while checking and applying table changes for collection 'CollectionId{realm='null', namespace='null', name='customers'}'", "Cannot alter table customers because schema evolution is disabled"},
	}, {
		name:     "a table that does not exist",
		override: map[string]string{"collection.name.format": "public.nosuch"},
		record: func(t *testing.T) jdbcsink.Record {
			return rec(key(t, 1), envelope(t, "c", allFields, nil, fullRow(1)))
		},
		want: []string{"Could not find table: public.nosuch"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			conn, check := db(t)
			s := debezium(t, conn, c.override)
			// The refused record comes second, after a good one of another schema
			// (so of another flush), in the same Put.
			good := rec(key(t, 7), envelope(t, "c", allFields, nil, fullRow(7)))
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
			if got := row(t, check, 1); got != "absent" {
				t.Errorf("row 1 = %s; want none written", got)
			}
			if err := s.Put(ctx, []jdbcsink.Record{good}); !errors.Is(err, jdbcsink.ErrTaskFailed) {
				t.Errorf("Put after a failure = %v; want the task to stay failed", err)
			}
		})
	}
}

// TestDebeziumAJSONObjectInAStringFieldIsNull: JsonConverter reads a STRING field
// with textValue(), which is null for anything but a JSON string, so the column is
// written NULL; a required field refuses it instead.
func TestDebeziumAJSONObjectInAStringFieldIsNull(t *testing.T) {
	t.Parallel()
	conn, check := db(t)
	s := debezium(t, conn, nil)
	r := fullRow(1)
	r["notes"] = map[string]any{"text": "first"}
	if err := s.Put(ctx, []jdbcsink.Record{rec(key(t, 1), envelope(t, "c", allFields, nil, r))}); err != nil {
		t.Fatal(err)
	}
	want := `Ada|1234.50|2024-03-01T11:34:56.789012Z|2022-01-08|true|{"n": 1, "tier": "gold"}|NULL|2024-03-01 12:34:56.123456`
	if got := row(t, check, 1); got != want {
		t.Errorf("row 1 =\n%s\nwant\n%s", got, want)
	}

	required := fNotes
	required.required = true
	err := s.Put(ctx, []jdbcsink.Record{rec(key(t, 2), envelope(t, "c", []field{fID, required}, nil, map[string]any{"id": 2, "notes": map[string]any{}}))})
	wantErr(t, err, `Invalid value: null used for required field: "notes", schema type: STRING`)
}

// TestDebeziumFailedFlushCommitsNothingOfItself: records of one schema are one flush,
// one transaction: the bad one rolls back the good ones before it.
func TestDebeziumFailedFlushCommitsNothingOfItself(t *testing.T) {
	t.Parallel()
	conn, check := db(t)
	s := debezium(t, conn, nil)
	bad := fullRow(3)
	bad["meta"] = "not json"
	err := s.Put(ctx, []jdbcsink.Record{
		rec(key(t, 1), envelope(t, "c", allFields, nil, fullRow(1))),
		rec(key(t, 2), envelope(t, "c", allFields, nil, fullRow(2))),
		rec(key(t, 3), envelope(t, "c", allFields, nil, bad)),
	})
	wantErr(t, err, "Batch entry 2", "invalid input syntax for type json")
	if n := count(t, check); n != 0 {
		t.Errorf("%d rows after the failed flush; want 0", n)
	}
}

// TestDebeziumFlushesBeforeAFailureStayCommitted: a Put is not one transaction. A
// delete flushes the upserts buffered before it, an upsert the deletes, so what came
// before the failing flush is committed (and would be written again on redelivery).
func TestDebeziumFlushesBeforeAFailureStayCommitted(t *testing.T) {
	t.Parallel()
	conn, check := db(t)
	s := debezium(t, conn, nil)
	bad := fullRow(2)
	bad["meta"] = "not json"
	err := s.Put(ctx, []jdbcsink.Record{
		rec(key(t, 1), envelope(t, "c", allFields, nil, fullRow(1))),
		rec(key(t, 5), nil), // flushes the upsert of 1
		rec(key(t, 2), envelope(t, "c", allFields, nil, bad)),
	})
	wantErr(t, err, "invalid input syntax for type json")
	if got := row(t, check, 1); got != fullRowText {
		t.Errorf("row 1 = %s; want it committed by the flush before the failure", got)
	}
	if got := row(t, check, 2); got != "absent" {
		t.Errorf("row 2 = %s; want it rolled back", got)
	}
}

func TestDebeziumFlattenedValues(t *testing.T) {
	t.Parallel()
	conn, check := db(t)
	s := debezium(t, conn, nil)
	// ExtractNewRecordState's output: the row itself, not an envelope.
	if err := s.Put(ctx, []jdbcsink.Record{rec(key(t, 1), flat(t, allFields, fullRow(1)))}); err != nil {
		t.Fatal(err)
	}
	if got := row(t, check, 1); got != fullRowText {
		t.Errorf("row 1 =\n%s\nwant\n%s", got, fullRowText)
	}
	// A null value with a schema (delete.handling.mode=none) is a delete.
	nullValue := mustJSON(t, map[string]any{"schema": structSchema("customers.Value", true, allFields), "payload": nil})
	if err := s.Put(ctx, []jdbcsink.Record{rec(key(t, 1), nullValue)}); err != nil {
		t.Fatal(err)
	}
	if got := row(t, check, 1); got != "absent" {
		t.Errorf("row 1 = %s; want it deleted", got)
	}
}

// TestDebeziumCastsPlainStringsIntoJSONColumns: getQueryBindingWithValueCast casts a
// STRING field to the column's type when the column is json, jsonb or uuid, so a
// plain string (no io.debezium.data.Json name) holding JSON lands in jsonb; any other
// column type gets a bare varchar parameter (see TestDebeziumRefusals).
func TestDebeziumCastsPlainStringsIntoJSONColumns(t *testing.T) {
	t.Parallel()
	conn, check := db(t)
	s := debezium(t, conn, nil)
	plain := fMeta
	plain.logical = ""
	if err := s.Put(ctx, []jdbcsink.Record{rec(key(t, 1), envelope(t, "c", []field{fID, plain}, nil, map[string]any{"id": 1, "meta": `{"a": [1, 2]}`}))}); err != nil {
		t.Fatal(err)
	}
	if got, want := row(t, check, 1), `NULL|NULL|NULL|NULL|NULL|{"a": [1, 2]}|NULL|NULL`; got != want {
		t.Errorf("row 1 = %s; want %s", got, want)
	}
}
