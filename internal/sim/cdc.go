package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/segmentio/kafka-go"
)

// debeziumVersion is source.version of the change events.
const debeziumVersion = "2.7.0.Final"

// maxPublishBatch bounds how many queued change events one WriteMessages call carries.
const maxPublishBatch = 1000

// change is one committed write, as its change event will describe it.
type change struct {
	op        string // c, u or d
	id        string
	before    row  // the old row under REPLICA IDENTITY FULL
	hasBefore bool // false: `before` is null; true with a nil before: the key alone
	after     row  // nil for a delete
	tsMs      int64
	clockMs   int64 // the system's clock: source.ts_ms
	lsn, txID int64
}

// envelope is a Debezium PostgreSQL change event with schemas disabled.
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

// encodeKey returns the Kafka key of record id: {"<KeyColumn>":"<id>"}.
func (t *table) encodeKey(id string) []byte {
	k := append([]byte{'{'}, quote(t.spec.KeyColumn)...)
	k = append(k, ':')
	k = append(k, quote(id)...)
	return append(k, '}')
}

// encodeChange returns the Kafka value of a change event. It fails only if a row
// holds a value that is not JSON, which the writers rule out.
func (t *table) encodeChange(c *change) ([]byte, error) {
	env := envelope{
		Op:   c.op,
		TsMs: c.tsMs,
		Source: source{
			Version: debeziumVersion, Connector: "postgresql", Name: t.spec.Name,
			TsMs: c.clockMs, Snapshot: "false", DB: t.spec.Name, Schema: t.schema, Table: t.name,
			TxID: c.txID, LSN: c.lsn,
		},
	}
	if c.hasBefore {
		env.Before = t.image(c.id, c.before)
	}
	if c.after != nil {
		env.After = t.image(c.id, c.after)
	}
	return marshal(env)
}

// image is a row image: the key column and every column of r.
func (t *table) image(id string, r row) map[string]json.RawMessage {
	img := make(map[string]json.RawMessage, len(r)+1)
	for col, v := range r {
		img[col] = json.RawMessage(v)
	}
	img[t.spec.KeyColumn] = quote(id)
	return img
}

// publish writes queued change events to the system's topic in queue (commit) order
// until ctx is done. One goroutine per table: kafka-go keeps the order of one
// partition's messages across calls, so a record's events stay in commit order.
func (t *table) publish(ctx context.Context, w *kafka.Writer) error {
	for {
		var batch []kafka.Message
		select {
		case <-ctx.Done():
			return nil
		case m := <-t.queue:
			batch = append(batch, m)
		}
	drain:
		for len(batch) < maxPublishBatch {
			select {
			case m := <-t.queue:
				batch = append(batch, m)
			default:
				break drain
			}
		}
		if err := w.WriteMessages(ctx, batch...); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("sim: %s: publishing change events to %s (is the topic there?): %w", t.spec.Name, t.spec.Topic, err)
		}
		for _, m := range batch {
			if m.Value == nil {
				t.stats.tombstones.Add(1)
			} else {
				t.stats.published.Add(1)
			}
		}
		t.unpublished.Add(-int64(len(batch)))
	}
}

// marshal encodes v as compact JSON without HTML escaping, as Kafka Connect does.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("sim: encoding a change event: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// quote returns s as a JSON string.
func quote(s string) json.RawMessage {
	b, _ := json.Marshal(s) // a string always encodes
	return b
}
