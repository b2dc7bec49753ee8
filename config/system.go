package config

import "github.com/concord-sync/concord/codecs"

// Column returns this system's column for a canonical field: the mapping in Fields, or
// the field's own name when it is not mapped.
func (s *System) Column(field string) string {
	if column, ok := s.Fields[field]; ok {
		return column
	}
	return field
}

// FieldOf returns the canonical field a column of this system holds: the inverse of
// Column. A column that is not mapped holds the field of the same name, unless Fields
// maps that name to another column: then the column is not synced and FieldOf returns "".
// (With fields {email: contact_email}, column contact_email is "email" and a column
// named email, if there is one, is ignored.)
func (s *System) FieldOf(column string) string {
	if field, ok := s.fieldOf(column); ok {
		return field
	}
	if _, shadowed := s.Fields[column]; shadowed {
		return ""
	}
	return column
}

// fieldOf looks column up in the inverse of Fields: the index ApplyDefaults built, or a
// scan for a System whose index was not built.
func (s *System) fieldOf(column string) (string, bool) {
	if s.columns != nil {
		field, ok := s.columns[column]
		return field, ok
	}
	for field, c := range s.Fields {
		if c == column {
			return field, true
		}
	}
	return "", false
}

// TimestampColumn returns the column holding this system's last-write time, or false
// when the system uses Debezium's source.ts_ms (the default).
func (s *System) TimestampColumn() (string, bool) {
	if s.Timestamp == "" || s.Timestamp == SourceTimestamp {
		return "", false
	}
	return s.Timestamp, true
}

// ColumnType returns the configured type of one of this system's columns
// (systems.<s>.columns), or false when the file gives none.
func (s *System) ColumnType(column string) (codecs.ColumnType, bool) {
	if s.columnTypes == nil {
		t, err := codecs.ParseColumnType(s.Columns[column])
		return t, err == nil
	}
	t, ok := s.columnTypes[column]
	return t, ok
}

// indexColumns builds the column -> field index used by FieldOf. When two fields map to
// the same column (which Validate rejects) the alphabetically first field wins, so the
// index does not depend on map iteration order.
func (s *System) indexColumns() {
	s.columnTypes = make(map[string]codecs.ColumnType, len(s.Columns))
	for column, name := range s.Columns {
		if t, err := codecs.ParseColumnType(name); err == nil {
			s.columnTypes[column] = t
		}
	}
	s.columns = make(map[string]string, len(s.Fields))
	for field, column := range s.Fields {
		if prev, ok := s.columns[column]; !ok || field < prev {
			s.columns[column] = field
		}
	}
}
