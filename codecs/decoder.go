package codecs

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/valyala/fastjson"
)

// Schema names that identify a message kind by themselves.
const (
	heartbeatSchemaName = "io.debezium.connector.common.Heartbeat"
	txSchemaName        = "io.debezium.connector.common.TransactionMetadataValue"
)

var errNoEnvelope = errors.New(`no Debezium envelope ("op" missing); if the connector uses ExtractNewRecordState set envelope: unwrapped`)

// Options configures a Decoder.
type Options struct {
	// Unwrapped says the connector applies Debezium's ExtractNewRecordState SMT: a
	// value is the flat row, with optional metadata columns whose names start with
	// "__" (added by add.fields): __op, __deleted (delete.handling.mode=rewrite),
	// __lsn, __file, __pos, __row, __gtid, __table, __source_ts_ms, ... They set the
	// event's Op, Position, TsMs and Table and are not part of the row. A row without
	// __op is an update (OpUpdate) with no before image; __deleted true or "true"
	// makes it a delete whose Before is the row. With delete.handling.mode=none or
	// drop a delete shows up only as a tombstone, or not at all.
	//
	// Heartbeats, transaction markers and full envelopes (an "op" string next to a
	// "source" object) are still recognised.
	Unwrapped bool

	// MaxMessageBytes bounds a message, key and value together: a larger one is
	// poison without being parsed. 0 means DefaultMaxMessageBytes, a negative value
	// no bound.
	MaxMessageBytes int
}

// Decoder decodes Debezium JSON messages (Kafka Connect JsonConverter output, with or
// without schemas) into Events. A Decoder reuses its buffers from one call to the
// next: what it returns is valid until its next Decode or DecodeKey call. It is not
// safe for concurrent use; give each consumer goroutine its own.
type Decoder struct {
	opts   Options
	parser fastjson.Parser
	names  interner
	conv   converter
	txID   string // the last transaction id, reused while it repeats
	buf    []byte // canonical column values of the current message

	key, before, after                Row
	keyTypes, beforeTypes, afterTypes fieldTypes
	keySchema, rowSchema              *fastjson.Value // of the last message, for Columns
}

// NewDecoder returns a Decoder with the given options.
func NewDecoder(opts Options) *Decoder {
	return &Decoder{opts: opts}
}

// Decode decodes the Kafka message m into ev, overwriting all of it. ev borrows the
// decoder's buffers (see Event).
//
// A null or empty value is a tombstone, as is the legacy {"schema":null,"payload":null}.
// A null or empty key gives a nil Key. Messages that carry no source position get
// the Kafka position of m.
//
// An error wraps ErrPoison and says what is wrong with the message; ev then holds
// only the Kafka position of m. Besides what does not parse or lacks what its kind
// needs, poison is: a message over Options.MaxMessageBytes, text that is not
// Unicode, a key, envelope, source or metadata field given twice, a value that
// does not match the type its schema gives it (or a column the schema does not
// have), a number no apply could carry exactly, a row of more than 16,384 columns,
// and a message key that is another row's (see checkKey).
func (d *Decoder) Decode(m Message, ev *Event) error {
	err := d.decode(m, ev)
	if len(m.Key)+len(m.Value) > keepParseTreeBelow {
		d.releaseParseTrees()
	}
	return err
}

// keepParseTreeBelow: a parser keeps the memory of its parse tree for the next
// message, some fifty bytes per JSON value; after a larger message than this it is
// let go, so that one hostile message does not pin tens of megabytes per decoder.
const keepParseTreeBelow = 64 << 10

func (d *Decoder) releaseParseTrees() {
	d.parser, d.conv.doc = fastjson.Parser{}, fastjson.Parser{}
}

func (d *Decoder) decode(m Message, ev *Event) error {
	*ev = Event{Position: kafkaPosition(m)}
	d.buf = d.buf[:0]
	d.keySchema, d.rowSchema = nil, nil
	if part, err := d.checkWire(m); err != nil {
		return poison(part, err)
	}
	key, err := d.decodeKey(m.Key)
	if err != nil {
		return poison("key", err)
	}
	ev.Key = key
	if err := d.decodeValue(m.Value, ev); err != nil {
		*ev = Event{Position: kafkaPosition(m)}
		return poison("value", err)
	}
	return nil
}

// DecodeKey decodes a message key on its own: a JSON object of key columns, bare or
// in a JsonConverter {"schema":…,"payload":…} envelope, with the same canonical
// values as rows. A null or empty key gives a nil Row. Anything else (a bare scalar,
// an array, an object without columns) is an error wrapping ErrPoison. The Row is
// valid until the next Decode or DecodeKey call.
func (d *Decoder) DecodeKey(key []byte) (Row, error) {
	d.buf = d.buf[:0]
	if err := checkText(key); err != nil {
		return nil, poison("key", err)
	}
	row, err := d.decodeKey(key)
	if err != nil {
		return nil, poison("key", err)
	}
	return row, nil
}

func kafkaPosition(m Message) Position {
	return Position{Kind: PosKafka, A: uint64(max(m.Partition, 0)), B: uint64(max(m.Offset, 0))}
}

func (d *Decoder) decodeKey(b []byte) (Row, error) {
	if len(b) == 0 {
		return nil, nil
	}
	root, err := parse(&d.parser, b)
	if err != nil {
		return nil, err
	}
	schema, payload, err := splitConverterEnvelope(root)
	if err != nil {
		return nil, err
	}
	if payload.Type() == fastjson.TypeNull {
		return nil, nil
	}
	o, err := payload.Object()
	if err != nil {
		return nil, fmt.Errorf("got %s, want an object of key columns", kindOf(payload))
	}
	d.keyTypes.read(schema)
	d.keySchema = schema
	d.key, err = d.decodeRow(d.key, o, &d.keyTypes)
	if err != nil {
		return nil, err
	}
	if len(d.key) == 0 {
		return nil, errors.New("an object without columns")
	}
	return d.key, nil
}

// splitConverterEnvelope returns the schema and payload of JsonConverter output with
// schemas.enable=true (an object of exactly "schema" and "payload"), or a nil schema
// and root itself. It refuses a schema that is not an object, and a schema without
// its payload. (Either of them twice is found when the object turns out to be no
// Debezium envelope either.)
func splitConverterEnvelope(root *fastjson.Value) (schema, payload *fastjson.Value, err error) {
	o, err := root.Object()
	if err != nil {
		return nil, root, nil
	}
	switch o.Len() {
	case 2:
		schema, payload = o.Get("schema"), o.Get("payload")
		if schema == nil || payload == nil {
			break
		}
		if t := schema.Type(); t != fastjson.TypeObject && t != fastjson.TypeNull {
			return nil, nil, fmt.Errorf(`"schema" is %s, want an object or null: not JsonConverter's schema envelope`, kindOf(schema))
		}
		return schema, payload, nil
	case 1:
		if schema = o.Get("schema"); schema != nil && schema.Get("type") != nil {
			return nil, nil, errors.New(`a JsonConverter envelope with a "schema" and no "payload"`)
		}
	}
	return nil, root, nil
}

// repeated returns the first of names that o has more than once, or "". JSON
// parsers disagree on duplicates (fastjson's Get finds the first, Jackson keeps the
// last), and no Kafka Connect converter writes any: they mean another producer.
func repeated(o *fastjson.Object, names ...string) string {
	var seen uint32
	dup := ""
	o.Visit(func(key []byte, _ *fastjson.Value) {
		for i, n := range names {
			if string(key) == n {
				if seen&(1<<i) != 0 && dup == "" {
					dup = n
				}
				seen |= 1 << i
			}
		}
	})
	return dup
}

// checkKey checks that the message key belongs to the row. Debezium builds the key
// from the row's own key columns (its primary key, or message.key.columns), so a key
// column the row image also has holds the same value there, where key and row are
// decoded alike (both with a schema giving the column the same logical type, or
// both without). A key whose values differ is another row's: concord would file the
// change under one record while Kafka partitioned it by another's key. A key column
// the row lacks proves nothing (column.exclude.list may leave the primary key out of
// the value, never out of the key), and key columns named "__…" are left out: SMTs
// add them (ByLogicalTableRouter's __dbz__physicalTableIdentifier).
func (d *Decoder) checkKey(key, row Row, rowTypes *fieldTypes) error {
	if key == nil || row == nil {
		return nil
	}
	for i, k := range key {
		v, ok := row.Get(k.Name)
		if !ok || strings.HasPrefix(k.Name, "__") || string(v) == "null" || string(k.Value) == "null" {
			continue
		}
		kt, typedKey := d.keyTypes.lookup([]byte(k.Name), i)
		rt, typedRow := rowTypes.lookup([]byte(k.Name), -1)
		alike := typedKey == typedRow && kt.kind == rt.kind && kt.scale == rt.scale
		if alike && !bytes.Equal(v, k.Value) {
			return fmt.Errorf("the message key says %s is %.40s, the row says %.40s: the key is another row's", k.Name, k.Value, v)
		}
	}
	return nil
}

func (d *Decoder) decodeValue(value []byte, ev *Event) error {
	if len(value) == 0 {
		ev.Kind = KindTombstone
		return nil
	}
	root, err := parse(&d.parser, value)
	if err != nil {
		return err
	}
	schema, payload, err := splitConverterEnvelope(root)
	if err != nil {
		return err
	}
	if payload.Type() == fastjson.TypeNull {
		ev.Kind = KindTombstone
		return nil
	}
	obj, err := payload.Object()
	if err != nil {
		return fmt.Errorf("got %s, want an object", kindOf(payload))
	}
	schemaName := schema.GetStringBytes("name")
	switch {
	case isHeartbeat(schemaName, obj):
		ev.Kind = KindHeartbeat
		return nil
	case d.isTxMarker(schemaName, obj):
		return d.decodeTxMarker(obj, ev)
	case d.opts.Unwrapped && !hasEnvelope(obj):
		return d.decodeUnwrapped(schema, obj, ev)
	}
	return d.decodeEnvelope(schema, obj, ev)
}

// isHeartbeat recognises a heartbeat by its schema name or, without a schema, by its
// only field ts_ms.
func isHeartbeat(schemaName []byte, obj *fastjson.Object) bool {
	return string(schemaName) == heartbeatSchemaName || obj.Len() == 1 && obj.Get("ts_ms") != nil
}

// isTxMarker recognises a transaction metadata record by its schema name or, without
// a schema, by a BEGIN/END status and an id and no op. For unwrapped rows, which
// could have such columns, it also wants event_count.
func (d *Decoder) isTxMarker(schemaName []byte, obj *fastjson.Object) bool {
	if string(schemaName) == txSchemaName {
		return true
	}
	if obj.Get("op") != nil || obj.Get("id") == nil {
		return false
	}
	if status := string(stringOrNil(obj.Get("status"))); status != "BEGIN" && status != "END" {
		return false
	}
	return !d.opts.Unwrapped || obj.Get("event_count") != nil
}

func (d *Decoder) decodeTxMarker(obj *fastjson.Object, ev *Event) error {
	switch status := obj.Get("status"); string(stringOrNil(status)) {
	case "BEGIN":
		ev.Kind = KindTxBegin
	case "END":
		ev.Kind = KindTxEnd
	default:
		return fmt.Errorf(`transaction "status" is %s, want "BEGIN" or "END"`, preview(status))
	}
	id := stringOrNil(obj.Get("id"))
	if len(id) == 0 {
		return errors.New(`transaction record has no "id" string`)
	}
	ev.TxID = d.internTxID(id)
	return nil
}

func (d *Decoder) internTxID(id []byte) string {
	if string(id) != d.txID {
		d.txID = string(id)
	}
	return d.txID
}

// hasEnvelope reports whether an object looks like a Debezium envelope rather than
// a row: an "op" string next to a "source" object (rows carry JSON columns as strings).
func hasEnvelope(obj *fastjson.Object) bool {
	source := obj.Get("source")
	return stringOrNil(obj.Get("op")) != nil && source != nil && source.Type() == fastjson.TypeObject
}

func (d *Decoder) decodeEnvelope(schema *fastjson.Value, obj *fastjson.Object, ev *Event) error {
	if name := repeated(obj, "op", "before", "after", "source", "transaction"); name != "" {
		return fmt.Errorf("%q appears twice", name)
	}
	opValue := obj.Get("op")
	if opValue == nil {
		if name := repeated(obj, "schema", "payload"); name != "" {
			return fmt.Errorf("%q appears twice", name)
		}
		return errNoEnvelope
	}
	op, err := parseOp(opValue, "op", "cudrtm")
	if err != nil {
		return err
	}
	if err := d.decodeSource(obj.Get("source"), ev); err != nil {
		return err
	}
	if err := d.decodeTransaction(obj.Get("transaction"), ev); err != nil {
		return err
	}
	switch op {
	case 't':
		ev.Kind = KindTruncate
		return nil
	case 'm':
		ev.Kind = KindMessage
		return nil
	}
	ev.Kind, ev.Op = KindChange, op
	if err := d.decodeImages(schema, obj, ev); err != nil {
		return err
	}
	if ev.After != nil {
		return d.checkKey(ev.Key, ev.After, &d.afterTypes)
	}
	return d.checkKey(ev.Key, ev.Before, &d.beforeTypes)
}

// parseOp reads an operation letter, which must be one of allowed.
func parseOp(v *fastjson.Value, field, allowed string) (Op, error) {
	s, err := v.StringBytes()
	if err != nil {
		return OpNone, fmt.Errorf("%q is %s, want a string", field, kindOf(v))
	}
	for i := range len(allowed) {
		if len(s) == 1 && s[0] == allowed[i] {
			return Op(s[0]), nil
		}
	}
	return OpNone, fmt.Errorf("%q is %.20q, want one of %s", field, s, listLetters(allowed))
}

// listLetters turns "cud" into "c, u, d".
func listLetters(letters string) string {
	b := make([]byte, 0, 3*len(letters))
	for i := range len(letters) {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, letters[i])
	}
	return string(b)
}

func (d *Decoder) decodeSource(v *fastjson.Value, ev *Event) error {
	if !present(v) {
		return nil
	}
	o, err := v.Object()
	if err != nil {
		return fmt.Errorf(`"source" is %s, want an object`, kindOf(v))
	}
	var s sourceInfo
	s.fromObject(o)
	return d.applySource(ev, &s, false)
}

// decodeTransaction reads the `transaction` block of a data event
// (provide.transaction.metadata=true).
func (d *Decoder) decodeTransaction(v *fastjson.Value, ev *Event) error {
	if !present(v) {
		return nil
	}
	if v.Type() != fastjson.TypeObject {
		return fmt.Errorf(`"transaction" is %s, want an object or null`, kindOf(v))
	}
	id := stringOrNil(v.Get("id"))
	if len(id) == 0 {
		return errors.New(`"transaction" has no "id" string`)
	}
	ev.TxID = d.internTxID(id)
	return nil
}

// decodeImages reads `before` and `after` and checks that the op has the images it needs.
func (d *Decoder) decodeImages(schema *fastjson.Value, obj *fastjson.Object, ev *Event) error {
	var err error
	ev.Before, err = d.decodeImage(obj.Get("before"), "before", envelopeFieldSchema(schema, "before"), &d.beforeTypes, &d.before)
	if err != nil {
		return err
	}
	ev.After, err = d.decodeImage(obj.Get("after"), "after", envelopeFieldSchema(schema, "after"), &d.afterTypes, &d.after)
	if err != nil {
		return err
	}
	switch {
	case ev.Op != OpDelete && ev.After == nil:
		return fmt.Errorf(`op %s has no "after" image`, ev.Op)
	case ev.Op == OpDelete && ev.After != nil:
		return errors.New(`op d has an "after" image`)
	case ev.Op == OpDelete && ev.Before == nil && ev.Key == nil:
		return errors.New(`op d has neither a "before" image nor a message key: the deleted record is unknown`)
	}
	return nil
}

// decodeImage decodes a row image into *buf's array; it returns nil when the image
// is absent or null.
func (d *Decoder) decodeImage(v *fastjson.Value, name string, fieldSchema *fastjson.Value, types *fieldTypes, buf *Row) (Row, error) {
	if !present(v) {
		return nil, nil
	}
	o, err := v.Object()
	if err != nil {
		return nil, fmt.Errorf("%q is %s, want an object or null", name, kindOf(v))
	}
	types.read(fieldSchema)
	if fieldSchema != nil && (d.rowSchema == nil || name == "after") {
		d.rowSchema = fieldSchema
	}
	row, err := d.decodeRow(*buf, o, types)
	*buf = row
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return row, nil
}
