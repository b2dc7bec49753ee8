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
