package codecs

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
)

// Connect schema types as JsonConverter names them in a JSON schema (apache/kafka
// connect/json/src/main/java/org/apache/kafka/connect/json/JsonSchema.java: FLOAT32 is
// "float", FLOAT64 "double").
const (
	TypeInt8    = "int8"
	TypeInt16   = "int16"
	TypeInt32   = "int32"
	TypeInt64   = "int64"
	TypeFloat32 = "float"  // JsonConverter's name of FLOAT32
	TypeFloat64 = "double" // JsonConverter's name of FLOAT64
	TypeBoolean = "boolean"
	TypeString  = "string"
	TypeBytes   = "bytes"
	TypeStruct  = "struct"
)

// Connect and Debezium logical type names that apply values are converted to.
const (
	NameDecimal        = "org.apache.kafka.connect.data.Decimal"
	NameVarScale       = "io.debezium.data.VariableScaleDecimal"
	NameTimestamp      = "io.debezium.time.Timestamp"
	NameConnectTime    = "org.apache.kafka.connect.data.Timestamp"
	NameMicroTimestamp = "io.debezium.time.MicroTimestamp"
	NameNanoTimestamp  = "io.debezium.time.NanoTimestamp"
	NameZonedTimestamp = "io.debezium.time.ZonedTimestamp"
	NameDate           = "io.debezium.time.Date"
	NameConnectDate    = "org.apache.kafka.connect.data.Date"
	NameJSON           = "io.debezium.data.Json"
)

// decimalPrecisionParam is the schema parameter Debezium gives a Decimal's precision in.
const decimalPrecisionParam = "connect.decimal.precision"

// ColumnType is the Connect schema of one column of a target system's table: what an
// apply of that column must carry for the sink to bind it to the column's SQL type.
// It is learned from the Connect schemas of the system's own change events, or set
// with systems.<s>.columns. The zero value means "unknown": the type is then inferred
// from the JSON value (see InferType).
type ColumnType struct {
	Type      string // Connect type, e.g. int64, string
	Name      string // logical name, e.g. org.apache.kafka.connect.data.Decimal; "" for none
	Scale     int    // Decimal: the scale parameter
	Precision int    // Decimal: connect.decimal.precision, 0 when unknown
}

// Known reports whether t was learned or configured (not the zero value).
func (t ColumnType) Known() bool { return t.Type != "" }

// String is the type in the configuration's syntax (see ParseColumnType).
func (t ColumnType) String() string {
	for _, alias := range logicalAliases {
		if a := columnAliases[alias]; a.Type == t.Type && a.Name == t.Name && t.Name != "" {
			return alias
		}
	}
	switch {
	case t.Name == NameDecimal && t.Precision > 0:
		return fmt.Sprintf("decimal(%d,%d)", t.Precision, t.Scale)
	case t.Name == NameDecimal:
		return fmt.Sprintf("decimal(%d)", t.Scale)
	case t.Name != "":
		return t.Type + ":" + t.Name
	}
	return t.Type
}

// columnAliases are the configuration's names for the common column types, with the
// SQL types they stand for in the README.
var columnAliases = map[string]ColumnType{
	"string":                 {Type: TypeString},
	"boolean":                {Type: TypeBoolean},
	"int8":                   {Type: TypeInt8},
	"int16":                  {Type: TypeInt16},
	"int32":                  {Type: TypeInt32},
	"int64":                  {Type: TypeInt64},
	"float":                  {Type: TypeFloat32},
	"double":                 {Type: TypeFloat64},
	"float32":                {Type: TypeFloat32},
	"float64":                {Type: TypeFloat64},
	"bytes":                  {Type: TypeBytes},
	"json":                   {Type: TypeString, Name: NameJSON},
	"date":                   {Type: TypeInt32, Name: NameDate},
	"timestamp":              {Type: TypeInt64, Name: NameTimestamp},
	"micro_timestamp":        {Type: TypeInt64, Name: NameMicroTimestamp},
	"nano_timestamp":         {Type: TypeInt64, Name: NameNanoTimestamp},
	"zoned_timestamp":        {Type: TypeString, Name: NameZonedTimestamp},
	"connect_timestamp":      {Type: TypeInt64, Name: NameConnectTime},
	"connect_date":           {Type: TypeInt32, Name: NameConnectDate},
	"variable_scale_decimal": {Type: TypeStruct, Name: NameVarScale},
}

// logicalAliases are the aliases of logical types, in the order String tries them.
var logicalAliases = []string{
	"json", "date", "timestamp", "micro_timestamp", "nano_timestamp", "zoned_timestamp",
	"connect_timestamp", "connect_date", "variable_scale_decimal",
}

// ColumnTypeNames lists the configuration's type names, for error messages.
func ColumnTypeNames() string {
	names := make([]string, 0, len(columnAliases)+1)
	for n := range columnAliases {
		names = append(names, n)
	}
	names = append(names, "decimal(P,S)", "decimal(S)", "TYPE:LOGICAL.NAME")
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// ParseColumnType reads a column type as written in systems.<s>.columns: one of the
// aliases (string, int64, json, zoned_timestamp, ...), decimal(P,S) or decimal(S), or
// a Connect type with a logical name, "int64:io.debezium.time.MicroTimestamp".
func ParseColumnType(s string) (ColumnType, error) {
	s = strings.TrimSpace(s)
	if t, ok := columnAliases[s]; ok {
		return t, nil
	}
	if inner, ok := strings.CutPrefix(s, "decimal("); ok {
		return parseDecimalType(s, inner)
	}
	if typ, name, ok := strings.Cut(s, ":"); ok && connectType(typ) && name != "" {
		return ColumnType{Type: typ, Name: name}, nil
	}
	return ColumnType{}, fmt.Errorf("unknown column type %q; want one of %s", s, ColumnTypeNames())
}

func parseDecimalType(s, inner string) (ColumnType, error) {
	inner, ok := strings.CutSuffix(inner, ")")
	if !ok {
		return ColumnType{}, fmt.Errorf("column type %q: want decimal(P,S) or decimal(S)", s)
	}
	t := ColumnType{Type: TypeBytes, Name: NameDecimal}
	p, sc, two := strings.Cut(inner, ",")
	if !two {
		p, sc = "", p
	}
	scale, err := strconv.Atoi(strings.TrimSpace(sc))
	if err != nil || scale < 0 || scale > maxDecimalScale {
		return ColumnType{}, fmt.Errorf("column type %q: the scale must be an integer 0..%d", s, maxDecimalScale)
	}
	t.Scale = scale
	if two {
		prec, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || prec < 1 || prec < scale {
			return ColumnType{}, fmt.Errorf("column type %q: the precision must be an integer at least 1 and at least the scale", s)
		}
		t.Precision = prec
	}
	return t, nil
}

func connectType(s string) bool {
	switch s {
	case TypeInt8, TypeInt16, TypeInt32, TypeInt64, TypeFloat32, TypeFloat64, TypeBoolean, TypeString, TypeBytes, TypeStruct:
		return true
	}
	return false
}

// InferType is the type of a column whose type is unknown, from its canonical value:
// int64 for integers, float64 for other numbers, boolean, and string for everything
// else (objects and arrays then travel as their JSON text: as a "string" field a JSON
// object would become NULL in Kafka's JsonConverter). A number that neither int64
// nor float64 holds exactly (an integer beyond int64, a fraction with more digits
// than a float64 keeps, a magnitude beyond its range) is a Decimal of its own scale:
// the sink would otherwise refuse it or round it through a double.
func InferType(v []byte) ColumnType {
	if len(v) == 0 {
		return ColumnType{Type: TypeString}
	}
	switch v[0] {
	case 't', 'f':
		return ColumnType{Type: TypeBoolean}
	case '"', 'n', '{', '[':
		return ColumnType{Type: TypeString}
	}
	if !bytes.ContainsAny(v, ".eE") {
		if _, err := parseInt(v); err == nil {
			return ColumnType{Type: TypeInt64}
		}
		return exactDecimal
	}
	if !exactFloat64(v) {
		return exactDecimal
	}
	return ColumnType{Type: TypeFloat64}
}

// exactDecimal is the type of a number that only a decimal holds exactly.
var exactDecimal = ColumnType{Type: TypeBytes, Name: NameDecimal, Scale: ScaleOfValue}

// exactFloat64 reports whether the JSON number text v survives a float64: the double
// nearest to it prints back (shortest form) as the same number. Up to 15 significant
// digits always do, within the range of normal doubles.
func exactFloat64(v []byte) bool {
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil {
		return false // beyond the range
	}
	if f == 0 {
		return !hasNonZeroDigit(v) // else it underflowed
	}
	if significantDigits(v) <= 15 && math.Abs(f) >= 0x1p-1022 {
		return true
	}
	back := strconv.AppendFloat(make([]byte, 0, 32), f, 'g', -1, 64)
	x, ok1 := new(big.Rat).SetString(string(v))
	y, ok2 := new(big.Rat).SetString(string(back))
	return ok1 && ok2 && x.Cmp(y) == 0
}

// significantDigits counts the digits of a number's mantissa from its first non-zero
// one (trailing zeros included).
func significantDigits(v []byte) int {
	n, started := 0, false
	for _, c := range v {
		switch {
		case c == 'e' || c == 'E':
			return n
		case c >= '1' && c <= '9', c == '0' && started:
			started = true
			n++
		}
	}
	return n
}

// hasNonZeroDigit reports whether a number's mantissa has a digit other than 0.
func hasNonZeroDigit(v []byte) bool {
	for _, c := range v {
		if c == 'e' || c == 'E' {
			return false
		}
		if c >= '1' && c <= '9' {
			return true
		}
	}
	return false
}

// ErrTypeMismatch is wrapped by the errors of values a target column cannot hold
// without loss (a scale or range it does not have, text that is not a number, ...).
var ErrTypeMismatch = errors.New("type mismatch")

func mismatch(t ColumnType, v []byte, why string) error {
	return fmt.Errorf("%w: %.60s cannot be written to a %s column: %s", ErrTypeMismatch, v, t, why)
}

// ForConfluent is the type to send a column of type t as to the Confluent JDBC sink,
// which knows Connect's own logical types only (Decimal, Date, Time, Timestamp) and
// binds any other by its plain schema type (confluentinc/kafka-connect-jdbc
// src/main/java/io/confluent/connect/jdbc/dialect/GenericDatabaseDialect.java,
// maybeBindLogical): Debezium's timestamps become a Connect Timestamp (milliseconds:
// a finer value is a type mismatch), its Date a Connect Date, and a
// VariableScaleDecimal, a struct that sink cannot bind, a Decimal of the value's own
// scale (ScaleOfValue). Text types
// (JSON, UUID) stay strings: its PostgreSQL dialect casts a parameter for a json,
// jsonb or uuid column (PostgreSqlDatabaseDialect.java, valueTypeCast).
func (t ColumnType) ForConfluent() ColumnType {
	switch t.Name {
	case NameZonedTimestamp, NameTimestamp, NameMicroTimestamp, NameNanoTimestamp:
		return ColumnType{Type: TypeInt64, Name: NameConnectTime}
	case NameDate:
		return ColumnType{Type: TypeInt32, Name: NameConnectDate}
	case NameVarScale:
		return ColumnType{Type: TypeBytes, Name: NameDecimal, Scale: ScaleOfValue}
	}
	return t
}

// ScaleOfValue as a Decimal's Scale means each value's own scale: the schema of
// each apply carries it (a Decimal for a column of no fixed scale, PostgreSQL's
// numeric, for a sink that cannot read a VariableScaleDecimal).
const ScaleOfValue = -1
