package world

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/concord-sync/concord/codecs"
	"github.com/concord-sync/concord/internal/jdbcsink"
)

// PostgreSQL column types a table may have (Spec.Types); a column without one is text.
const (
	PGText        = "text"
	PGTimestamptz = "timestamptz"
	PGTimestamp   = "timestamp"
	PGDate        = "date"
	PGBoolean     = "boolean"
	PGJSONB       = "jsonb"
	PGInteger     = "integer"
	PGBigint      = "bigint"
	// numeric(P,S) is written with its precision and scale.
)

// ErrRefused is wrapped by the errors of values PostgreSQL refuses for a column: the
// sink's statement fails, and so does its task.
var ErrRefused = errors.New("world: PostgreSQL refuses the value")

// pgType is a parsed column type.
type pgType struct {
	name             string // one of the PG* constants, or "numeric"
	precision, scale int    // numeric only
}

func parsePGType(s string) (pgType, error) {
	switch s {
	case "", PGText:
		return pgType{name: PGText}, nil
	case PGTimestamptz, PGTimestamp, PGDate, PGBoolean, PGJSONB, PGInteger, PGBigint:
		return pgType{name: s}, nil
	}
	var p, sc int
	if _, err := fmt.Sscanf(s, "numeric(%d,%d)", &p, &sc); err != nil || p < 1 || sc < 0 || sc > p {
		return pgType{}, fmt.Errorf("world: column type %q: want text, numeric(P,S), timestamptz, timestamp, date, boolean, jsonb, integer or bigint", s)
	}
	return pgType{name: "numeric", precision: p, scale: sc}, nil
}

// bound is a parameter as pgjdbc sends it for the value a JDBC sink binds: the SQL
// type PostgreSQL sees it as, and its text.
type bound struct {
	sqlType string // varchar, numeric, timestamptz, timestamp, date, bool, int8, float8, json, bytea
	text    string
	null    bool
}

// bindDebezium is the parameter Debezium's JDBC sink binds for a Connect value: its
// type follows the field's logical name (debezium/debezium debezium-connector-jdbc
// src/main/java/io/debezium/connector/jdbc/type/: debezium/ZonedTimestampType casts
// to timestamptz, MicroTimestampType and TimestampType bind a timestamp, DateType a
// date, connect/ConnectDecimalType a BigDecimal, dialect/postgres/JsonType casts to
// json; a plain string is setString, varchar). toColumn then casts a string for a
// json, jsonb or uuid column, as the sink does by the column's type.
func bindDebezium(s *jdbcsink.Schema, v any) (bound, error) {
	if v == nil {
		return bound{null: true}, nil
	}
	switch s.Name {
	case "io.debezium.time.ZonedTimestamp":
		str, _ := v.(string)
		t, err := time.Parse(time.RFC3339Nano, str)
		if err != nil {
			return bound{}, fmt.Errorf("%w: %q is no ISO-8601 timestamp", ErrRefused, str)
		}
		return bound{sqlType: "timestamptz", text: t.UTC().Format(time.RFC3339Nano)}, nil
	case "io.debezium.time.Timestamp", "io.debezium.time.MicroTimestamp", "io.debezium.time.NanoTimestamp":
		n, _ := v.(int64)
		var t time.Time
		switch s.Name {
		case "io.debezium.time.Timestamp":
			t = time.UnixMilli(n)
		case "io.debezium.time.MicroTimestamp":
			t = time.UnixMicro(n)
		default:
			t = time.Unix(0, n)
		}
		return bound{sqlType: "timestamp", text: t.UTC().Format(time.RFC3339Nano)}, nil
	case "io.debezium.time.Date":
		n, _ := v.(int32)
		return bound{sqlType: "date", text: time.Unix(int64(n)*86400, 0).UTC().Format(time.DateOnly)}, nil
	case jdbcsink.DateName:
		t, _ := v.(time.Time)
		return bound{sqlType: "date", text: t.UTC().Format(time.DateOnly)}, nil
	case jdbcsink.TimestampName:
		t, _ := v.(time.Time)
		return bound{sqlType: "timestamp", text: t.UTC().Format(time.RFC3339Nano)}, nil
	case jdbcsink.DecimalName:
		d, _ := v.(jdbcsink.Decimal)
		return bound{sqlType: "numeric", text: d.String()}, nil
	case "io.debezium.data.Json":
		str, _ := v.(string)
		return bound{sqlType: "json", text: str}, nil
	}
	switch x := v.(type) {
	case string:
		return bound{sqlType: "varchar", text: x}, nil
	case bool:
		return bound{sqlType: "bool", text: strconv.FormatBool(x)}, nil
	case int8:
		return bound{sqlType: "int8", text: strconv.FormatInt(int64(x), 10)}, nil
	case int16:
		return bound{sqlType: "int8", text: strconv.FormatInt(int64(x), 10)}, nil
	case int32:
		return bound{sqlType: "int8", text: strconv.FormatInt(int64(x), 10)}, nil
	case int64:
		return bound{sqlType: "int8", text: strconv.FormatInt(x, 10)}, nil
	case float32:
		return bound{sqlType: "float8", text: strconv.FormatFloat(float64(x), 'g', -1, 32)}, nil
	case float64:
		return bound{sqlType: "float8", text: strconv.FormatFloat(x, 'g', -1, 64)}, nil
	case []byte:
		return bound{sqlType: "bytea", text: base64.StdEncoding.EncodeToString(x)}, nil
	}
	return bound{}, fmt.Errorf("%w: a %s value (%T) has no binding", ErrRefused, s.Type, v)
}

// toColumn is what PostgreSQL stores for a parameter assigned to a column of type
// col, as canonical JSON (codecs.Column), or the refusal PostgreSQL gives: a
// parameter's type must have an assignment cast to the column's (a varchar into a
// numeric, timestamptz, date or boolean column is refused: "column ... is of type
// numeric but expression is of type character varying"); a numeric is rounded to the
// column's scale (half away from zero) and refused when it then has too many digits
// ("numeric field overflow"); timestamps keep microseconds.
func toColumn(col pgType, b bound) (string, error) {
	if b.null {
		return Null, nil
	}
	refuse := func() (string, error) {
		return "", fmt.Errorf("%w: column is of type %s but expression is of type %s", ErrRefused, col, b.sqlType)
	}
	switch col.name {
	case PGText:
		return quoteString(b.text), nil
	case PGJSONB:
		if b.sqlType != "varchar" && b.sqlType != "json" {
			return refuse()
		}
		var doc any
		dec := json.NewDecoder(strings.NewReader(b.text))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			return "", fmt.Errorf("%w: invalid input syntax for type json: %.40q", ErrRefused, b.text)
		}
		return quoteString(jsonbText(doc)), nil
	case "numeric", PGInteger, PGBigint:
		if b.sqlType != "numeric" && b.sqlType != "int8" && b.sqlType != "float8" {
			return refuse()
		}
		return col.number(b.text)
	case PGTimestamptz, PGTimestamp:
		if b.sqlType != "timestamptz" && b.sqlType != "timestamp" && b.sqlType != "date" {
			return refuse()
		}
		t, err := parseTime(b.text)
		if err != nil {
			return "", err
		}
		return quoteString(t.Round(time.Microsecond).Format(time.RFC3339Nano)), nil
	case PGDate:
		if b.sqlType != "date" && b.sqlType != "timestamp" && b.sqlType != "timestamptz" {
			return refuse()
		}
		t, err := parseTime(b.text)
		if err != nil {
			return "", err
		}
		return quoteString(t.Format(time.DateOnly)), nil
	case PGBoolean:
		if b.sqlType != "bool" {
			return refuse()
		}
		return b.text, nil
	}
	return refuse()
}

func (col pgType) String() string {
	if col.name == "numeric" {
		return fmt.Sprintf("numeric(%d,%d)", col.precision, col.scale)
	}
	return col.name
}

func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: invalid input syntax for type timestamp: %q", ErrRefused, s)
	}
	return t, nil
}

// number stores a number in a numeric, integer or bigint column: rounded to the
// scale (0 for the integer types) half away from zero, as PostgreSQL's numeric
// assignment does, then checked against the precision or the integer's range. The
// canonical value of a numeric is its shortest exact decimal text (as concord's
// decoder gives a Decimal); of an integer, the JSON number.
func (col pgType) number(text string) (string, error) {
	r, ok := new(big.Rat).SetString(text)
	if !ok {
		return "", fmt.Errorf("%w: invalid input syntax for type numeric: %q", ErrRefused, text)
	}
	scale := col.scale
	if col.name != "numeric" {
		scale = 0
	}
	ten := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)
	x := new(big.Rat).Mul(r, new(big.Rat).SetInt(ten))
	// Round half away from zero: add ±1/2 and truncate towards zero.
	half := big.NewRat(1, 2)
	if x.Sign() < 0 {
		half.Neg(half)
	}
	x.Add(x, half)
	unscaled := new(big.Int).Quo(x.Num(), x.Denom())
	switch col.name {
	case "numeric":
		if digits := len(new(big.Int).Abs(unscaled).String()); unscaled.Sign() != 0 && digits-scale > col.precision-scale {
			return "", fmt.Errorf("%w: numeric field overflow (precision %d, scale %d): %s", ErrRefused, col.precision, scale, text)
		}
		return quoteString(decimalText(unscaled, scale)), nil
	case PGInteger:
		if !unscaled.IsInt64() || unscaled.Int64() < -1<<31 || unscaled.Int64() > 1<<31-1 {
			return "", fmt.Errorf("%w: integer out of range: %s", ErrRefused, text)
		}
	default:
		if !unscaled.IsInt64() {
			return "", fmt.Errorf("%w: bigint out of range: %s", ErrRefused, text)
		}
	}
	return unscaled.String(), nil
}

// decimalText is unscaled×10^-scale in its shortest exact form ("12.5", "-0.01", "3").
func decimalText(unscaled *big.Int, scale int) string {
	digits := new(big.Int).Abs(unscaled).String()
	sign := ""
	if unscaled.Sign() < 0 {
		sign = "-"
	}
	if scale > 0 {
		if pad := scale - len(digits) + 1; pad > 0 {
			digits = strings.Repeat("0", pad) + digits
		}
		digits = digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
		digits = strings.TrimRight(strings.TrimRight(digits, "0"), ".")
	}
	if digits == "0" {
		sign = ""
	}
	return sign + digits
}

// quoteString returns s as canonical JSON (codecs.Canonicalize: concord's escaping).
func quoteString(s string) string {
	b, _ := json.Marshal(s) // a string always encodes
	canon, err := codecs.Canonicalize(b)
	if err != nil {
		return string(b)
	}
	return string(canon)
}

// jsonbText is how PostgreSQL prints a jsonb value (and so what Debezium sends): keys
// ordered by length, then bytes, the last of duplicates kept (a decoded map already
// has), ", " and ": " between items (src/backend/utils/adt/jsonb.c, JsonbToCString;
// jsonb_util.c, lengthCompareJsonbString).
func jsonbText(v any) string {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int {
			if len(a) != len(b) {
				return len(a) - len(b)
			}
			return strings.Compare(a, b)
		})
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = string(quote(k)) + ": " + jsonbText(x[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = jsonbText(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case json.Number:
		return x.String()
	case string:
		return string(quote(x)) // escape_json in src/backend/utils/adt/json.c: no HTML escapes
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}
