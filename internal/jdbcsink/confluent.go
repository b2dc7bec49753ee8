package jdbcsink

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// cfConfig is the subset of JdbcSinkConfig the emulation reads (confluentinc/kafka-connect-jdbc
// src/main/java/io/confluent/connect/jdbc/sink/JdbcSinkConfig.java).
type cfConfig struct {
	name               string // the connector's name, printed in messages
	tableNameFormat    string // default ${topic}
	insertMode         string // insert (default), upsert, update
	pkMode             string // default none
	pkFields           []string
	deleteEnabled      bool
	batchSize          int // default 3000
	maxRetries         int // default 10
	replaceNullDefault bool
	stringValueColumn  string // string.output.value.column.name, default record_value
	quote              bool   // quote.sql.identifiers: always (default) or never
	zone               *time.Location
}

func parseCfConfig(props map[string]string) (*cfConfig, error) {
	c := &cfConfig{
		name:              stringProp(props, "name", "null"),
		tableNameFormat:   strings.TrimSpace(stringProp(props, "table.name.format", "${topic}")),
		insertMode:        strings.ToLower(stringProp(props, "insert.mode", "insert")),
		pkMode:            strings.ToLower(stringProp(props, "pk.mode", pkNone)),
		pkFields:          configList(props["pk.fields"]),
		stringValueColumn: stringProp(props, "string.output.value.column.name", "record_value"),
	}
	var err error
	if c.deleteEnabled, err = boolProp(props, "delete.enabled", false); err != nil {
		return nil, err
	}
	if c.replaceNullDefault, err = boolProp(props, "replace.null.with.default", true); err != nil {
		return nil, err
	}
	if c.batchSize, err = intProp(props, "batch.size", 3000); err != nil {
		return nil, err
	}
	if c.maxRetries, err = intProp(props, "max.retries", 10); err != nil {
		return nil, err
	}
	switch q := strings.ToLower(stringProp(props, "quote.sql.identifiers", "always")); q {
	case "always", "never":
		c.quote = q == "always"
	default:
		return nil, configError("Invalid value " + q + " for configuration quote.sql.identifiers")
	}
	zone := stringProp(props, "db.timezone", "UTC")
	if c.zone, err = time.LoadLocation(zone); err != nil {
		return nil, configError("Invalid value " + zone + " for configuration db.timezone")
	}
	return c, c.validate(props)
}

func (c *cfConfig) validate(props map[string]string) error {
	switch c.insertMode {
	case "insert", "upsert", "update":
	default:
		return configError("Invalid value " + c.insertMode + " for configuration insert.mode")
	}
	switch c.pkMode {
	case pkNone, pkRecordKey, pkRecordValue:
	case pkKafka:
		return configError("jdbcsink: pk.mode=kafka is not emulated")
	default:
		return configError("Invalid value " + c.pkMode + " for configuration pk.mode")
	}
	if c.deleteEnabled && c.pkMode != pkRecordKey {
		return configError("Primary key mode must be 'record_key' when delete support is enabled")
	}
	return refuseUnemulated(props, map[string]string{
		"auto.create": "false", "auto.evolve": "false",
		"fields.whitelist": "", "timestamp.fields.list": "",
		"date.calendar.system": "LEGACY",
	})
}

func configError(msg string) error { return &JavaError{Class: "ConfigException", Message: msg} }

// configList is ConfigDef's LIST parsing: comma-separated, trimmed, empty dropped.
func configList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ConfluentSink is one task of Confluent's JDBC sink connector
// (io.confluent.connect.jdbc.JdbcSinkConnector) with PostgreSqlDatabaseDialect and
// auto.create=false. It is not safe for concurrent use.
//
// Put is JdbcSinkTask.put over JdbcDbWriter.write (confluentinc/kafka-connect-jdbc
// src/main/java/io/confluent/connect/jdbc/sink/JdbcSinkTask.java, JdbcDbWriter.java,
// BufferedRecords.java): one transaction for the whole batch, committed at the end.
// On an SQLException it is rolled back and, while max.retries lasts, the task throws
// a RetriableException (Put returns ErrRetriable; put the same records again); then it
// fails (ErrTaskFailed). Any other exception (a refused record, a missing table, a
// field type it cannot bind) fails the task with nothing of the batch committed.
type ConfluentSink struct {
	conn      *pgx.Conn
	cfg       *cfConfig
	conv      converters
	tables    map[cfTableID]*tableDef // DbStructure's TableDefinitions cache
	remaining int                     // remainingRetries
	err       error
}

// NewConfluentSink starts a task with the connector properties (table.name.format,
// insert.mode, pk.mode, pk.fields, delete.enabled, ...; key.converter.schemas.enable
// and value.converter.schemas.enable configure the JsonConverters). conn stands for
// the task's JDBC connection; the caller keeps ownership.
func NewConfluentSink(ctx context.Context, conn *pgx.Conn, props map[string]string) (*ConfluentSink, error) {
	cfg, err := parseCfConfig(props)
	if err != nil {
		return nil, err
	}
	conv, err := newConverters(props)
	if err != nil {
		return nil, err
	}
	if err := pgjdbcSession(ctx, conn.PgConn()); err != nil {
		return nil, fmt.Errorf("jdbcsink: setting pgjdbc's session parameters: %w", err)
	}
	return &ConfluentSink{conn: conn, cfg: cfg, conv: conv, tables: map[cfTableID]*tableDef{}, remaining: cfg.maxRetries}, nil
}

// Put writes a batch as the worker hands it to the task; see ConfluentSink.
func (s *ConfluentSink) Put(ctx context.Context, records []Record) error {
	if s.err != nil {
		return failed(connectError("jdbcsink: the task already failed", s.err))
	}
	if len(records) == 0 {
		return nil
	}
	recs, err := s.conv.convert(records)
	if err != nil {
		s.err = err
		return failed(err)
	}
	err = inTransaction(ctx, s.conn, func() error { return s.write(ctx, recs) })
	switch {
	case err == nil:
		s.remaining = s.cfg.maxRetries
		return nil
	case isSQLException(err) && s.remaining > 0:
		// The writer is closed and made anew: its table cache goes with it.
		s.remaining--
		s.tables = map[cfTableID]*tableDef{}
		return retriable(&JavaError{Class: "RetriableException", Message: "java.sql.SQLException", Cause: err})
	case isSQLException(err):
		s.err = connectError("java.sql.SQLException", err)
	default:
		s.err = err
	}
	return failed(s.err)
}

// write is JdbcDbWriter.write: a buffer per destination table, flushed in the order
// the tables were first seen (the Java HashMap's order is its own).
func (s *ConfluentSink) write(ctx context.Context, recs []sinkRecord) error {
	schema, catalog, err := s.currentSchema(ctx)
	if err != nil {
		return err
	}
	buffers := map[cfTableID]*cfBuffer{}
	var order []cfTableID
	for i := range recs {
		id, err := s.destinationTable(recs[i].Topic, schema, catalog)
		if err != nil {
			return err
		}
		b := buffers[id]
		if b == nil {
			b = &cfBuffer{sink: s, id: id}
			buffers[id] = b
			order = append(order, id)
		}
		if err := b.add(ctx, &recs[i]); err != nil {
			return err
		}
	}
	for _, id := range order {
		if err := buffers[id].flush(ctx); err != nil {
			return err
		}
	}
	return nil
}

// currentSchema is Connection.getSchema and getCatalog.
func (s *ConfluentSink) currentSchema(ctx context.Context) (schema, catalog string, err error) {
	if err := s.conn.QueryRow(ctx, "SELECT current_schema(), current_database()").Scan(&schema, &catalog); err != nil {
		return "", "", sqlError("reading the current schema", err)
	}
	return schema, catalog, nil
}

// cfTableID is the connector's TableId.
type cfTableID struct{ catalog, schema, table string }

// destinationTable is JdbcDbWriter.destinationTable: table.name.format with ${topic}
// (dots kept), parsed as [catalog.][schema.]table, completed with the connection's.
func (s *ConfluentSink) destinationTable(topic, schema, catalog string) (cfTableID, error) {
	name := strings.ReplaceAll(s.cfg.tableNameFormat, "${topic}", topic)
	if name == "" {
		return cfTableID{}, connectErrorf("Destination table name for topic '%s' is empty using the format string '%s'", topic, s.cfg.tableNameFormat)
	}
	id := cfTableID{catalog: catalog, schema: schema}
	parts := splitIdentifier(name)
	switch len(parts) {
	case 1:
		id.table = parts[0]
	case 3:
		id.catalog, id.schema, id.table = parts[0], parts[1], parts[2]
	default:
		id.schema, id.table = parts[len(parts)-2], parts[len(parts)-1]
	}
	return id, nil
}

// quoteIdent is ExpressionBuilder's identifier quoting (QuoteMethod ALWAYS by default).
func (s *ConfluentSink) quoteIdent(name string) string {
	if s.cfg.quote {
		return `"` + name + `"`
	}
	return name
}

// tableName is TableId.appendTo: "catalog"."schema"."table" (also its toString).
func (s *ConfluentSink) tableName(id cfTableID) string {
	var parts []string
	for _, p := range []string{id.catalog, id.schema} {
		if p != "" {
			parts = append(parts, s.quoteIdent(p))
		}
	}
	return strings.Join(append(parts, s.quoteIdent(id.table)), ".")
}

// tableDefinition is DbStructure.tableDefinition (TableDefinitions.get): cached once
// found, nil when the table does not exist.
func (s *ConfluentSink) tableDefinition(ctx context.Context, id cfTableID) (*tableDef, error) {
	if t := s.tables[id]; t != nil {
		return t, nil
	}
	t, err := findTable(ctx, s.conn, &id.schema, id.table)
	if err != nil || t == nil {
		return nil, err
	}
	if err := readTable(ctx, s.conn, t); err != nil {
		return nil, err
	}
	s.tables[id] = t
	return t, nil
}
