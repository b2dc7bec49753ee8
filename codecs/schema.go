package codecs

import "github.com/valyala/fastjson"

// ColumnSchema is the Connect type of one column, as a decoded message's schema gives it.
type ColumnSchema struct {
	Column []byte // borrowed from the message: valid until the decoder's next call
	Type   ColumnType
}

// Columns appends the column types that the last decoded message's schemas give
// (its key's, then its row image's), so that concord learns the types of a system's
// columns from the system's own change events. A message without schemas appends
// nothing. Columns of types apply events cannot carry (arrays, maps, structs other
// than VariableScaleDecimal) are left out: their types stay unknown.
func (d *Decoder) Columns(dst []ColumnSchema) []ColumnSchema {
	dst = appendColumnSchemas(dst, d.keySchema)
	return appendColumnSchemas(dst, d.rowSchema)
}

func appendColumnSchemas(dst []ColumnSchema, structSchema *fastjson.Value) []ColumnSchema {
	for _, f := range structSchema.GetArray("fields") {
		column := f.GetStringBytes("field")
		if column == nil {
			continue
		}
		if t, ok := fieldColumnType(f); ok {
			dst = append(dst, ColumnSchema{Column: column, Type: t})
		}
	}
	return dst
}

// fieldColumnType reads a JsonConverter field schema as a ColumnType.
func fieldColumnType(f *fastjson.Value) (ColumnType, bool) {
	typ, ok := internType(f.GetStringBytes("type"))
	if !ok {
		return ColumnType{}, false
	}
	t := ColumnType{Type: typ, Name: internName(f.GetStringBytes("name"))}
	switch {
	case t.Name == NameDecimal:
		scale, ok := decimalScale(f.Get("parameters", "scale"))
		if !ok {
			return ColumnType{}, false
		}
		t.Scale = scale
		if p, ok := decimalScale(f.Get("parameters", decimalPrecisionParam)); ok && p > 0 {
			t.Precision = p
		}
	case typ == TypeStruct && t.Name != NameVarScale:
		return ColumnType{}, false
	}
	return t, true
}

func internType(b []byte) (string, bool) {
	for _, t := range [...]string{TypeString, TypeInt64, TypeInt32, TypeBoolean, TypeFloat64, TypeBytes, TypeInt16, TypeInt8, TypeFloat32, TypeStruct} {
		if string(b) == t {
			return t, true
		}
	}
	return "", false
}

// knownNames are logical names interned without allocating.
var knownNames = [...]string{
	NameDecimal, NameVarScale, NameTimestamp, NameConnectTime, NameMicroTimestamp, NameNanoTimestamp,
	NameZonedTimestamp, NameDate, NameConnectDate, NameJSON,
	"io.debezium.data.Uuid", "io.debezium.data.Enum", "io.debezium.data.Xml", "io.debezium.time.MicroTime",
	"io.debezium.time.Time", "io.debezium.time.NanoTime", "io.debezium.time.ZonedTime", "io.debezium.data.Bits",
	"io.debezium.time.Interval", "io.debezium.time.MicroDuration", "io.debezium.data.EnumSet",
}

func internName(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	for _, n := range knownNames {
		if string(b) == n {
			return n
		}
	}
	return string(b)
}
