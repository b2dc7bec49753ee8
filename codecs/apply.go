package codecs

import "strconv"

// Apply formats (DESIGN.md section 4).
const (
	FormatDebezium = "debezium" // Debezium envelope, for Debezium's JDBC sink
	FormatFlat     = "flat"     // the row as flat JSON, for the Confluent JDBC sink
)

// ApplyEncoder writes apply events in one target system's format. It is a value with
// no mutable state: safe for concurrent use.
type ApplyEncoder struct {
	Format string // FormatDebezium (default) or FormatFlat
	// Schema wraps flat values in a Connect schema envelope (types inferred from the
	// JSON values: string, int64, double, boolean; null as an optional string).
	Schema bool
	Name   string // source.name of Debezium envelopes: the concord deployment's name
}

// Apply is one apply event in the target system's column names.
type Apply struct {
	Delete bool
	Key    Row // key columns and values
	Fields Row // the columns the apply sets (empty for a delete)
	TsMs   int64
}

// AppendKey appends the Kafka key: the key columns as a flat JSON object (the shape
// of a Debezium key with schemas disabled), so one record's applies share a partition.
// With Schema (flat format), the key carries its Connect schema too, as JDBC sinks
// with primary.key.mode=record_key need.
func (e ApplyEncoder) AppendKey(dst []byte, a *Apply) []byte {
	if e.Format == FormatFlat && e.Schema {
		return appendSchemaEnvelope(dst, a.Key, nil)
	}
	return appendObject(dst, a.Key, nil)
}

// AppendValue appends the Kafka value of an apply. It returns dst unchanged and
// false for a flat delete, whose value is a tombstone (null): the Confluent JDBC
// sink deletes on a null value.
func (e ApplyEncoder) AppendValue(dst []byte, a *Apply) ([]byte, bool) {
	if e.Format == FormatFlat {
		if a.Delete {
			return dst, false
		}
		if e.Schema {
			return e.appendSchemaFlat(dst, a), true
		}
		return appendObject(dst, a.Key, a.Fields), true
	}
	dst = append(dst, `{"before":`...)
	if a.Delete {
		dst = appendObject(dst, a.Key, nil)
		dst = append(dst, `,"after":null`...)
	} else {
		dst = append(dst, `null,"after":`...)
		dst = appendObject(dst, a.Key, a.Fields)
	}
	dst = append(dst, `,"source":{"connector":"concord","name":`...)
	dst = appendJSONString(dst, []byte(e.Name))
	dst = append(dst, `,"ts_ms":`...)
	dst = strconv.AppendInt(dst, a.TsMs, 10)
	dst = append(dst, `},"op":"`...)
	switch {
	case a.Delete:
		dst = append(dst, 'd')
	default:
		dst = append(dst, 'u')
	}
	dst = append(dst, `","ts_ms":`...)
	dst = strconv.AppendInt(dst, a.TsMs, 10)
	return append(dst, '}'), true
}

func appendObject(dst []byte, rows ...Row) []byte {
	dst = append(dst, '{')
	first := true
	for _, row := range rows {
		for _, c := range row {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = appendJSONString(dst, []byte(c.Name))
			dst = append(dst, ':')
			dst = append(dst, c.Value...)
		}
	}
	return append(dst, '}')
}

func (e ApplyEncoder) appendSchemaFlat(dst []byte, a *Apply) []byte {
	return appendSchemaEnvelope(dst, a.Key, a.Fields)
}

// appendSchemaEnvelope appends {"schema":…,"payload":…} for the key columns (required)
// and the fields (optional), as Kafka's JsonConverter writes with schemas enabled.
func appendSchemaEnvelope(dst []byte, key, fields Row) []byte {
	dst = append(dst, `{"schema":{"type":"struct","optional":false,"fields":[`...)
	first := true
	for i, row := range [2]Row{key, fields} {
		for _, c := range row {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = append(dst, `{"field":`...)
			dst = appendJSONString(dst, []byte(c.Name))
			dst = append(dst, `,"type":"`...)
			dst = append(dst, connectType(c.Value)...)
			if i == 0 {
				dst = append(dst, `","optional":false}`...)
			} else {
				dst = append(dst, `","optional":true}`...)
			}
		}
	}
	dst = append(dst, `]},"payload":`...)
	dst = appendObject(dst, key, fields)
	return append(dst, '}')
}

// connectType infers a Connect schema type from a canonical JSON value.
func connectType(v []byte) string {
	if len(v) == 0 {
		return "string"
	}
	switch v[0] {
	case '"', 'n':
		return "string"
	case 't', 'f':
		return "boolean"
	case '{', '[':
		return "string"
	}
	for _, b := range v {
		if b == '.' || b == 'e' || b == 'E' {
			return "double"
		}
	}
	return "int64"
}
