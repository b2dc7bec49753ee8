package world

import (
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/concord-sync/concord/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestPostgreSQLAgreesWithTheEmulation holds the world's model of PostgreSQL's
// assignment rules (toColumn, jsonbText) against a real server: each parameter, of
// the SQL type a JDBC sink binds it as, is inserted into a column of each type, and
// the server's refusal or stored value must be the emulation's.
func TestPostgreSQLAgreesWithTheEmulation(t *testing.T) {
	conn := testenv.Postgres(t).Conn(t)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, "SET TimeZone = 'UTC'"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		column string // PostgreSQL column type, as in Spec.Types
		param  bound
	}{
		{"numeric(12,2)", bound{sqlType: "numeric", text: "12.345"}},
		{"numeric(12,2)", bound{sqlType: "numeric", text: "-12.345"}},
		{"numeric(12,2)", bound{sqlType: "numeric", text: "12.344"}},
		{"numeric(12,2)", bound{sqlType: "int8", text: "7"}},
		{"numeric(12,2)", bound{sqlType: "float8", text: "0.5"}},
		{"numeric(4,2)", bound{sqlType: "numeric", text: "123.4"}},
		{"numeric(4,2)", bound{sqlType: "numeric", text: "99.995"}},
		{"numeric(12,2)", bound{sqlType: "varchar", text: "12.5"}},
		{PGInteger, bound{sqlType: "numeric", text: "2.5"}},
		{PGInteger, bound{sqlType: "numeric", text: "-2.5"}},
		{PGInteger, bound{sqlType: "int8", text: "3000000000"}},
		{PGBigint, bound{sqlType: "int8", text: "3000000000"}},
		{PGInteger, bound{sqlType: "varchar", text: "3"}},
		{PGTimestamptz, bound{sqlType: "timestamptz", text: "2026-12-01T10:00:00.1234567Z"}},
		{PGTimestamptz, bound{sqlType: "timestamp", text: "2026-12-01T10:00:00.5Z"}},
		{PGTimestamptz, bound{sqlType: "varchar", text: "2026-12-01T10:00:00Z"}},
		{PGTimestamptz, bound{sqlType: "int8", text: "1796119200000"}},
		{PGTimestamp, bound{sqlType: "timestamptz", text: "2026-12-01T10:00:00.25Z"}},
		{PGDate, bound{sqlType: "date", text: "1990-02-28"}},
		{PGDate, bound{sqlType: "timestamp", text: "2026-12-01T23:59:59Z"}},
		{PGDate, bound{sqlType: "varchar", text: "1990-02-28"}},
		{PGBoolean, bound{sqlType: "bool", text: "true"}},
		{PGBoolean, bound{sqlType: "varchar", text: "true"}},
		{PGBoolean, bound{sqlType: "int8", text: "1"}},
		{PGJSONB, bound{sqlType: "json", text: `{"bb":[2,3],"a":1,"ccc":{"z":null,"y":true}}`}},
		{PGJSONB, bound{sqlType: "json", text: `{"a":1,"a":2}`}},
		{PGJSONB, bound{sqlType: "json", text: `{"<b>&":"x < y & z > w","q":"\"\\\n"}`}}, // no HTML escapes, as PostgreSQL prints it
		{PGText, bound{sqlType: "varchar", text: "hello"}},
		{PGText, bound{sqlType: "int8", text: "7"}},
	}
	for i, tc := range cases {
		col, err := parsePGType(tc.column)
		if err != nil {
			t.Fatal(err)
		}
		want, wantErr := toColumn(col, tc.param)
		table := "t" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		if _, err := conn.Exec(ctx, "CREATE TABLE "+table+" (c "+tc.column+")"); err != nil {
			t.Fatal(err)
		}
		// The parameter is sent as text and given the bound SQL type, as pgjdbc
		// declares it in the Parse message (jsonb columns get the sink's cast).
		_, err = conn.Exec(ctx, "INSERT INTO "+table+" (c) VALUES ($1::"+tc.param.sqlType+")", tc.param.text)
		name := tc.param.sqlType + " " + tc.param.text + " into " + tc.column
		if err != nil || wantErr != nil {
			if (err == nil) != (wantErr == nil) || wantErr != nil && !errors.Is(wantErr, ErrRefused) {
				t.Errorf("%s: PostgreSQL says %v, the emulation %v", name, err, wantErr)
			}
			continue
		}
		var got string
		if err := conn.QueryRow(ctx, "SELECT c::text FROM "+table).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if !sameStored(col, got, want) {
			t.Errorf("%s: PostgreSQL stores %s, the emulation %s", name, got, want)
		}
	}
}

// sameStored compares PostgreSQL's text of a stored value with the emulation's
// canonical JSON of it, by meaning for numbers and times.
func sameStored(col pgType, pgText, canonical string) bool {
	var s string
	if err := json.Unmarshal([]byte(canonical), &s); err != nil {
		s = canonical // a number or boolean
	}
	switch col.name {
	case "numeric", PGInteger, PGBigint:
		a, okA := new(big.Rat).SetString(pgText)
		b, okB := new(big.Rat).SetString(s)
		return okA && okB && a.Cmp(b) == 0
	case PGTimestamptz, PGTimestamp:
		layout := "2006-01-02 15:04:05.999999"
		if col.name == PGTimestamptz {
			layout += "-07"
		}
		a, errA := time.Parse(layout, pgText)
		b, errB := time.Parse(time.RFC3339Nano, s)
		return errA == nil && errB == nil && a.Equal(b)
	}
	return strings.TrimSpace(pgText) == s
}

// TestPostgreSQLLogsToastedColumnsAsTheEmulationDoes holds Table.Upsert's TOAST rule
// against a real server's logical decoding (test_decoding, which shows what pgoutput
// sends Debezium): under REPLICA IDENTITY DEFAULT an UPDATE that does not assign a
// TOASTed column logs it as unchanged (Debezium's unavailable-value placeholder), and
// one that assigns it, even to the value it had, as a JDBC sink's upsert does, logs
// it in full. The resolver's recognition of a sink's rewrite leans on the second.
func TestPostgreSQLLogsToastedColumnsAsTheEmulationDoes(t *testing.T) {
	conn := testenv.Postgres(t).Conn(t)
	ctx := context.Background()
	big := strings.Repeat("0123456789abcdef", 1024) // 16 KiB, stored out of line
	for _, q := range []string{
		// Decoding reads only WAL flushed, which the server's synchronous_commit=off
		// leaves to the WAL writer.
		"SET synchronous_commit = on",
		"CREATE TABLE toasted (id int PRIMARY KEY, email text, notes text)",
		"ALTER TABLE toasted ALTER COLUMN notes SET STORAGE EXTERNAL", // no compression: out of line for sure
		"INSERT INTO toasted VALUES (1, 'a@x', '" + big + "')",
		"SELECT pg_create_logical_replication_slot('toast_test', 'test_decoding')",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q[:min(len(q), 60)], err)
		}
	}
	t.Cleanup(func() { _, _ = conn.Exec(context.Background(), "SELECT pg_drop_replication_slot('toast_test')") })
	logged := func(q string) string {
		t.Helper()
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q[:min(len(q), 60)], err)
		}
		var out []string
		rows, err := conn.Query(ctx, "SELECT data FROM pg_logical_slot_get_changes('toast_test', NULL, NULL)")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var d string
			if err := rows.Scan(&d); err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(d, "table ") {
				out = append(out, d)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if len(out) != 1 {
			t.Fatalf("%s logged %d changes, want 1", q[:min(len(q), 60)], len(out))
		}
		return out[0]
	}
	// A user's edit of another column: notes is logged as unchanged.
	if got := logged("UPDATE toasted SET email = 'b@x' WHERE id = 1"); !strings.Contains(got, "notes[text]:unchanged-toast-datum") {
		t.Errorf("an UPDATE not assigning notes logged %.120s, want notes unchanged", got)
	}
	// The sink's upsert of both columns, notes to the value it has: logged in full.
	got := logged("INSERT INTO toasted (id, email, notes) VALUES (1, 'b@x', '" + big + "') ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email, notes = EXCLUDED.notes")
	if strings.Contains(got, "unchanged-toast-datum") || !strings.Contains(got, big) {
		t.Errorf("an upsert assigning notes its own value logged %.120s…, want notes in full", got)
	}
	// The emulation agrees on both.
	tbl := NewTable(Spec{Name: "db", Table: "toasted", KeyColumn: "id", Columns: []string{"email", "notes"}, Toasted: []string{"notes"}}, true)
	tbl.Upsert("1", Row{"email": `"a@x"`, "notes": `"` + big + `"`}, 1, Cause{Kind: User})
	if c := tbl.Upsert("1", Row{"email": `"b@x"`}, 2, Cause{Kind: User}); c.After["notes"] != Unavailable {
		t.Errorf("the emulation's UPDATE not assigning notes shows %.20s, want the placeholder", c.After["notes"])
	}
	if c := tbl.Upsert("1", Row{"email": `"b@x"`, "notes": `"` + big + `"`}, 3, Cause{Kind: User}); c.After["notes"] == Unavailable {
		t.Errorf("the emulation's upsert assigning notes shows the placeholder, want the value")
	}
}
