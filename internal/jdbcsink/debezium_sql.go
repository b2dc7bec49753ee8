package jdbcsink

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// collectionID is CollectionId: "" stands for a null part.
type collectionID struct {
	realm, namespace, name string
}

// String is CollectionId.toString, as the sink's messages print it.
func (c collectionID) String() string {
	return fmt.Sprintf("CollectionId{realm='%s', namespace='%s', name='%s'}", nullText(c.realm), nullText(c.namespace), c.name)
}

// fullName is CollectionId.toFullIdentiferString.
func (c collectionID) fullName() string {
	parts := []string{}
	for _, p := range []string{c.realm, c.namespace} {
		if p != "" && p != "null" {
			parts = append(parts, p)
		}
	}
	return strings.Join(append(parts, c.name), ".")
}

func nullText(s string) string {
	if s == "" {
		return "null"
	}
	return s
}

// collectionID is DefaultCollectionNamingStrategy (${topic} is the topic with dots
// as underscores; ${source.*} is not emulated) and GeneralDatabaseDialect.getCollectionId
// (TableId.parseParts: catalog.schema.table, schema.table or table).
func (s *DebeziumSink) collectionID(r *dbzRecord) collectionID {
	name := strings.ReplaceAll(s.cfg.collectionFormat, "${topic}", strings.ReplaceAll(r.Topic, ".", "_"))
	parts := splitIdentifier(name)
	switch len(parts) {
	case 3:
		return collectionID{realm: parts[0], namespace: parts[1], name: parts[2]}
	case 2:
		return collectionID{namespace: parts[0], name: parts[1]}
	}
	return collectionID{name: name}
}

// splitIdentifier splits on dots outside double quotes and unquotes the parts.
func splitIdentifier(s string) []string {
	var parts []string
	var cur strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
		case r == '.' && !quoted:
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteRune(r)
		}
	}
	return append(parts, cur.String())
}

// lookupID is PostgresDatabaseDialect.tableExists/readTable's id: lower-cased unless
// quote.identifiers is on.
func (s *DebeziumSink) lookupID(id collectionID) collectionID {
	if s.cfg.quoteIdentifiers {
		return id
	}
	return collectionID{strings.ToLower(id.realm), strings.ToLower(id.namespace), strings.ToLower(id.name)}
}

// checkTable is DefaultRecordWriter.checkAndApplyTableChangesIfNeeded with
// schema.evolution=none: a missing table cannot be created, missing columns cannot be
// added.
func (s *DebeziumSink) checkTable(ctx context.Context, id collectionID, r *dbzRecord) (*tableDef, error) {
	look := s.lookupID(id)
	var ns *string
	if look.namespace != "" {
		ns = &look.namespace
	}
	t, err := findTable(ctx, s.conn, ns, look.name)
	if err != nil {
		return nil, err
	}
	if t == nil {
		// createTable refuses ("Cannot create table ... because schema evolution is
		// disabled"), then alterTableIfNeeded finds no table either.
		return nil, sqlErrorf("Could not find table: %s", id.fullName())
	}
	if err := readTable(ctx, s.conn, t); err != nil {
		return nil, err
	}
	missing, err := s.missingFields(r, t)
	if err != nil || len(missing) == 0 {
		return t, err
	}
	for _, f := range missing {
		if !f.schema.Optional && f.schema.Default == nil {
			return nil, sqlErrorf("Cannot ALTER table '%s' because field '%s' is not optional but has no default value", id.fullName(), f.name)
		}
	}
	return nil, sqlErrorf("Cannot alter table %s because schema evolution is disabled", id.fullName())
}

// missingFields is GeneralDatabaseDialect.resolveMissingFields: the record's fields
// with no column of their resolved name.
func (s *DebeziumSink) missingFields(r *dbzRecord, t *tableDef) ([]*dbzField, error) {
	fields, err := r.jdbcFields()
	if err != nil {
		return nil, err
	}
	var missing []*dbzField
	for _, f := range fields {
		if t.column(s.columnName(f)) == nil {
			missing = append(missing, f)
		}
	}
	return missing, nil
}

// columnName is resolveColumnName: lower-cased unless quote.identifiers is on.
func (s *DebeziumSink) columnName(f *dbzField) string {
	if s.cfg.quoteIdentifiers {
		return f.columnName()
	}
	return strings.ToLower(f.columnName())
}

// identifier is Hibernate's rendering (IdentifierHelper.toIdentifier + render):
// quoted when quote.identifiers is on, when already quoted, or when a reserved word.
func (s *DebeziumSink) identifier(text string) string {
	if strings.HasPrefix(text, `"`) && strings.HasSuffix(text, `"`) && len(text) > 1 {
		return text
	}
	if s.cfg.quoteIdentifiers || s.reserved[strings.ToLower(text)] {
		return `"` + text + `"`
	}
	return text
}

// tableName is getQualifiedTableName of the table read from the catalog (its schema
// as the catalog reports it).
func (s *DebeziumSink) tableName(t *tableDef) string {
	if t.schema != "" {
		return s.identifier(t.schema) + "." + s.identifier(t.name)
	}
	return s.identifier(t.name)
}

// column is TableDescriptor.getColumnByName.
func (s *DebeziumSink) column(t *tableDef, f *dbzField) (*columnDef, error) {
	name := s.columnName(f)
	c := t.column(name)
	if c == nil {
		return nil, &JavaError{Class: "DebeziumException", Message: fmt.Sprintf(
			"Failed to find column '%s' in table '%s'. If you have not enabled 'quote.identifiers', this could be related to column/field case differences.",
			name, t.name)}
	}
	return c, nil
}

// statement is DefaultRecordWriter.getSqlStatementInfo: the dialect's statement for
// the first record of the flush, '?' numbered as $n.
func (s *DebeziumSink) statement(t *tableDef, r *dbzRecord) (string, error) {
	keys, err := r.keyFieldNames()
	if err != nil {
		return "", err
	}
	var sql string
	switch {
	case r.delete:
		sql, err = s.deleteSQL(t, r, keys)
	case s.cfg.insertMode == "upsert":
		if len(keys) == 0 {
			return "", connectErrorf("Cannot write to table %s with no key fields defined.", t.name)
		}
		sql, err = s.upsertSQL(t, r, keys)
	case s.cfg.insertMode == "update":
		sql, err = s.updateSQL(t, r, keys)
	default:
		sql, err = s.insertSQL(t, r, keys)
	}
	return numberPlaceholders(sql), err
}

// upsertSQL is PostgresDatabaseDialect.getUpsertStatement: INSERT of the record's
// key and non-key fields ON CONFLICT (key) DO UPDATE SET only the non-key fields, or
// DO NOTHING when there are none.
func (s *DebeziumSink) upsertSQL(t *tableDef, r *dbzRecord, keys []string) (string, error) {
	nonKeys, err := r.nonKeyFieldNames()
	if err != nil {
		return "", err
	}
	all := append(append([]string{}, keys...), nonKeys...)
	values, err := s.bindings(t, r, all)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO %s (%s)%s VALUES (%s) ON CONFLICT (%s)", s.tableName(t),
		strings.Join(s.columns(r, all), ","), overriding(t), strings.Join(values, ","), strings.Join(s.columns(r, keys), ","))
	if len(nonKeys) == 0 {
		b.WriteString(" DO NOTHING")
		return b.String(), nil
	}
	sets := make([]string, len(nonKeys))
	for i, c := range s.columns(r, nonKeys) {
		sets[i] = c + "=EXCLUDED." + c
	}
	b.WriteString(" DO UPDATE SET " + strings.Join(sets, ","))
	return b.String(), nil
}

// insertSQL is GeneralDatabaseDialect.getInsertStatement.
func (s *DebeziumSink) insertSQL(t *tableDef, r *dbzRecord, keys []string) (string, error) {
	nonKeys, err := r.nonKeyFieldNames()
	if err != nil {
		return "", err
	}
	all := append(append([]string{}, keys...), nonKeys...)
	values, err := s.bindings(t, r, all)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("INSERT INTO %s (%s)%s VALUES (%s)", s.tableName(t),
		strings.Join(s.columns(r, all), ", "), overriding(t), strings.Join(values, ", ")), nil
}

// updateSQL is GeneralDatabaseDialect.getUpdateStatement.
func (s *DebeziumSink) updateSQL(t *tableDef, r *dbzRecord, keys []string) (string, error) {
	nonKeys, err := r.nonKeyFieldNames()
	if err != nil {
		return "", err
	}
	sets, err := s.equalsBindings(t, r, nonKeys)
	if err != nil {
		return "", err
	}
	sql := "UPDATE " + s.tableName(t) + " SET " + strings.Join(sets, ", ")
	if len(keys) > 0 {
		where, err := s.equalsBindings(t, r, keys)
		if err != nil {
			return "", err
		}
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	return sql, nil
}

// deleteSQL is GeneralDatabaseDialect.getDeleteStatement.
func (s *DebeziumSink) deleteSQL(t *tableDef, r *dbzRecord, keys []string) (string, error) {
	sql := "DELETE FROM " + s.tableName(t)
	if len(keys) == 0 {
		return sql, nil
	}
	where, err := s.equalsBindings(t, r, keys)
	if err != nil {
		return "", err
	}
	return sql + " WHERE " + strings.Join(where, " AND "), nil
}

// overriding is PostgresDatabaseDialect.getOverrideClause.
func overriding(t *tableDef) string {
	if t.hasAutoIncrement() {
		return " OVERRIDING SYSTEM VALUE"
	}
	return ""
}

func (s *DebeziumSink) columns(r *dbzRecord, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = s.identifier(s.columnName(r.fields[n]))
	}
	return out
}

// bindings is columnQueryBindingFromField for each field: the placeholder, with the
// cast the field's type asks for.
func (s *DebeziumSink) bindings(t *tableDef, r *dbzRecord, names []string) ([]string, error) {
	out := make([]string, len(names))
	for i, n := range names {
		b, err := s.binding(t, r.fields[n])
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

func (s *DebeziumSink) equalsBindings(t *tableDef, r *dbzRecord, names []string) ([]string, error) {
	out := make([]string, len(names))
	for i, n := range names {
		f := r.fields[n]
		b, err := s.binding(t, f)
		if err != nil {
			return nil, err
		}
		out[i] = s.identifier(s.columnName(f)) + "=" + b
	}
	return out, nil
}

func (s *DebeziumSink) binding(t *tableDef, f *dbzField) (string, error) {
	col, err := s.column(t, f)
	if err != nil {
		return "", err
	}
	typ, err := dbzTypeFor(f.schema)
	if err != nil {
		return "", err
	}
	return typ.queryBinding(col, f.schema), nil
}

// bindRecord is DefaultRecordWriter.bindValues: a delete binds its key; insert and
// upsert bind key then non-key fields, update non-key then key fields. An optional
// field's value is taken without its default, a required one's with it.
func (s *DebeziumSink) bindRecord(r *dbzRecord) ([]param, error) {
	keys, err := r.keyFieldNames()
	if err != nil {
		return nil, err
	}
	key, _ := r.key()
	bindKey := func(ps []param) ([]param, error) {
		if key == nil {
			return ps, nil
		}
		return s.bindFields(r, key, keys, ps)
	}
	if r.delete {
		return bindKey(nil)
	}
	nonKeys, err := r.nonKeyFieldNames()
	if err != nil {
		return nil, err
	}
	if s.cfg.insertMode == "update" {
		ps, err := s.bindFields(r, r.payload, nonKeys, nil)
		if err != nil {
			return nil, err
		}
		return bindKey(ps)
	}
	ps, err := bindKey(nil)
	if err != nil {
		return nil, err
	}
	return s.bindFields(r, r.payload, nonKeys, ps)
}

func (s *DebeziumSink) bindFields(r *dbzRecord, src *Struct, names []string, ps []param) ([]param, error) {
	for _, n := range names {
		f := r.fields[n]
		var v any
		if f.schema.Optional {
			v, _ = src.GetWithoutDefault(n)
		} else {
			v, _ = src.Get(n)
		}
		typ, err := dbzTypeFor(f.schema)
		if err != nil {
			return nil, err
		}
		p, err := typ.bind(f.schema, v, s.cfg.timeZone)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// numberPlaceholders turns JDBC's ? placeholders into PostgreSQL's $1, $2, ...
func numberPlaceholders(sql string) string {
	var b strings.Builder
	n := 0
	for _, r := range sql {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
