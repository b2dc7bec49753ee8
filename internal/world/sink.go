package world

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/concord-sync/concord/codecs"
)

// Apply formats a sink consumes (DESIGN.md section 4; codecs/apply.go).
const (
	FormatDebezium = "debezium" // Debezium envelope: op d deletes, otherwise `after` is upserted
	FormatFlat     = "flat"     // the row as a struct; a null value (tombstone) deletes
)

// ErrApply marks an apply event a sink cannot use.
var ErrApply = errors.New("world: unusable apply event")

// Apply is an apply event as a JDBC sink reads it: an upsert of Set, or a delete.
type Apply struct {
	ID     string
	Delete bool
	Set    Row // column -> canonical JSON, key column excluded
}

// Sink writes an apply as Debezium's JDBC sink does on PostgreSQL
// (debezium/debezium-connector-jdbc,
// src/main/java/io/debezium/connector/jdbc/dialect/postgres/PostgresDatabaseDialect.java,
// getUpsertStatement): INSERT INTO t (key, cols...) VALUES (...) ON CONFLICT (key)
// DO UPDATE SET col=EXCLUDED.col for the record's non-key fields only, so columns the
// apply does not carry keep their value, or are NULL in a row it inserts; with no
// non-key field the statement is ON CONFLICT DO NOTHING, which commits nothing for a
// row that exists. A delete (delete.enabled=true) of a missing row deletes nothing.
// It returns the change committed (nil when nothing was, or when not capturing) and
// whether anything was written.
func (t *Table) Sink(a *Apply, clockMs int64, eventID string) (*Change, bool) {
	cause := Cause{Kind: Sink, EventID: eventID}
	if a.Delete {
		return t.Delete(a.ID, clockMs, cause)
	}
	if len(a.Set) == 0 && t.Has(a.ID) {
		return nil, false // ON CONFLICT DO NOTHING
	}
	return t.Upsert(a.ID, a.Set, clockMs, cause), true
}

// DecodeApply decodes an apply message in format as a JDBC sink with
// primary.key.mode=record_key reads it. The ID comes from the key's keyColumn;
// values are canonical (codecs.Canonicalize). A JsonConverter envelope
// ({"schema","payload"}) is unwrapped on key and value.
func DecodeApply(format, keyColumn string, key, value []byte) (Apply, error) {
	id, err := decodeApplyKey(keyColumn, key)
	if err != nil {
		return Apply{}, err
	}
	a := Apply{ID: id}
	if value == nil {
		if format != FormatFlat {
			return a, fmt.Errorf("%w: null value on a %s apply topic", ErrApply, format)
		}
		a.Delete = true
		return a, nil
	}
	obj, err := decodeObject(value)
	if err != nil {
		return a, fmt.Errorf("%w: value: %w", ErrApply, err)
	}
	if format == FormatDebezium {
		if obj, a.Delete, err = debeziumAfter(obj); err != nil || a.Delete {
			return a, err
		}
	}
	a.Set = make(Row, len(obj))
	for col, v := range obj {
		if col == keyColumn {
			continue
		}
		canon, err := codecs.Canonicalize(v)
		if err != nil {
			return a, fmt.Errorf("%w: column %s: %w", ErrApply, col, err)
		}
		a.Set[col] = string(canon)
	}
	return a, nil
}

// debeziumAfter returns the `after` image of a Debezium envelope, or delete true for op d.
func debeziumAfter(env map[string]json.RawMessage) (after map[string]json.RawMessage, del bool, err error) {
	var op string
	if err := json.Unmarshal(env["op"], &op); err != nil {
		return nil, false, fmt.Errorf("%w: op: %w", ErrApply, err)
	}
	switch op {
	case "d":
		return nil, true, nil
	case "c", "u", "r":
		after, err := decodeObject(env["after"])
		if err != nil {
			return nil, false, fmt.Errorf("%w: after: %w", ErrApply, err)
		}
		return after, false, nil
	default:
		return nil, false, fmt.Errorf("%w: op %q is not c, u, r or d", ErrApply, op)
	}
}

// decodeApplyKey returns the record ID in an apply key: the key column's value, a
// string as its text and anything else as its JSON.
func decodeApplyKey(keyColumn string, key []byte) (string, error) {
	obj, err := decodeObject(key)
	if err != nil {
		return "", fmt.Errorf("%w: key: %w", ErrApply, err)
	}
	v, ok := obj[keyColumn]
	if !ok {
		return "", fmt.Errorf("%w: key %s has no column %q", ErrApply, key, keyColumn)
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s, nil
	}
	canon, err := codecs.Canonicalize(v)
	if err != nil {
		return "", fmt.Errorf("%w: key: %w", ErrApply, err)
	}
	return string(canon), nil
}

// decodeObject decodes a JSON object, unwrapping a JsonConverter
// {"schema":…,"payload":…} envelope.
func decodeObject(b []byte) (map[string]json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, errors.New("null, not an object")
	}
	_, hasSchema := obj["schema"]
	if payload, ok := obj["payload"]; ok && hasSchema && len(obj) == 2 {
		if bytes.Equal(payload, []byte("null")) {
			return nil, errors.New("null payload, not an object")
		}
		return decodeObject(payload)
	}
	return obj, nil
}
