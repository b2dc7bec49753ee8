package jdbcsink

import (
	"strings"
	"time"
)

// insertSQL is BufferedRecords.getInsertSql with PostgreSqlDatabaseDialect's
// statements (confluentinc/kafka-connect-jdbc
// src/main/java/io/confluent/connect/jdbc/dialect/PostgreSqlDatabaseDialect.java): the
// upsert is INSERT ... ON CONFLICT (keys) DO UPDATE SET c=EXCLUDED.c over the non-key
// columns, or DO NOTHING without any.
func (s *ConfluentSink) insertSQL(id cfTableID, t *tableDef, f *cfFields) (string, error) {
	all := append(append([]string{}, f.keys...), f.nonKeys...)
	cols := strings.Join(s.quoteAll(all), ",")
	values := strings.Join(s.placeholders(t, all), ",")
	switch s.cfg.insertMode {
	case "upsert":
		if len(f.keys) == 0 {
			return "", connectErrorf("Write to table '%s' in UPSERT mode requires key field names to be known, check the primary key configuration", s.tableName(id))
		}
		sql := "INSERT INTO " + s.tableName(id) + " (" + cols + ") VALUES (" + values + ") ON CONFLICT (" + strings.Join(s.quoteAll(f.keys), ",")
		if len(f.nonKeys) == 0 {
			return sql + ") DO NOTHING", nil
		}
		sets := make([]string, len(f.nonKeys))
		for i, c := range s.quoteAll(f.nonKeys) {
			sets[i] = c + "=EXCLUDED." + c
		}
		return sql + ") DO UPDATE SET " + strings.Join(sets, ","), nil
	case "update":
		sql := "UPDATE " + s.tableName(id) + " SET " + strings.Join(s.assignments(t, f.nonKeys), ", ")
		if len(f.keys) > 0 {
			sql += " WHERE " + strings.Join(s.assignments(t, f.keys), " AND ")
		}
		return sql, nil
	}
	return "INSERT INTO " + s.tableName(id) + " (" + cols + ") VALUES (" + values + ")", nil
}

// deleteSQL is GenericDatabaseDialect.buildDeleteStatement.
func (s *ConfluentSink) deleteSQL(id cfTableID, f *cfFields) string {
	where := make([]string, len(f.keys))
	for i, c := range s.quoteAll(f.keys) {
		where[i] = c + " = ?"
	}
	return "DELETE FROM " + s.tableName(id) + " WHERE " + strings.Join(where, " AND ")
}

func (s *ConfluentSink) quoteAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = s.quoteIdent(n)
	}
	return out
}

// placeholders is columnValueVariables: ? with ::json, ::jsonb or ::uuid when the
// column (as the table definition names it) is of that type, whatever the field's.
func (s *ConfluentSink) placeholders(t *tableDef, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "?" + valueTypeCast(t, n)
	}
	return out
}

func (s *ConfluentSink) assignments(t *tableDef, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = s.quoteIdent(n) + " = ?" + valueTypeCast(t, n)
	}
	return out
}

// valueTypeCast is PostgreSqlDatabaseDialect.valueTypeCast (definitionForColumn is an
// exact-name lookup).
func valueTypeCast(t *tableDef, column string) string {
	c := t.column(column)
	if c == nil {
		return ""
	}
	switch typ := strings.ToLower(c.typeName); typ {
	case "json", "jsonb", "uuid":
		return "::" + typ
	}
	return ""
}

// bindRecord is PreparedStatementBinder.bindRecord for inserts, upserts and updates
// (updates bind the non-key fields first).
func (s *ConfluentSink) bindRecord(r *sinkRecord, f *cfFields) ([]param, error) {
	if s.cfg.insertMode == "update" {
		ps, err := s.bindNonKey(r, f, nil)
		if err != nil {
			return nil, err
		}
		return s.bindKey(r, f, ps)
	}
	ps, err := s.bindKey(r, f, nil)
	if err != nil {
		return nil, err
	}
	return s.bindNonKey(r, f, ps)
}

// bindKey is bindKeyFields: a primitive key is bound whole, a struct key field by
// field (Struct.get, with defaults).
func (s *ConfluentSink) bindKey(r *sinkRecord, f *cfFields, ps []param) ([]param, error) {
	switch s.cfg.pkMode {
	case pkRecordKey:
		if r.keySchema.Type.IsPrimitive() {
			return s.bindField(ps, r.keySchema, r.key)
		}
		key, ok := r.key.(*Struct)
		if !ok {
			return nil, classCast(r.key, "org.apache.kafka.connect.data.Struct")
		}
		return s.bindStructFields(ps, key, f.keys, true)
	case pkRecordValue:
		v, ok := r.value.(*Struct)
		if !ok {
			return nil, classCast(r.value, "org.apache.kafka.connect.data.Struct")
		}
		return s.bindStructFields(ps, v, f.keys, true)
	}
	return ps, nil
}

// bindNonKey is bindNonKeyFields: a String value is bound whole; a Struct's fields
// with or without their defaults per replace.null.with.default. A schemaless value
// (no value schema) fails as the Java does, on record.valueSchema().type().
func (s *ConfluentSink) bindNonKey(r *sinkRecord, f *cfFields, ps []param) ([]param, error) {
	if r.valueSchema == nil {
		return nil, nullPointer(`Cannot invoke "org.apache.kafka.connect.data.Schema.type()" because the return value of "org.apache.kafka.connect.sink.SinkRecord.valueSchema()" is null`)
	}
	if r.valueSchema.Type == TypeString {
		var err error
		for range f.nonKeys {
			if ps, err = s.bindField(ps, r.valueSchema, r.value); err != nil {
				return nil, err
			}
		}
		return ps, nil
	}
	v, ok := r.value.(*Struct)
	if !ok {
		return nil, classCast(r.value, "org.apache.kafka.connect.data.Struct")
	}
	return s.bindStructFields(ps, v, f.nonKeys, s.cfg.replaceNullDefault)
}

func (s *ConfluentSink) bindStructFields(ps []param, v *Struct, names []string, withDefault bool) ([]param, error) {
	for _, n := range names {
		fld := v.Schema.Field(n)
		val, _ := v.GetWithoutDefault(n)
		if withDefault {
			val, _ = v.Get(n)
		}
		var err error
		if ps, err = s.bindField(ps, fld.Schema, val); err != nil {
			return nil, err
		}
	}
	return ps, nil
}

// bindField is GenericDatabaseDialect.bindField: null is setObject(i, null); logical
// types first (maybeBindLogical), then the schema type (maybeBindPrimitive). Connect's
// Date, Time and Timestamp go through setDate/setTime/setTimestamp with a db.timezone
// calendar, which pgjdbc sends untyped. Debezium's logical types (ZonedTimestamp,
// MicroTimestamp, Json, ...) are unknown here: they bind as their plain schema type.
func (s *ConfluentSink) bindField(ps []param, schema *Schema, v any) ([]param, error) {
	p, err := s.bindValue(schema, v)
	if err != nil {
		return nil, err
	}
	return append(ps, p), nil
}

func (s *ConfluentSink) bindValue(schema *Schema, v any) (param, error) {
	if v == nil {
		return setNull(), nil
	}
	zone := s.cfg.zone
	switch schema.Name {
	case DateName:
		return bindAs(v, "java.util.Date", func(t time.Time) param { return setDateCal(t, zone) })
	case DecimalName:
		return bindAs(v, "java.math.BigDecimal", setBigDecimal)
	case TimeName:
		return bindAs(v, "java.util.Date", func(t time.Time) param { return setTimeCal(t, zone) })
	case TimestampName:
		return bindAs(v, "java.util.Date", func(t time.Time) param { return setTimestampCal(t, zone) })
	}
	switch schema.Type {
	case TypeInt8:
		return bindAs(v, "java.lang.Byte", func(b int8) param { return setShort(int16(b)) })
	case TypeInt16:
		return bindAs(v, "java.lang.Short", setShort)
	case TypeInt32:
		return bindAs(v, "java.lang.Integer", setInt)
	case TypeInt64:
		return bindAs(v, "java.lang.Long", setLong)
	case TypeFloat32:
		return bindAs(v, "java.lang.Float", setFloat)
	case TypeFloat64:
		return bindAs(v, "java.lang.Double", setDouble)
	case TypeBoolean:
		return bindAs(v, "java.lang.Boolean", setBoolean)
	case TypeString:
		return bindAs(v, "java.lang.String", setString)
	case TypeBytes:
		return bindAs(v, "[B", setBytes)
	case TypeArray:
		return param{}, connectErrorf("jdbcsink: the PostgreSQL dialect's ARRAY binding is not emulated")
	}
	return param{}, connectErrorf("Unsupported source data type: %s", schema.Type)
}

// bindAs is the cast the Java binder makes before calling the setter: a value of
// another class is a ClassCastException.
func bindAs[T any](v any, class string, set func(T) param) (param, error) {
	x, ok := v.(T)
	if !ok {
		return param{}, classCast(v, class)
	}
	return set(x), nil
}
