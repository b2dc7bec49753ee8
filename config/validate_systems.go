package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/concord-sync/concord/codecs"
)

func (v *validator) systems() {
	if n := len(v.c.Systems); n < 2 {
		v.add("systems", "need at least two systems to sync, found %d", n)
	}
	for _, name := range v.c.SystemNames() {
		s := v.c.Systems[name]
		if s == nil {
			s = &System{Name: name}
		}
		v.system(name, s)
	}
}

func (v *validator) system(name string, s *System) {
	key := "systems." + name
	switch {
	case !validName(name):
		v.add(key, "system name %q %s", name, nameRule)
	case name == Shared:
		v.add(key, "%q cannot be a system name: it means every system in authority", Shared)
	}
	if s.Topic == "" {
		v.add(key+".topic", "required: the topic of this system's change events")
	}
	v.checkEnum(key+".envelope", s.Envelope, EnvelopeDebezium, EnvelopeUnwrapped)
	v.timestamp(key, s)
	v.originMarker(key, s)
	v.fields(key, s)
	v.apply(key, s)
	v.columnTypes(key, s)
}

func (v *validator) timestamp(key string, s *System) {
	key += ".timestamp"
	column, isColumn := s.TimestampColumn()
	if strings.HasPrefix(column, "source.") {
		isColumn = false
	}
	switch {
	case s.Timestamp == "":
		v.add(key, "must not be empty: write %s or a column of the row", SourceTimestamp)
	case !isColumn && s.Timestamp != SourceTimestamp:
		v.add(key, "%q: of the source block only %s is supported; otherwise name a column of the row", s.Timestamp, SourceTimestamp)
	case isColumn && slices.Contains(v.keyColumns(s), column):
		v.add(key, "%q is a key column; the timestamp must be a separate column", column)
	}
}

func (v *validator) originMarker(key string, s *System) {
	key += ".origin_marker"
	column, isColumn := s.TimestampColumn()
	switch {
	case s.OriginMarker == "":
	case slices.Contains(v.keyColumns(s), s.OriginMarker):
		v.add(key, "%q is a key column; the origin marker must be a separate column", s.OriginMarker)
	case isColumn && column == s.OriginMarker:
		v.add(key, "%q is also the timestamp column", column)
	}
}

// keyColumns returns the columns holding s's key fields.
func (v *validator) keyColumns(s *System) []string {
	columns := make([]string, len(s.Key))
	for i, field := range s.Key {
		columns[i] = s.Column(field)
	}
	return columns
}

// fields checks that each column holds at most one canonical field.
func (v *validator) fields(key string, s *System) {
	fieldByColumn := map[string]string{}
	for _, field := range sortedKeys(s.Fields) {
		column, fieldKey := s.Fields[field], key+".fields."+field
		switch prev, dup := fieldByColumn[column]; {
		case field == "":
			v.add(key+".fields", "empty canonical field name")
		case column == "":
			v.add(fieldKey, "empty column name")
		case dup:
			v.add(fieldKey, "column %q is also mapped from %s.fields.%s; a column can hold only one canonical field", column, key, prev)
		default:
			fieldByColumn[column] = field
		}
	}
}

func (v *validator) apply(key string, s *System) {
	key += ".apply"
	if s.Apply.Topic == "" && v.c.Name != "" { // without a name, "name: required" says it all
		v.add(key+".topic", "required: the topic the sink for this system reads")
	}
	v.checkEnum(key+".format", s.Apply.Format, FormatDebezium, FormatFlat)
	v.checkEnum(key+".sink", s.Apply.Sink, SinkDebezium, SinkConfluent)
	if s.Apply.Sink == SinkConfluent && s.Apply.Format != FormatFlat {
		v.add(key+".sink", "the Confluent JDBC sink reads format %s only (it has no Debezium change-event support); format is %s", FormatFlat, s.Apply.Format)
	}
}

func (v *validator) columnTypes(key string, s *System) {
	for _, column := range sortedKeys(s.Columns) {
		if _, err := codecs.ParseColumnType(s.Columns[column]); err != nil {
			v.add(key+".columns."+column, "%v", err)
		}
	}
}

// topics checks that no two systems read or write the same topic, and that concord never
// writes a topic it reads.
func (v *validator) topics() {
	inputs, applies := map[string]string{}, map[string]string{}
	for _, name := range v.fileOrder() {
		if s := v.c.Systems[name]; s != nil && s.Topic != "" {
			firstOwner(inputs, s.Topic, name, func(prev string) {
				v.add("systems."+name+".topic", "%q is also the topic of systems.%s", s.Topic, prev)
			})
		}
	}
	for _, name := range v.fileOrder() {
		if s := v.c.Systems[name]; s != nil && s.Apply.Topic != "" {
			v.applyTopic(name, s.Apply.Topic, inputs, applies)
		}
	}
}

func (v *validator) applyTopic(name, topic string, inputs, applies map[string]string) {
	key := "systems." + name + ".apply.topic"
	if reader, ok := inputs[topic]; ok {
		v.add(key, "%q is the input topic of systems.%s; concord would read its own applies and loop", topic, reader)
	}
	if v.c.Name != "" && (topic == v.c.Name+".poison" || topic == v.c.Name+".audit") {
		v.add(key, "%q is reserved for concord's own use", topic)
	}
	firstOwner(applies, topic, name, func(prev string) {
		v.add(key, "%q is also the apply topic of systems.%s", topic, prev)
	})
}

// fileOrder returns the system names in the order the file lists them (sorted for a
// Config built in code), so that of two clashing systems the later one is reported.
func (v *validator) fileOrder() []string {
	names := v.c.SystemNames()
	slices.SortStableFunc(names, func(a, b string) int {
		return v.c.src.line("systems."+a) - v.c.src.line("systems."+b)
	})
	return names
}

// firstOwner records name as the owner of topic, or calls taken with the earlier owner.
func firstOwner(owners map[string]string, topic, name string, taken func(prev string)) {
	if prev, ok := owners[topic]; ok {
		taken(prev)
		return
	}
	owners[topic] = name
}

// keys checks that every system names the same canonical key fields, in the same order
// (the order in which a composite record ID is built).
func (v *validator) keys() {
	var first *System
	for _, name := range v.fileOrder() {
		s := v.c.Systems[name]
		if s == nil || !v.systemKey(name, s) {
			continue
		}
		if first == nil {
			first = s
		} else if !slices.Equal(first.Key, s.Key) {
			v.add("systems."+name+".key", "%s differs from systems.%s.key %s; key fields are canonical names, the same in every system and in the same order: map a different column name through fields (e.g. key: %s with fields: {%s: %s})",
				formatList(s.Key), first.Name, formatList(first.Key), formatList(first.Key), first.Key[0], s.Key[0])
		}
	}
}

// systemKey checks one system's key on its own and reports whether it is usable.
func (v *validator) systemKey(name string, s *System) bool {
	key := "systems." + name + ".key"
	if len(s.Key) == 0 {
		v.add(key, "required: the canonical key field(s) that identify a record, e.g. [id]")
		return false
	}
	ok := true
	for i, field := range s.Key {
		switch {
		case field == "":
			v.add(fmt.Sprintf("%s[%d]", key, i), "empty field name")
			ok = false
		case slices.Index(s.Key, field) < i:
			v.add(fmt.Sprintf("%s[%d]", key, i), "%q is listed twice", field)
			ok = false
		}
	}
	return ok
}

func formatList(items []string) string {
	return "[" + strings.Join(items, ", ") + "]"
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
