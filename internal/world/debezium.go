package world

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// DebeziumVersion is source.version of the change events.
const DebeziumVersion = "2.7.0.Final"

// envelope is a Debezium PostgreSQL change event as JsonConverter writes it with
// schemas disabled.
type envelope struct {
	Before      map[string]json.RawMessage `json:"before"`
	After       map[string]json.RawMessage `json:"after"`
	Source      source                     `json:"source"`
	Op          string                     `json:"op"`
	TsMs        int64                      `json:"ts_ms"`
	Transaction json.RawMessage            `json:"transaction"` // always null
}

type source struct {
	Version   string `json:"version"`
	Connector string `json:"connector"`
	Name      string `json:"name"`
	TsMs      int64  `json:"ts_ms"`
	Snapshot  string `json:"snapshot"`
	DB        string `json:"db"`
	Schema    string `json:"schema"`
	Table     string `json:"table"`
	TxID      int64  `json:"txId"`
	LSN       int64  `json:"lsn"`
}

// EncodeKey returns the Kafka key of a row: {"<KeyColumn>":"<id>"}, with its
// schema when Spec.Schemas.
func (t *Table) EncodeKey(id string) []byte {
	if t.spec.Schemas {
		return t.keyWithSchema(id)
	}
	k := append([]byte{'{'}, quote(t.spec.KeyColumn)...)
	k = append(k, ':')
	k = append(k, quote(id)...)
	return append(k, '}')
}

// EncodeValue returns the Kafka value of a change: JsonConverter's output, with the
// Connect schema (and each typed column in its Connect encoding) when Spec.Schemas.
// processedMs is the envelope's ts_ms, when the connector processed it. It fails
// only when a row holds a value that is not JSON.
func (t *Table) EncodeValue(c *Change, processedMs int64) ([]byte, error) {
	env := envelope{
		Op:   string(c.Op),
		TsMs: processedMs,
		Source: source{
			Version: DebeziumVersion, Connector: "postgresql", Name: t.spec.Name,
			TsMs: c.ClockMs, Snapshot: "false", DB: t.spec.Name, Schema: t.spec.Schema, Table: t.spec.Table,
			TxID: c.TxID, LSN: c.LSN,
		},
	}
	if c.Op == OpRead {
		env.Source.Snapshot = "true"
	}
	wire := func(r Row) (map[string]json.RawMessage, error) { return t.wire(c.ID, r), nil }
	if t.spec.Schemas {
		wire = func(r Row) (map[string]json.RawMessage, error) { return t.wireTyped(c.ID, r) }
	}
	var err error
	if c.Before != nil {
		if env.Before, err = wire(c.Before); err != nil {
			return nil, err
		}
	}
	if c.After != nil {
		if env.After, err = wire(c.After); err != nil {
			return nil, err
		}
	}
	var v any = env
	if t.spec.Schemas {
		typing := c.After
		if typing == nil {
			typing = c.Before
		}
		v = t.withSchema(env, typing)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // as Kafka Connect writes it
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("world: %s: encoding the change of %s: %w", t.spec.Name, c.ID, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// wire is a row image on the wire: the key column and every column of r.
func (t *Table) wire(id string, r Row) map[string]json.RawMessage {
	img := make(map[string]json.RawMessage, len(r)+1)
	for col, v := range r {
		img[col] = json.RawMessage(v)
	}
	img[t.spec.KeyColumn] = quote(id)
	return img
}

// quote returns s as a JSON string, as Kafka Connect's JsonConverter (Jackson) and
// PostgreSQL write one: without encoding/json's escapes of <, > and & (\u003c …),
// which neither makes. (encoding/json still escapes U+2028 and U+2029, which they
// write as they are.)
func quote(s string) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'})
}
