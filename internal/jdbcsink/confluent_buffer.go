package jdbcsink

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// cfField is a SinkRecordField.
type cfField struct {
	name   string
	schema *Schema
	isKey  bool
}

// String is SinkRecordField.toString.
func (f *cfField) String() string {
	return fmt.Sprintf("SinkRecordField{schema=%s, name='%s', isPrimaryKey=%t}", f.schema, f.name, f.isKey)
}

// cfFields is FieldsMetadata.
type cfFields struct {
	keys, nonKeys []string
	all           map[string]*cfField
	stringValue   bool // the value is a STRING written whole into one column
}

// cfBuffer is BufferedRecords (confluentinc/kafka-connect-jdbc
// src/main/java/io/confluent/connect/jdbc/sink/BufferedRecords.java).
type cfBuffer struct {
	sink           *ConfluentSink
	id             cfTableID
	records        []*sinkRecord
	keySchema      *Schema
	valueSchema    *Schema
	deletesInBatch bool
	fields         *cfFields
	table          *tableDef
	upsertSQL      string
	deleteSQL      string // "" when deletes are off
}

// add is BufferedRecords.add: validate, flush on a schema change (or before an
// upsert that follows buffered deletes), prepare the statements for new schemas.
func (b *cfBuffer) add(ctx context.Context, r *sinkRecord) error {
	cfg := b.sink.cfg
	if err := b.sink.validateRecord(r); err != nil {
		return err
	}
	schemaChanged := false
	if !schemasEqual(b.keySchema, r.keySchema) {
		b.keySchema, schemaChanged = r.keySchema, true
	}
	switch {
	case r.valueSchema == nil:
		if cfg.deleteEnabled {
			b.deletesInBatch = true
		}
	case schemasEqual(b.valueSchema, r.valueSchema):
		if cfg.deleteEnabled && b.deletesInBatch {
			if err := b.flush(ctx); err != nil {
				return err
			}
		}
	default:
		b.valueSchema, schemaChanged = r.valueSchema, true
	}
	if schemaChanged || b.fields == nil {
		if err := b.flush(ctx); err != nil {
			return err
		}
		if err := b.prepare(ctx, r); err != nil {
			return err
		}
	}
	if r.value == nil && cfg.deleteEnabled {
		b.deletesInBatch = true
	}
	b.records = append(b.records, r)
	if len(b.records) >= cfg.batchSize {
		return b.flush(ctx)
	}
	return nil
}

// prepare extracts the fields, checks the table (DbStructure.createOrAmendIfNecessary)
// and builds the statements.
func (b *cfBuffer) prepare(ctx context.Context, r *sinkRecord) error {
	fields, err := b.sink.extractFields(b.id.table, r.keySchema, r.valueSchema)
	if err != nil {
		return err
	}
	t, err := b.sink.checkTable(ctx, b.id, fields)
	if err != nil {
		return err
	}
	b.fields, b.table = fields, t
	if b.upsertSQL, err = b.sink.insertSQL(b.id, t, fields); err != nil {
		return err
	}
	b.deleteSQL = ""
	if b.sink.cfg.deleteEnabled {
		if len(fields.keys) == 0 {
			return connectErrorf("Require primary keys to support delete")
		}
		b.deleteSQL = b.sink.deleteSQL(b.id, fields)
	}
	return nil
}

// flush binds every buffered record (a null value is a delete when deletes are on)
// and executes the upserts, then the deletes.
func (b *cfBuffer) flush(ctx context.Context) error {
	if len(b.records) == 0 {
		return nil
	}
	var upserts, deletes [][]param
	for _, r := range b.records {
		if r.value == nil && b.deleteSQL != "" {
			ps, err := b.sink.bindKey(r, b.fields, nil)
			if err != nil {
				return err
			}
			deletes = append(deletes, ps)
			continue
		}
		ps, err := b.sink.bindRecord(r, b.fields)
		if err != nil {
			return err
		}
		upserts = append(upserts, ps)
	}
	pg := b.sink.conn.PgConn()
	if err := executeBatch(ctx, pg, numberPlaceholders(b.upsertSQL), upserts); err != nil {
		return err
	}
	if b.deleteSQL != "" {
		if err := executeBatch(ctx, pg, numberPlaceholders(b.deleteSQL), deletes); err != nil {
			return err
		}
	}
	b.records, b.deletesInBatch = nil, false
	return nil
}

// validateRecord is RecordValidator.create(config).validate: record_key or deletes
// need a key with a Struct or primitive schema; record_value, none, or deletes off
// need a Struct or String value with its schema (so a tombstone with deletes off, or
// a schemaless value under pk.mode=none, is refused).
func (s *ConfluentSink) validateRecord(r *sinkRecord) error {
	cfg := s.cfg
	needKey := cfg.pkMode == pkRecordKey || cfg.deleteEnabled
	needValue := cfg.pkMode == pkRecordValue || cfg.pkMode == pkNone || !cfg.deleteEnabled
	if needKey && (r.key == nil || r.keySchema == nil || (r.keySchema.Type != TypeStruct && !r.keySchema.Type.IsPrimitive())) {
		return connectErrorf("Sink connector '%s' is configured with 'delete.enabled=%t' and 'pk.mode=%s' and therefore requires "+
			"records with a non-null key and non-null Struct or primitive key schema, but found record at "+
			"(topic='%s',partition=%d,offset=%d,timestamp=%d) with a %s key and %s key schema.",
			cfg.name, cfg.deleteEnabled, cfg.pkMode, r.Topic, r.Partition, r.Offset, r.Timestamp,
			valueTypeOrNull(r.key), schemaTypeOrNull(r.keySchema))
	}
	if needValue && (r.value == nil || r.valueSchema == nil || (r.valueSchema.Type != TypeStruct && r.valueSchema.Type != TypeString)) {
		return connectErrorf("Sink connector '%s' is configured with 'delete.enabled=%t' and 'pk.mode=%s' and therefore requires "+
			"records with a non-null Struct or String value and non-null Struct or String schema, but found record at "+
			"(topic='%s',partition=%d,offset=%d,timestamp=%d) with a %s value and %s value schema.",
			cfg.name, cfg.deleteEnabled, cfg.pkMode, r.Topic, r.Partition, r.Offset, r.Timestamp,
			valueTypeOrNull(r.value), schemaTypeOrNull(r.valueSchema))
	}
	return nil
}

// valueTypeOrNull and schemaTypeOrNull are StringUtils'.
func valueTypeOrNull(v any) string {
	if v == nil {
		return "null"
	}
	return simpleClassName(v)
}

func schemaTypeOrNull(s *Schema) string {
	switch {
	case s == nil:
		return "null"
	case s.Type == TypeStruct:
		return "Struct"
	}
	return strings.ToLower(string(s.Type))
}

// extractFields is FieldsMetadata.extract for pk.mode none, record_key and
// record_value (confluentinc/kafka-connect-jdbc
// src/main/java/io/confluent/connect/jdbc/sink/metadata/FieldsMetadata.java).
func (s *ConfluentSink) extractFields(table string, keySchema, valueSchema *Schema) (*cfFields, error) {
	if valueSchema != nil && valueSchema.Type != TypeStruct && valueSchema.Type != TypeString {
		return nil, connectErrorf("Value schema must be of type Struct or String")
	}
	f := &cfFields{all: map[string]*cfField{}, stringValue: valueSchema != nil && valueSchema.Type == TypeString}
	var err error
	switch s.cfg.pkMode {
	case pkRecordKey:
		err = s.recordKeyFields(f, table, keySchema)
	case pkRecordValue:
		if f.stringValue {
			return nil, connectErrorf("pk.mode record_value is not supported with String value schemas")
		}
		err = s.recordValueFields(f, table, valueSchema)
	}
	if err != nil {
		return nil, err
	}
	if err := s.nonKeyFields(f, table, valueSchema); err != nil {
		return nil, err
	}
	if len(f.all) == 0 {
		return nil, connectErrorf("No fields found using key and value schemas for table: %s", table)
	}
	return f, nil
}

func (s *ConfluentSink) recordKeyFields(f *cfFields, table string, keySchema *Schema) error {
	pk := s.cfg.pkFields
	switch {
	case keySchema == nil:
		return connectErrorf("PK mode for table '%s' is RECORD_KEY, but record key schema is missing", table)
	case keySchema.Type.IsPrimitive():
		if len(pk) != 1 {
			return connectErrorf("Need exactly one PK column defined since the key schema for records is a primitive type, defined columns are: [%s]", strings.Join(pk, ", "))
		}
		f.addKey(pk[0], keySchema)
		return nil
	case keySchema.Type != TypeStruct:
		return connectErrorf("Key schema must be primitive type or Struct, but is of type: %s", keySchema.Type)
	}
	names := pk
	if len(pk) == 0 {
		for _, kf := range keySchema.Fields {
			names = append(names, kf.Name)
		}
	}
	for _, n := range names {
		kf := keySchema.Field(n)
		if kf == nil {
			return connectErrorf("PK mode for table '%s' is RECORD_KEY with configured PK fields [%s], but record key schema does not contain field: %s", table, strings.Join(pk, ", "), n)
		}
		f.addKey(n, kf.Schema)
	}
	return nil
}

func (s *ConfluentSink) recordValueFields(f *cfFields, table string, valueSchema *Schema) error {
	pk := s.cfg.pkFields
	if valueSchema == nil {
		return connectErrorf("PK mode for table '%s' is RECORD_VALUE, but record value schema is missing", table)
	}
	names := pk
	if len(pk) == 0 {
		for _, vf := range valueSchema.Fields {
			names = append(names, vf.Name)
		}
	}
	for _, n := range names {
		vf := valueSchema.Field(n)
		if vf == nil {
			return connectErrorf("PK mode for table '%s' is RECORD_VALUE with configured PK fields [%s], but record value schema does not contain field: %s", table, strings.Join(pk, ", "), n)
		}
		f.addKey(n, vf.Schema)
	}
	return nil
}

func (s *ConfluentSink) nonKeyFields(f *cfFields, table string, valueSchema *Schema) error {
	if f.stringValue {
		col := s.cfg.stringValueColumn
		if f.all[col] != nil {
			return connectErrorf("Configured string.output.value.column.name '%s' conflicts with a primary key column for table '%s'", col, table)
		}
		f.nonKeys = append(f.nonKeys, col)
		f.all[col] = &cfField{name: col, schema: &Schema{Type: TypeString, Optional: true}}
		return nil
	}
	if valueSchema == nil {
		return nil
	}
	for _, vf := range valueSchema.Fields {
		if f.all[vf.Name] != nil && f.all[vf.Name].isKey {
			continue
		}
		f.nonKeys = append(f.nonKeys, vf.Name)
		f.all[vf.Name] = &cfField{name: vf.Name, schema: vf.Schema}
	}
	return nil
}

func (f *cfFields) addKey(name string, s *Schema) {
	if f.all[name] == nil {
		f.keys = append(f.keys, name)
	}
	f.all[name] = &cfField{name: name, schema: s, isKey: true}
}

// checkTable is DbStructure.createOrAmendIfNecessary with auto.create and auto.evolve
// off: the table must exist and have a column for every field (matched exactly, or
// failing that ignoring case).
func (s *ConfluentSink) checkTable(ctx context.Context, id cfTableID, f *cfFields) (*tableDef, error) {
	t, err := s.tableDefinition(ctx, id)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, &JavaError{Class: "TableAlterOrCreateException", Message: fmt.Sprintf(
			"Table %s is missing and auto-creation is disabled", s.tableName(id))}
	}
	missing := missingColumns(t, f)
	if len(missing) == 0 {
		return t, nil
	}
	if t.kind != "TABLE" {
		return nil, &JavaError{Class: "TableAlterOrCreateException", Message: fmt.Sprintf(
			"%s %s is missing fields (%s) and ALTER %s is unsupported", capitalized(t.kind), s.tableName(id), fieldSet(missing), t.kind)}
	}
	for _, m := range missing {
		if !m.schema.Optional && m.schema.Default == nil {
			return nil, &JavaError{Class: "TableAlterOrCreateException", Message: fmt.Sprintf(
				"Cannot ALTER TABLE %s to add missing field %s, as the field is not optional and does not have a default value", s.tableName(id), m)}
		}
	}
	return nil, &JavaError{Class: "TableAlterOrCreateException", Message: fmt.Sprintf(
		"Table %s is missing fields (%s) and auto-evolution is disabled", s.tableName(id), fieldSet(missing))}
}

// missingColumns is DbStructure.missingFields. The Java set's order is a HashSet's;
// here it is sorted by name.
func missingColumns(t *tableDef, f *cfFields) []*cfField {
	lower := map[string]bool{}
	exact := map[string]bool{}
	for _, c := range t.columns {
		exact[c.name], lower[strings.ToLower(c.name)] = true, true
	}
	var missing []*cfField
	for _, fl := range f.all {
		if !exact[fl.name] && !lower[strings.ToLower(fl.name)] {
			missing = append(missing, fl)
		}
	}
	sort.Slice(missing, func(i, j int) bool { return missing[i].name < missing[j].name })
	return missing
}

func fieldSet(fs []*cfField) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = f.String()
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func capitalized(kind string) string {
	return strings.ToUpper(kind[:1]) + strings.ToLower(kind[1:])
}
