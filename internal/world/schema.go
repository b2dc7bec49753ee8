package world

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/concord-sync/concord/codecs"
)

// connectTypeOf is the Connect type Debezium's PostgreSQL connector gives a column
// (debezium/debezium debezium-connector-postgres
// src/main/java/io/debezium/connector/postgresql/PostgresValueConverter.java,
// schemaBuilder, with the defaults decimal.handling.mode=precise and
// time.precision.mode=adaptive): numeric(P,S) a Decimal of scale S with its precision,
// timestamptz a ZonedTimestamp, timestamp (precision 6) a MicroTimestamp, date a Date
// (days), jsonb an io.debezium.data.Json string, boolean, integer int32, bigint int64,
// text a string. A column with no declared type is typed by its value.
func (t *Table) connectTypeOf(column, value string) codecs.ColumnType {
	pt, ok := t.types[column]
	switch {
	case !ok && column == t.spec.TimestampColumn:
		return codecs.ColumnType{Type: codecs.TypeInt64} // epoch milliseconds
	case !ok:
		return codecs.InferType([]byte(value))
	}
	switch pt.name {
	case "numeric":
		return codecs.ColumnType{Type: codecs.TypeBytes, Name: codecs.NameDecimal, Scale: pt.scale, Precision: pt.precision}
	case PGTimestamptz:
		return codecs.ColumnType{Type: codecs.TypeString, Name: codecs.NameZonedTimestamp}
	case PGTimestamp:
		return codecs.ColumnType{Type: codecs.TypeInt64, Name: codecs.NameMicroTimestamp}
	case PGDate:
		return codecs.ColumnType{Type: codecs.TypeInt32, Name: codecs.NameDate}
	case PGJSONB:
		return codecs.ColumnType{Type: codecs.TypeString, Name: codecs.NameJSON}
	case PGBoolean:
		return codecs.ColumnType{Type: codecs.TypeBoolean}
	case PGInteger:
		return codecs.ColumnType{Type: codecs.TypeInt32}
	case PGBigint:
		return codecs.ColumnType{Type: codecs.TypeInt64}
	}
	return codecs.ColumnType{Type: codecs.TypeString}
}

// fieldSchema is a JsonConverter field schema (apache/kafka
// connect/json/src/main/java/org/apache/kafka/connect/json/JsonConverter.java, asJsonSchema).
type fieldSchema struct {
	Type       string            `json:"type"`
	Optional   bool              `json:"optional"`
	Name       string            `json:"name,omitempty"`
	Version    int               `json:"version,omitempty"`
	Parameters map[string]string `json:"parameters,omitempty"`
	Fields     []fieldSchema     `json:"fields,omitempty"`
	Field      string            `json:"field,omitempty"`
}

func columnSchema(column string, ct codecs.ColumnType, optional bool) fieldSchema {
	f := fieldSchema{Type: ct.Type, Optional: optional, Name: ct.Name, Field: column}
	if ct.Name != "" {
		f.Version = 1
	}
	if ct.Name == codecs.NameDecimal {
		f.Parameters = map[string]string{"scale": strconv.Itoa(ct.Scale)}
		if ct.Precision > 0 {
			f.Parameters["connect.decimal.precision"] = strconv.Itoa(ct.Precision)
		}
	}
	return f
}

// rowSchema and wireTyped give a row image's struct schema (every column of the
// table, the key first) and its values in the columns' Connect encodings. Values go
// through concord's codecs.ColumnType.AppendValue, whose output concord's decoder
// reads back to the same canonical value; that decoder is tested against the real
// Debezium messages of ../shared/testdata/debezium (codecs/fixtures_test.go).
// The row typing a column without a declared type is the image itself.
func (t *Table) rowSchema(field string, r Row) fieldSchema {
	fields := []fieldSchema{{Type: codecs.TypeString, Field: t.spec.KeyColumn}}
	for _, col := range t.columns {
		fields = append(fields, columnSchema(col, t.connectTypeOf(col, r[col]), true))
	}
	return fieldSchema{
		Type: "struct", Optional: true, Name: t.topic() + ".Value", Field: field, Fields: fields,
	}
}

func (t *Table) wireTyped(id string, r Row) (map[string]json.RawMessage, error) {
	img := make(map[string]json.RawMessage, len(r)+1)
	for col, v := range r {
		if v == Unavailable {
			img[col] = json.RawMessage(v) // the placeholder, in place of the value
			continue
		}
		b, err := t.connectTypeOf(col, v).AppendValue(nil, []byte(v))
		if err != nil {
			return nil, fmt.Errorf("world: %s: column %s holds %s: %w", t.spec.Name, col, v, err)
		}
		img[col] = b
	}
	img[t.spec.KeyColumn] = quote(id)
	return img, nil
}

// topic is the table's Debezium topic, <prefix>.<schema>.<table>.
func (t *Table) topic() string { return t.spec.Name + "." + t.spec.Schema + "." + t.spec.Table }

// withSchema wraps an envelope's payload in its JsonConverter schema, as Debezium's
// PostgreSQL connector writes it with schemas.enable=true.
func (t *Table) withSchema(payload any, r Row) any {
	source := fieldSchema{Type: "struct", Name: "io.debezium.connector.postgresql.Source", Field: "source", Fields: []fieldSchema{
		{Type: "string", Field: "version"},
		{Type: "string", Field: "connector"},
		{Type: "string", Field: "name"},
		{Type: "int64", Field: "ts_ms"},
		{Type: "string", Optional: true, Name: "io.debezium.data.Enum", Version: 1, Field: "snapshot"},
		{Type: "string", Field: "db"},
		{Type: "string", Field: "schema"},
		{Type: "string", Field: "table"},
		{Type: "int64", Optional: true, Field: "txId"},
		{Type: "int64", Optional: true, Field: "lsn"},
	}}
	schema := fieldSchema{Type: "struct", Name: t.topic() + ".Envelope", Version: 1, Fields: []fieldSchema{
		t.rowSchema("before", r), t.rowSchema("after", r), source,
		{Type: "string", Field: "op"},
		{Type: "int64", Optional: true, Field: "ts_ms"},
		{Type: "struct", Optional: true, Name: "event.block", Version: 1, Field: "transaction", Fields: []fieldSchema{
			{Type: "string", Field: "id"}, {Type: "int64", Field: "total_order"}, {Type: "int64", Field: "data_collection_order"},
		}},
	}}
	return map[string]any{"schema": schema, "payload": payload}
}

// keyWithSchema is a row's Kafka key with its JsonConverter schema.
func (t *Table) keyWithSchema(id string) []byte {
	b, _ := json.Marshal(map[string]any{ // strings and a fixed shape always encode
		"schema":  fieldSchema{Type: "struct", Name: t.topic() + ".Key", Fields: []fieldSchema{{Type: "string", Field: t.spec.KeyColumn}}},
		"payload": map[string]string{t.spec.KeyColumn: id},
	})
	return b
}
