package world

import (
	"errors"
	"fmt"
	"strings"

	"github.com/concord-sync/concord/internal/jdbcsink"
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
// primary.key.mode=record_key and JsonConverter schemas.enable=true on key and value
// reads it, into a table whose columns have no declared type (their values keep the
// JSON type they were sent with). See Table.ReadApply.
func DecodeApply(format, keyColumn string, key, value []byte) (Apply, error) {
	return readApply(format, keyColumn, nil, key, value)
}

// ReadApply decodes an apply message as the table's JDBC sink reads it and as
// PostgreSQL stores it in the table's typed columns (Spec.Types): a value a column
// refuses is an error wrapping ErrRefused, which fails the sink's task.
func (t *Table) ReadApply(format string, key, value []byte) (Apply, error) {
	return readApply(format, t.spec.KeyColumn, t.types, key, value)
}

// readApply follows the sink's reading of a record: Kafka's JsonConverter
// (internal/jdbcsink.ToConnectData, emulated from its source: it refuses anything but
// {"schema","payload"}), then Debezium's JDBC sink: a value whose schema's name ends
// in ".Envelope" is a change event (debezium/debezium
// debezium-connector-jdbc/src/main/java/io/debezium/connector/jdbc/JdbcKafkaSinkRecord.java
// and io/debezium/data/Envelope.java isEnvelopeSchema), op d a delete and otherwise
// its after struct the row; any other struct is the row itself (flattened), and a
// null value a delete; record_key takes the key from the key struct, and refuses a
// key without a schema.
func readApply(format, keyColumn string, types map[string]pgType, key, value []byte) (Apply, error) {
	k, err := jdbcsink.ToConnectData("apply", key, true)
	if err != nil {
		return Apply{}, fmt.Errorf("%w: key: %w", ErrApply, err)
	}
	ks, ok := k.Value.(*jdbcsink.Struct)
	if k.Schema == nil || !ok {
		return Apply{}, fmt.Errorf("%w: Configured primary key mode 'record_key' cannot have null schema", ErrApply)
	}
	idValue, _ := ks.Get(keyColumn)
	if idValue == nil {
		return Apply{}, fmt.Errorf("%w: key %s has no column %q", ErrApply, key, keyColumn)
	}
	a := Apply{ID: fmt.Sprint(idValue)}
	v, err := jdbcsink.ToConnectData("apply", value, true)
	if err != nil {
		return a, fmt.Errorf("%w: value: %w", ErrApply, err)
	}
	if v.Value == nil {
		a.Delete = true // a tombstone: delete.enabled
		return a, nil
	}
	row, ok := v.Value.(*jdbcsink.Struct)
	if !ok {
		return a, fmt.Errorf("%w: value is a %s, not a struct", ErrApply, v.Schema.Type)
	}
	if strings.HasSuffix(v.Schema.Name, ".Envelope") {
		if row, a.Delete, err = envelopeRow(row); err != nil || a.Delete {
			return a, err
		}
	} else if format == FormatDebezium {
		return a, fmt.Errorf("%w: a %s apply topic carries a value that is no Debezium envelope (schema %q)", ErrApply, format, v.Schema.Name)
	}
	a.Set = make(Row, len(row.Schema.Fields))
	for _, f := range row.Schema.Fields {
		if f.Name == keyColumn {
			continue
		}
		fv, _ := row.Get(f.Name)
		canon, err := stored(types, f.Name, f.Schema, fv)
		if err != nil {
			return a, fmt.Errorf("column %s: %w", f.Name, err)
		}
		a.Set[f.Name] = canon
	}
	return a, nil
}

// envelopeRow returns a change event's row: after for c, u and r; delete true for d.
func envelopeRow(env *jdbcsink.Struct) (*jdbcsink.Struct, bool, error) {
	op, _ := env.Get("op")
	switch op {
	case "d":
		return nil, true, nil
	case "c", "u", "r":
		after, _ := env.Get("after")
		row, ok := after.(*jdbcsink.Struct)
		if !ok {
			return nil, false, fmt.Errorf("%w: op %s has no after struct", ErrApply, op)
		}
		return row, false, nil
	default:
		return nil, false, fmt.Errorf("%w: op %v is not c, u, r or d", ErrApply, op)
	}
}

// stored is the canonical value a column holds after the sink wrote v into it: as
// PostgreSQL stores it for a column of a declared type (toColumn), else the value's
// own JSON (a column with no declared type keeps what it was sent).
func stored(types map[string]pgType, column string, s *jdbcsink.Schema, v any) (string, error) {
	b, err := bindDebezium(s, v)
	if err != nil {
		return "", err
	}
	if col, ok := types[column]; ok {
		return toColumn(col, b)
	}
	if b.null {
		return Null, nil
	}
	switch b.sqlType {
	case "int8", "float8", "bool":
		return b.text, nil
	}
	return quoteString(b.text), nil
}
