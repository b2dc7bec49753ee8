package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/concord-sync/concord/codecs"
)

// errApply marks an apply event the sink cannot use; it is logged, counted and skipped.
var errApply = errors.New("unusable apply event")

// applyEvent is a decoded apply: an upsert of set, or a delete.
type applyEvent struct {
	id     string
	delete bool
	set    row
}

// sink consumes the table's apply topic as a JDBC sink connector would, until ctx is
// done. onApply is called for every message consumed.
func (t *table) sink(ctx context.Context, r *kafka.Reader, log *zap.Logger, onApply func()) error {
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("sim: %s: consuming %s: %w", t.spec.Name, t.spec.ApplyTopic, err)
		}
		t.stats.applies.Add(1)
		onApply()
		if err := t.write(ctx, m); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			t.stats.rejected.Add(1)
			log.Warn("apply event skipped", zap.String("system", t.spec.Name),
				zap.Int("partition", m.Partition), zap.Int64("offset", m.Offset), zap.Error(err))
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("sim: %s: committing %s offset %d: %w", t.spec.Name, t.spec.ApplyTopic, m.Offset, err)
		}
	}
}

// write applies one apply message to the table.
func (t *table) write(ctx context.Context, m kafka.Message) error {
	a, err := decodeApply(t.spec, m.Key, m.Value)
	if err != nil {
		return err
	}
	if a.delete {
		deleted, err := t.remove(ctx, a.id)
		if err != nil {
			return err
		}
		if deleted {
			t.stats.sinkWrites.Add(1)
		} else {
			t.stats.sinkNoops.Add(1)
		}
		return nil
	}
	if _, err := t.upsert(ctx, a.id, func(bool) row { return a.set }); err != nil {
		return err
	}
	t.stats.sinkWrites.Add(1)
	return nil
}

// decodeApply decodes an apply event in spec's format (codecs/apply.go). The record
// ID comes from the key; values are stored canonical (codecs.Canonicalize); columns
// the system does not know are kept, as a permissive sink with auto-evolve would.
func decodeApply(spec SystemSpec, key, value []byte) (applyEvent, error) {
	id, err := decodeApplyKey(spec.KeyColumn, key)
	if err != nil {
		return applyEvent{}, err
	}
	a := applyEvent{id: id}
	if value == nil {
		if spec.ApplyFormat != FormatFlat {
			return a, fmt.Errorf("%w: null value on a %s apply topic", errApply, spec.ApplyFormat)
		}
		a.delete = true
		return a, nil
	}
	obj, err := decodeObject(value)
	if err != nil {
		return a, fmt.Errorf("%w: value: %w", errApply, err)
	}
	if spec.ApplyFormat == FormatDebezium {
		if obj, a.delete, err = debeziumAfter(obj); err != nil || a.delete {
			return a, err
		}
	}
	a.set = make(row, len(obj))
	for col, v := range obj {
		if col == spec.KeyColumn {
			continue
		}
		canon, err := codecs.Canonicalize(v)
		if err != nil {
			return a, fmt.Errorf("%w: column %s: %w", errApply, col, err)
		}
		a.set[col] = string(canon)
	}
	return a, nil
}

// debeziumAfter returns the `after` image of a Debezium envelope, or delete true for op d.
func debeziumAfter(env map[string]json.RawMessage) (after map[string]json.RawMessage, del bool, err error) {
	var op string
	if err := json.Unmarshal(env["op"], &op); err != nil {
		return nil, false, fmt.Errorf("%w: op: %w", errApply, err)
	}
	switch op {
	case "d":
		return nil, true, nil
	case "c", "u", "r":
		after, err := decodeObject(env["after"])
		if err != nil {
			return nil, false, fmt.Errorf("%w: after: %w", errApply, err)
		}
		return after, false, nil
	default:
		return nil, false, fmt.Errorf("%w: op %q is not c, u, r or d", errApply, op)
	}
}

// decodeApplyKey returns the record ID in an apply key: the key column's value, a
// string as its text and anything else as its JSON.
func decodeApplyKey(keyColumn string, key []byte) (string, error) {
	obj, err := decodeObject(key)
	if err != nil {
		return "", fmt.Errorf("%w: key: %w", errApply, err)
	}
	v, ok := obj[keyColumn]
	if !ok {
		return "", fmt.Errorf("%w: key %s has no column %q", errApply, key, keyColumn)
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s, nil
	}
	canon, err := codecs.Canonicalize(v)
	if err != nil {
		return "", fmt.Errorf("%w: key: %w", errApply, err)
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
