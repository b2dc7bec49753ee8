package jdbcsink

import (
	"regexp"
	"strings"
)

// dbzField is a JdbcFieldDescriptor: a key or value field the statement writes.
type dbzField struct {
	name   string
	schema *Schema
	isKey  bool
}

// columnName is FieldDescriptor.columnName: the source column name Debezium may
// propagate as a schema parameter, else the field name.
func (f *dbzField) columnName() string {
	if n, ok := f.schema.Parameters["__debezium.source.column.name"]; ok {
		return n
	}
	return f.name
}

// dbzRecord is JdbcKafkaSinkRecord over KafkaDebeziumSinkRecord (debezium/debezium
// debezium-connector-jdbc/src/main/java/io/debezium/connector/jdbc/JdbcKafkaSinkRecord.java,
// debezium-sink/src/main/java/io/debezium/bindings/kafka/KafkaDebeziumSinkRecord.java):
// whether the value is a Debezium envelope or flattened, a delete, and which struct
// (after, before or the value itself) is the payload.
type dbzRecord struct {
	sinkRecord
	cfg      *dbzConfig
	debezium bool // an envelope: schema name ends ".Envelope", or unnamed with an "op" field
	delete   bool
	truncate bool
	payload  *Struct

	// Filled lazily, like the Java fields, by keyFieldNames and nonKeyFieldNames.
	filteredKeyDone bool
	filteredKey     *Struct
	keyNames        []string
	keyNamesDone    bool
	nonKeyNames     []string
	nonKeyDone      bool
	fields          map[string]*dbzField // jdbcFields, by name
	fieldOrder      []string
}

var cloudEventsPattern = regexp.MustCompile(`^(?:.*CloudEvents\.Envelope)$`)

// newDbzRecord follows the KafkaDebeziumSinkRecord constructor.
func newDbzRecord(sr sinkRecord, cfg *dbzConfig) (*dbzRecord, error) {
	r := &dbzRecord{sinkRecord: sr, cfg: cfg, fields: map[string]*dbzField{}}
	if sr.valueSchema != nil && cloudEventsPattern.MatchString(sr.valueSchema.Name) {
		return nil, connectErrorf("jdbcsink: CloudEvents values (schema %q) are not emulated", sr.valueSchema.Name)
	}
	if err := r.classify(); err != nil {
		return nil, err
	}
	var err error
	switch {
	case r.delete:
		r.payload, err = r.kafkaPayload(!r.debezium)
	case !r.debezium || !r.truncate: // isFlattened() || !isTruncate()
		r.payload, err = r.kafkaPayload(!r.debezium)
	}
	return r, err
}

// classify is isDebeziumMessage, isDelete and isTruncate.
func (r *dbzRecord) classify() error {
	if r.value != nil && r.valueSchema != nil {
		v, err := r.valueStruct()
		if err != nil {
			return err
		}
		name := v.Schema.Name
		r.debezium = (name != "" && strings.HasSuffix(name, ".Envelope")) || (name == "" && v.Schema.Field("op") != nil)
	}
	if !r.debezium {
		r.delete = r.value == nil
		return nil
	}
	op, err := r.op()
	if err != nil {
		return err
	}
	r.delete, r.truncate = op == "d", op == "t"
	return nil
}

// op is Envelope.Operation.forCode(value.getString("op")), lower-cased; "" for null.
func (r *dbzRecord) op() (string, error) {
	v, err := r.valueStruct()
	if err != nil {
		return "", err
	}
	op, err := v.getString("op")
	if err != nil || op == nil {
		return "", err
	}
	return strings.ToLower(*op), nil
}

// valueStruct is (Struct) value(): a null value with a schema is an empty Struct of
// that schema.
func (r *dbzRecord) valueStruct() (*Struct, error) {
	if r.value == nil {
		if r.valueSchema.Type != TypeStruct {
			return nil, dataErrorf("Not a struct schema: %s", r.valueSchema)
		}
		return newStruct(r.valueSchema), nil
	}
	s, ok := r.value.(*Struct)
	if !ok {
		return nil, classCast(r.value, "org.apache.kafka.connect.data.Struct")
	}
	return s, nil
}

// kafkaPayload is getKafkaPayload: the value itself when flattened, else the
// envelope's "before" (deletes) or "after".
func (r *dbzRecord) kafkaPayload(flattened bool) (*Struct, error) {
	if r.valueSchema == nil {
		return nil, nil
	}
	raw, err := r.valueStruct()
	if err != nil || flattened {
		return raw, err
	}
	if r.delete {
		return raw.getStruct("before")
	}
	return raw.getStruct("after")
}

// isTombstone: no value and no value schema (a null from JsonConverter).
func (r *dbzRecord) isTombstone() bool { return r.value == nil && r.valueSchema == nil }

// isSchemaChange: a value schema whose name contains "SchemaChangeValue".
func (r *dbzRecord) isSchemaChange() bool {
	return r.valueSchema != nil && strings.Contains(r.valueSchema.Name, "SchemaChangeValue")
}

// key returns filteredKey (getFilteredKey for primary.key.mode).
func (r *dbzRecord) key() (*Struct, error) {
	if r.filteredKeyDone {
		return r.filteredKey, nil
	}
	k, err := r.computeFilteredKey()
	if err != nil {
		return nil, err
	}
	r.filteredKey, r.filteredKeyDone = k, true
	return k, nil
}

func (r *dbzRecord) computeFilteredKey() (*Struct, error) {
	switch r.cfg.pkMode {
	case pkRecordKey:
		if r.keySchema == nil {
			return nil, connectErrorf("Configured primary key mode 'record_key' cannot have null schema")
		}
		if r.keySchema.Type.IsPrimitive() {
			// keyAsStruct: (Struct) key, which a primitive key is not.
			if r.sinkRecord.key == nil {
				return nil, nil
			}
			return nil, classCast(r.sinkRecord.key, "org.apache.kafka.connect.data.Struct")
		}
		if r.keySchema.Type != TypeStruct {
			return nil, connectErrorf("An unsupported record key schema type detected: %s", r.keySchema.Type)
		}
		k, _ := r.sinkRecord.key.(*Struct)
		return filterFields(k, r.cfg.pkFields)
	case pkRecordValue:
		if r.payload == nil {
			return nil, connectErrorf("Cannot extract primary key from a null record value")
		}
		return filterFields(r.payload, r.cfg.pkFields)
	default: // none
		return nil, nil
	}
}

// filterFields is KafkaDebeziumSinkRecord.filterFields with no field filter: with
// allowed primary key fields, only those (in the struct's order, values with
// defaults); otherwise every field, with its non-null value.
func filterFields(data *Struct, allowed map[string]bool) (*Struct, error) {
	if data == nil {
		return nil, nullPointer(`Cannot invoke "org.apache.kafka.connect.data.Struct.schema()" because "data" is null`)
	}
	s := &Schema{Type: TypeStruct}
	for _, f := range data.Schema.Fields {
		if len(allowed) == 0 || allowed[f.Name] {
			s.Fields = append(s.Fields, Field{Name: f.Name, Index: len(s.Fields), Schema: f.Schema})
		}
	}
	out := newStruct(s)
	for _, f := range s.Fields {
		v, _ := data.Get(f.Name)
		if len(allowed) > 0 {
			if err := validateValue(fieldLocation(f.Name), f.Schema, v); err != nil {
				return nil, err
			}
		}
		out.Values[f.Index] = v
	}
	return out, nil
}

// keyFieldNames registers the key fields as jdbcFields and returns their names.
func (r *dbzRecord) keyFieldNames() ([]string, error) {
	if r.keyNamesDone {
		return r.keyNames, nil
	}
	k, err := r.key()
	if err != nil {
		return nil, err
	}
	if k != nil {
		for _, f := range k.Schema.Fields {
			r.addField(&dbzField{name: f.Name, schema: f.Schema, isKey: true})
			r.keyNames = append(r.keyNames, f.Name)
		}
	}
	r.keyNamesDone = true
	return r.keyNames, nil
}

// nonKeyFieldNames registers the payload's other fields (getFilteredPayload: a null
// payload is a NullPointerException).
func (r *dbzRecord) nonKeyFieldNames() ([]string, error) {
	if r.nonKeyDone {
		return r.nonKeyNames, nil
	}
	p, err := filterFields(r.payload, nil)
	if err != nil {
		return nil, err
	}
	for _, f := range p.Schema.Fields {
		if r.fields[f.Name] != nil {
			continue
		}
		r.addField(&dbzField{name: f.Name, schema: f.Schema})
		r.nonKeyNames = append(r.nonKeyNames, f.Name)
	}
	r.nonKeyDone = true
	return r.nonKeyNames, nil
}

func (r *dbzRecord) addField(f *dbzField) {
	if r.fields[f.name] == nil {
		r.fieldOrder = append(r.fieldOrder, f.name)
	}
	r.fields[f.name] = f
}

// jdbcFields is JdbcKafkaSinkRecord.jdbcFields: for a record with a value, computing
// the key and non-key fields first (a tombstone's stay as computed so far).
func (r *dbzRecord) jdbcFields() ([]*dbzField, error) {
	if !r.truncate && !r.isTombstone() && len(r.fields) == 0 {
		if _, err := r.keyFieldNames(); err != nil {
			return nil, err
		}
		if _, err := r.nonKeyFieldNames(); err != nil {
			return nil, err
		}
	}
	out := make([]*dbzField, len(r.fieldOrder))
	for i, n := range r.fieldOrder {
		out[i] = r.fields[n]
	}
	return out, nil
}
