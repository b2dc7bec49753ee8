package codecs

import (
	"slices"
	"strconv"
	"strings"
)

// Apply formats (DESIGN.md section 4).
const (
	FormatDebezium = "debezium" // Debezium envelope, for Debezium's JDBC sink
	FormatFlat     = "flat"     // the row as flat JSON, for the Confluent JDBC sink
)

// ApplyEncoder writes apply events in one target system's format. It is a value with
// no mutable state: safe for concurrent use.
//
// With Schema (the configuration's default) key and value are what Kafka's
// JsonConverter writes with schemas.enable=true: {"schema":…,"payload":…}, each
// column typed as the target's own column (Apply columns carry their ColumnType), so
// that the sinks bind them to the columns' SQL types:
//   - Debezium's JDBC sink reads the value as a change event when its schema's name
//     ends with ".Envelope" (debezium/debezium io/debezium/data/Envelope.java
//     isEnvelopeSchema), and with primary.key.mode=record_key refuses a key without
//     a schema;
//   - the Confluent JDBC sink needs a Struct value with a schema and, with
//     pk.mode=record_key, a key with one.
//
// Without Schema the payloads are written bare, which only a sink configured for
// schemaless JSON can read (see config.System.Apply).
type ApplyEncoder struct {
	Format string // FormatDebezium (default) or FormatFlat
	Schema bool   // JsonConverter schema envelopes on key and value
	Name   string // source.name of Debezium envelopes: the concord deployment's name
	// Table names the target's table in schema names, as Debezium does: the target
	// system's own topic, <prefix>.<schema>.<table>. Its last two parts, when it has
	// three or more, are source.schema and source.table.
	Table string
}

// Apply is one apply event in the target system's column names and types.
type Apply struct {
	Delete bool
	Key    []TypedColumn // key columns and values
	Fields []TypedColumn // the columns the apply sets (empty for a delete)
	TsMs   int64
}

// TypedColumn is a column of an apply: its canonical value and the target column's type.
type TypedColumn struct {
	Name  string
	Value []byte // canonical JSON (see Column)
	Type  ColumnType
}

// AppendKey appends the Kafka key: the key columns as a JSON object (with Schema, in
// a JsonConverter envelope whose struct is named <table>.Key), so one record's
// applies share a partition.
func (e ApplyEncoder) AppendKey(dst []byte, a *Apply) ([]byte, error) {
	dst = slices.Grow(dst, e.sizeHint(a.Key, nil, false))
	if !e.Schema {
		return appendObject(dst, a.Key, nil)
	}
	dst = append(dst, `{"schema":`...)
	dst = e.appendRowSchema(dst, a.Key, nil, ".Key", false, "")
	dst = append(dst, `,"payload":`...)
	dst, err := appendObject(dst, a.Key, nil)
	return append(dst, '}'), err
}

// AppendValue appends the Kafka value of an apply. It returns dst unchanged and
// false for a flat delete, whose value is a tombstone (null): the Confluent JDBC
// sink deletes on a null value. An error wraps ErrTypeMismatch: a value its column's
// type cannot hold (the resolver keeps such values out of applies).
func (e ApplyEncoder) AppendValue(dst []byte, a *Apply) ([]byte, bool, error) {
	if e.Format == FormatFlat && a.Delete {
		return dst, false, nil
	}
	dst = slices.Grow(dst, e.sizeHint(a.Key, a.Fields, e.Format != FormatFlat))
	if e.Format == FormatFlat {
		if !e.Schema {
			dst, err := appendObject(dst, a.Key, a.Fields)
			return dst, true, err
		}
		dst = append(dst, `{"schema":`...)
		dst = e.appendRowSchema(dst, a.Key, a.Fields, ".Value", false, "")
		dst = append(dst, `,"payload":`...)
		dst, err := appendObject(dst, a.Key, a.Fields)
		return append(dst, '}'), true, err
	}
	if !e.Schema {
		dst, err := e.appendEnvelope(dst, a)
		return dst, true, err
	}
	dst = append(dst, `{"schema":`...)
	dst = e.appendEnvelopeSchema(dst, a)
	dst = append(dst, `,"payload":`...)
	dst, err := e.appendEnvelope(dst, a)
	return append(dst, '}'), true, err
}

// sizeHint is a little more than an apply of these columns usually takes, so that a
// buffer is grown once rather than doubled again and again: the payload, with schemas
// the row's struct schema (twice in a Debezium envelope: before and after), and a
// Debezium envelope's own members.
func (e ApplyEncoder) sizeHint(key, fields []TypedColumn, envelope bool) int {
	payload, schema := 2, 64+len(e.Table)
	for _, row := range [2][]TypedColumn{key, fields} {
		for i := range row {
			c := &row[i]
			payload += 12 + len(c.Name) + len(c.Value) // a decimal's base64 may run longer
			schema += 48 + len(c.Name) + len(c.Type.Name)
		}
	}
	n := payload
	if envelope {
		n += 150 + len(e.Name) + len(e.Table)
	}
	if e.Schema {
		n += 24 + schema
		if envelope {
			n += schema + 620 // before and after, the source and op fields
		}
	}
	return n
}

// appendEnvelope appends the payload of a Debezium change event: an upsert is op u
// with the key and fields in after; a delete is op d with the key in before.
func (e ApplyEncoder) appendEnvelope(dst []byte, a *Apply) ([]byte, error) {
	var err error
	dst = append(dst, `{"before":`...)
	if a.Delete {
		dst, err = appendObject(dst, a.Key, nil)
		dst = append(dst, `,"after":null`...)
	} else {
		dst = append(dst, `null,"after":`...)
		dst, err = appendObject(dst, a.Key, a.Fields)
	}
	dst = append(dst, `,"source":{"connector":"concord","name":`...)
	dst = appendJSONText(dst, e.Name)
	dst = append(dst, `,"ts_ms":`...)
	dst = strconv.AppendInt(dst, a.TsMs, 10)
	if schema, table, ok := e.schemaTable(); ok {
		dst = append(dst, `,"schema":`...)
		dst = appendJSONText(dst, schema)
		dst = append(dst, `,"table":`...)
		dst = appendJSONText(dst, table)
	}
	dst = append(dst, `},"op":"`...)
	if a.Delete {
		dst = append(dst, 'd')
	} else {
		dst = append(dst, 'u')
	}
	dst = append(dst, `","ts_ms":`...)
	dst = strconv.AppendInt(dst, a.TsMs, 10)
	return append(dst, '}'), err
}

// schemaTable splits Table (<prefix>.<schema>.<table>) into its schema and table.
func (e ApplyEncoder) schemaTable() (schema, table string, ok bool) {
	last := strings.LastIndexByte(e.Table, '.')
	if last < 0 {
		return "", "", false
	}
	prev := strings.LastIndexByte(e.Table[:last], '.')
	if prev <= 0 {
		return "", "", false // fewer than three parts
	}
	return e.Table[prev+1 : last], e.Table[last+1:], true
}

// appendEnvelopeSchema appends the Connect schema of a Debezium change event
// envelope, named as Debezium names its own (<table>.Envelope, <table>.Value): before
// and after share the row's struct schema (the key columns, and for an upsert the
// fields), both optional.
func (e ApplyEncoder) appendEnvelopeSchema(dst []byte, a *Apply) []byte {
	dst = append(dst, `{"type":"struct","optional":false,"name":`...)
	dst = appendJSONText(dst, e.Table, ".Envelope")
	dst = append(dst, `,"fields":[`...)
	fields := a.Fields
	if a.Delete {
		fields = nil
	}
	dst = e.appendRowSchema(dst, a.Key, fields, ".Value", true, "before")
	dst = append(dst, ',')
	dst = e.appendRowSchema(dst, a.Key, fields, ".Value", true, "after")
	dst = append(dst, `,{"type":"struct","optional":false,"name":"io.concord.Source","field":"source","fields":[`+
		`{"type":"string","optional":false,"field":"connector"},`+
		`{"type":"string","optional":false,"field":"name"},`+
		`{"type":"int64","optional":false,"field":"ts_ms"}`...)
	if _, _, ok := e.schemaTable(); ok {
		dst = append(dst, `,{"type":"string","optional":true,"field":"schema"},{"type":"string","optional":true,"field":"table"}`...)
	}
	return append(dst, `]},{"type":"string","optional":false,"field":"op"},{"type":"int64","optional":true,"field":"ts_ms"}]}`...)
}

// appendRowSchema appends the struct schema of a row: the key columns required, the
// fields optional. field, when not empty, names the struct as a field of an envelope.
func (e ApplyEncoder) appendRowSchema(dst []byte, key, fields []TypedColumn, suffix string, optional bool, field string) []byte {
	dst = e.appendRowSchemaHead(dst, suffix, optional, field)
	return appendRowSchemaFields(dst, key, fields)
}

// appendRowSchemaHead appends a row's struct schema up to its fields.
func (e ApplyEncoder) appendRowSchemaHead(dst []byte, suffix string, optional bool, field string) []byte {
	dst = append(dst, `{"type":"struct","optional":`...)
	dst = strconv.AppendBool(dst, optional)
	if e.Table != "" {
		dst = append(dst, `,"name":`...)
		dst = appendJSONText(dst, e.Table, suffix)
	}
	if field != "" {
		dst = append(dst, `,"field":`...)
		dst = appendJSONText(dst, field)
	}
	return dst
}

// appendRowSchemaFields appends a row's struct schema from its fields on.
func appendRowSchemaFields(dst []byte, key, fields []TypedColumn) []byte {
	dst = append(dst, `,"fields":[`...)
	for i, c := range key {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendFieldSchema(dst, c, false)
	}
	for i, c := range fields {
		if i > 0 || len(key) > 0 {
			dst = append(dst, ',')
		}
		dst = appendFieldSchema(dst, c, true)
	}
	return append(dst, "]}"...)
}

// appendFieldSchema appends a column's field schema as JsonConverter writes it
// (asJsonSchema: type, optional, name, version, parameters, field).
func appendFieldSchema(dst []byte, c TypedColumn, optional bool) []byte {
	t := c.Type
	if !t.Known() {
		t = InferType(c.Value)
	}
	dst = append(dst, `{"type":"`...)
	dst = append(dst, t.Type...)
	dst = append(dst, `","optional":`...)
	dst = strconv.AppendBool(dst, optional)
	if t.Name != "" {
		dst = append(dst, `,"name":`...)
		dst = appendJSONText(dst, t.Name)
		dst = append(dst, `,"version":1`...)
	}
	switch t.Name {
	case NameDecimal:
		scale := t.Scale
		if scale == ScaleOfValue {
			scale = t.valueScale(c.Value)
		}
		dst = append(dst, `,"parameters":{"scale":"`...)
		dst = strconv.AppendInt(dst, int64(scale), 10)
		if t.Precision > 0 {
			dst = append(dst, `","`+decimalPrecisionParam+`":"`...)
			dst = strconv.AppendInt(dst, int64(t.Precision), 10)
		}
		dst = append(dst, `"}`...)
	case NameVarScale:
		dst = append(dst, `,"fields":[{"type":"int32","optional":false,"field":"scale"},{"type":"bytes","optional":false,"field":"value"}]`...)
	}
	dst = append(dst, `,"field":`...)
	dst = appendJSONText(dst, c.Name)
	return append(dst, '}')
}

// appendObject appends the columns of rows as one JSON object, each value encoded
// for its column's type.
func appendObject(dst []byte, rows ...[]TypedColumn) ([]byte, error) {
	dst = append(dst, '{')
	first := true
	for _, row := range rows {
		for _, c := range row {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = appendJSONText(dst, c.Name)
			dst = append(dst, ':')
			var err error
			if dst, err = c.Type.AppendValue(dst, c.Value); err != nil {
				return dst, err
			}
		}
	}
	return append(dst, '}'), nil
}
