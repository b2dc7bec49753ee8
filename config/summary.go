package config

import (
	"fmt"
	"slices"
	"strings"
)

// Summary describes in words what a valid Config means: the systems with their topics,
// keys, clocks, column mappings, apply topics and owned fields, then the shared fields and
// the resolution settings. It never shows the Redis password.
func (c *Config) Summary() string {
	var b strings.Builder
	c.summarizeHeader(&b)
	for _, name := range c.SystemNames() {
		c.summarizeSystem(&b, name)
	}
	b.WriteString("\n")
	c.summarizeShared(&b)
	c.summarizeResolution(&b)
	return b.String()
}

// line writes one indented "label: value" line with the values aligned.
func line(b *strings.Builder, label, format string, args ...any) {
	fmt.Fprintf(b, "  %-*s%s\n", 12, label+":", fmt.Sprintf(format, args...))
}

func (c *Config) summarizeHeader(b *strings.Builder) {
	names := c.SystemNames()
	fmt.Fprintf(b, "%s: syncs %d systems (%s)\n", c.Name, len(names), strings.Join(names, ", "))
	line(b, "kafka", "%s", c.kafkaSummary())
	line(b, "redis", "%s", c.redisSummary())
	line(b, "record key", "%s", strings.Join(c.Key(), ", "))
}

func (c *Config) summarizeSystem(b *strings.Builder, name string) {
	s := c.Systems[name]
	fmt.Fprintf(b, "\n%s\n", name)
	line(b, "reads", "%s (%s envelope)", s.Topic, s.Envelope)
	if column, ok := s.TimestampColumn(); ok {
		line(b, "timestamp", "column %s", column)
	} else {
		line(b, "timestamp", "%s (Debezium commit time)", SourceTimestamp)
	}
	line(b, "columns", "%s", describeColumns(s))
	if len(s.Columns) > 0 {
		types := make([]string, 0, len(s.Columns))
		for _, col := range sortedKeys(s.Columns) {
			types = append(types, col+" "+s.Columns[col])
		}
		line(b, "types", "%s (the rest learned from its events' schemas)", strings.Join(types, ", "))
	}
	if s.OriginMarker != "" {
		line(b, "marker", "apply event ids are written to column %s", s.OriginMarker)
	}
	line(b, "applies to", "%s (%s)", s.Apply.Topic, describeFormat(s.Apply))
	line(b, "owns", "%s", listOrNone(c.fieldsOwnedBy(name)))
}

func describeColumns(s *System) string {
	if len(s.Fields) == 0 {
		return "same as the canonical field names"
	}
	pairs := make([]string, 0, len(s.Fields))
	for _, field := range sortedKeys(s.Fields) {
		pairs = append(pairs, field+" -> "+s.Fields[field])
	}
	return strings.Join(pairs, ", ") + " (others keep their names)"
}

func describeFormat(a Apply) string {
	s := a.Format + " without a schema"
	if a.WithSchema() {
		s = a.Format + " with a Connect schema"
	}
	if a.Sink == SinkConfluent {
		s += ", for the Confluent JDBC sink: Connect's logical types only"
	}
	return s
}

// fieldsOwnedBy returns the fields whose authority is owner, sorted.
func (c *Config) fieldsOwnedBy(owner string) []string {
	var fields []string
	for field, o := range c.Authority {
		if o == owner {
			fields = append(fields, field)
		}
	}
	slices.Sort(fields)
	return fields
}

func listOrNone(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	return strings.Join(items, ", ")
}

func (c *Config) summarizeShared(b *strings.Builder) {
	r := c.Resolution
	fmt.Fprintf(b, "shared fields: %s\n", listOrNone(c.fieldsOwnedBy(Shared)))
	unit := "each system's timestamp"
	if r.Granularity == GranularityRecord {
		unit = "each system's timestamp, for the whole record"
	}
	fmt.Fprintf(b, "  last write wins on %s; changes within %s of each other go to review\n", unit, r.ClockSkewTolerance)
	for _, o := range r.ClockSkewOverrides {
		if len(o.Systems) == 2 {
			fmt.Fprintf(b, "  between %s and %s: within %s\n", o.Systems[0], o.Systems[1], o.Tolerance)
		}
	}
	if r.UnmappedFields == UnmappedShared {
		b.WriteString("unmapped fields: treated as shared\n")
	} else {
		b.WriteString("unmapped fields: skipped (logged once per field and counted)\n")
	}
}

func (c *Config) summarizeResolution(b *strings.Builder) {
	r := c.Resolution
	owned := "owned fields: a change by a system that does not own the field is not propagated"
	if r.EnforceAuthority {
		owned += ", and the owner's value is applied back to it"
	}
	fmt.Fprintln(b, owned)
	fmt.Fprintf(b, "granularity: %s\n", describeGranularity(r.Granularity))
	fmt.Fprintf(b, "delete vs concurrent update: %s\n", describeDeletes(r.Deletes))
	fmt.Fprintf(b, "other deletes: %s; deleted records keep a tombstone for %s\n", describePropagation(c.PropagatesDeletes()), r.TombstoneRetention)
	fmt.Fprintf(b, "pairing window: %s\n", describePairWindow(r.PairWindow))
	fmt.Fprintf(b, "applies not seen back within %s: dropped, counted and sent to review\n", r.ApplyTimeout)
	fmt.Fprintf(b, "loop guard: a record with more than %d applies within %s is held for review\n", r.LoopGuard.MaxApplies, r.LoopGuard.Window)
	fmt.Fprintf(b, "initial load: disagreements go by authority, then row timestamp columns, then %s\n", describePrefer(r.InitialLoadPrefer))
}

func describeGranularity(g string) string {
	if g == GranularityRecord {
		return "record (the latest write wins the whole row)"
	}
	return "field (only fields both systems changed conflict)"
}

func describeDeletes(d string) string {
	switch d {
	case DeletesDeleteWins:
		return "the delete wins"
	case DeletesUpdateWins:
		return "the update wins"
	default:
		return "goes to review"
	}
}

func describePropagation(propagate bool) string {
	if propagate {
		return "propagated"
	}
	return "not propagated"
}

func describePairWindow(d Duration) string {
	if d.Duration == 0 {
		return "off (concurrent changes are caught from in-flight applies)"
	}
	return fmt.Sprintf("changes are held up to %s so near-simultaneous ones are decided together", d)
}

func describePrefer(system string) string {
	if system == "" {
		return "review"
	}
	return "the version in " + system
}

// Warnings lists settings that are valid but that the usual sinks cannot work with,
// one sentence each with its key; config check prints them and run logs them.
func (c *Config) Warnings() []string {
	var ws []string
	for _, name := range c.SystemNames() {
		if s := c.Systems[name]; !s.Apply.WithSchema() {
			ws = append(ws, fmt.Sprintf("systems.%s.apply.schema: false writes apply events without a Connect schema, "+
				"which Debezium's JDBC sink refuses (primary.key.mode=record_key cannot have a null key schema) and so does "+
				"the Confluent JDBC sink (it needs a Struct value with a schema); only a consumer of schemaless JSON can read them", name))
		}
	}
	return append(ws, c.connectionWarnings()...)
}
