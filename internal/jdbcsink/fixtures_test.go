package jdbcsink_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/concord-sync/concord/internal/jdbcsink"
	"github.com/concord-sync/concord/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var ctx = context.Background()

// customersDDL is the typed table both sinks write into.
const customersDDL = `CREATE TABLE customers (
	id int PRIMARY KEY, name text, balance numeric(12,2), renewed_at timestamptz,
	born date, active boolean, meta jsonb, notes text, seen_at timestamp)`

// db gives the test a database with the customers table: one connection for the
// sink under test and one to look at the table with.
func db(t *testing.T) (sinkConn, check *pgx.Conn) {
	t.Helper()
	pg := testenv.Postgres(t)
	check = pg.Conn(t)
	if _, err := check.Exec(ctx, customersDDL); err != nil {
		t.Fatal(err)
	}
	return pg.Conn(t), check
}

// field is one field of a JsonConverter schema, as Debezium's PostgreSQL connector
// emits it.
type field struct {
	name, typ, logical string
	params             map[string]string
	required           bool
}

func (f field) schema() map[string]any {
	s := map[string]any{"type": f.typ, "optional": !f.required, "field": f.name}
	if f.logical != "" {
		s["name"] = f.logical
	}
	if f.params != nil {
		s["parameters"] = f.params
	}
	if f.logical == "org.apache.kafka.connect.data.Decimal" {
		s["version"] = 1
	}
	return s
}

// The customers columns as Debezium's PostgreSQL connector types them (default
// decimal.handling.mode=precise, time.precision.mode=adaptive).
var (
	fID        = field{name: "id", typ: "int32", required: true}
	fName      = field{name: "name", typ: "string"}
	fBalance   = field{name: "balance", typ: "bytes", logical: "org.apache.kafka.connect.data.Decimal", params: map[string]string{"scale": "2", "connect.decimal.precision": "12"}}
	fRenewedAt = field{name: "renewed_at", typ: "string", logical: "io.debezium.time.ZonedTimestamp"}
	fBorn      = field{name: "born", typ: "int32", logical: "io.debezium.time.Date"}
	fActive    = field{name: "active", typ: "boolean"}
	fMeta      = field{name: "meta", typ: "string", logical: "io.debezium.data.Json"}
	fNotes     = field{name: "notes", typ: "string"}
	fSeenAt    = field{name: "seen_at", typ: "int64", logical: "io.debezium.time.MicroTimestamp"}

	allFields = []field{fID, fName, fBalance, fRenewedAt, fBorn, fActive, fMeta, fNotes, fSeenAt}
)

func structSchema(name string, optional bool, fields []field) map[string]any {
	fs := make([]any, len(fields))
	for i, f := range fields {
		fs[i] = f.schema()
	}
	s := map[string]any{"type": "struct", "optional": optional, "fields": fs}
	if name != "" {
		s["name"] = name
	}
	return s
}

func withFieldName(s map[string]any, name string) map[string]any {
	s["field"] = name
	return s
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// key is the record key {"id": id} with its schema.
func key(t testing.TB, id int) []byte {
	return mustJSON(t, map[string]any{
		"schema":  structSchema("dbserver1.public.customers.Key", false, []field{fID}),
		"payload": map[string]any{"id": id},
	})
}

// envelope is a Debezium change event value: op with before and after rows of the
// given fields (nil rows are null).
func envelope(t testing.TB, op string, fields []field, before, after map[string]any) []byte {
	row := func(name string) map[string]any {
		return withFieldName(structSchema("dbserver1.public.customers.Value", true, fields), name)
	}
	schema := map[string]any{
		"type": "struct", "name": "dbserver1.public.customers.Envelope", "optional": false, "version": 1,
		"fields": []any{
			row("before"), row("after"),
			map[string]any{"type": "string", "optional": false, "field": "op"},
			map[string]any{"type": "int64", "optional": true, "field": "ts_ms"},
		},
	}
	payload := map[string]any{"before": nil, "after": nil, "op": op, "ts_ms": 1700000000000}
	if before != nil {
		payload["before"] = before
	}
	if after != nil {
		payload["after"] = after
	}
	return mustJSON(t, map[string]any{"schema": schema, "payload": payload})
}

// flat is a flat struct value (Debezium's ExtractNewRecordState, or any producer of
// rows) with its schema.
func flat(t testing.TB, fields []field, row map[string]any) []byte {
	return mustJSON(t, map[string]any{"schema": structSchema("customers.Value", false, fields), "payload": row})
}

// decimalBase64 is a Connect Decimal's JSON: the unscaled value's two's-complement
// big-endian bytes in Base64 ("1234.50" with scale 2 is 123450).
func decimalBase64(unscaled int64) string {
	i := big.NewInt(unscaled)
	b := i.Bytes()
	if len(b) == 0 || b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	if unscaled < 0 {
		n := len(b)
		m := new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), uint(8*n)), i)
		b = m.FillBytes(make([]byte, n))
	}
	return base64.StdEncoding.EncodeToString(b)
}

// rec is a record of the customers topic.
func rec(k, v []byte) jdbcsink.Record {
	return jdbcsink.Record{Topic: "customers", Key: k, Value: v}
}

// row reads a customer as text (NULL as "NULL"), in column order; "absent" when
// there is no such row.
func row(t *testing.T, c *pgx.Conn, id int) string {
	t.Helper()
	const q = `SELECT concat_ws('|', coalesce(name, 'NULL'), coalesce(balance::text, 'NULL'),
		coalesce(to_char(renewed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), 'NULL'),
		coalesce(born::text, 'NULL'), coalesce(active::text, 'NULL'), coalesce(meta::text, 'NULL'),
		coalesce(notes, 'NULL'), coalesce(seen_at::text, 'NULL'))
		FROM customers WHERE id = $1`
	var s string
	err := c.QueryRow(ctx, q, id).Scan(&s)
	if errors.Is(err, pgx.ErrNoRows) {
		return "absent"
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func count(t *testing.T, c *pgx.Conn) int {
	t.Helper()
	var n int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM customers`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// fullRow is a customer row in the JSON formats Debezium emits.
func fullRow(id int) map[string]any {
	return map[string]any{
		"id": id, "name": "Ada", "balance": decimalBase64(123450),
		"renewed_at": "2024-03-01T12:34:56.789012+01:00", "born": 19000, "active": true,
		"meta": `{"tier":"gold","n":1}`, "notes": "first", "seen_at": int64(1709296496123456),
	}
}

// fullRowText is fullRow(id) as row reads it back.
const fullRowText = `Ada|1234.50|2024-03-01T11:34:56.789012Z|2022-01-08|true|{"n": 1, "tier": "gold"}|first|2024-03-01 12:34:56.123456`

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Put succeeded; want an error containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q\nlacks %q", err, p)
		}
	}
}
