package jdbcsink

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Primary key modes (primary.key.mode / pk.mode).
const (
	pkNone        = "none"
	pkKafka       = "kafka"
	pkRecordKey   = "record_key"
	pkRecordValue = "record_value"
	pkHeader      = "record_header"
)

// dbzConfig is the subset of JdbcSinkConnectorConfig the emulation reads (debezium/debezium
// debezium-connector-jdbc/src/main/java/io/debezium/connector/jdbc/JdbcSinkConnectorConfig.java,
// debezium-sink/src/main/java/io/debezium/sink/SinkConnectorConfig.java).
type dbzConfig struct {
	insertMode       string // insert (default), upsert, update
	deleteEnabled    bool
	truncateEnabled  bool
	collectionFormat string // collection.name.format (alias table.name.format), default ${topic}
	pkMode           string // default none
	pkFields         map[string]bool
	quoteIdentifiers bool
	batchSize        int // default 500
	timeZone         *time.Location
}

// parseDbzConfig reads the properties and validates them as
// JdbcSinkConnectorConfig.validate does at task start. Settings the emulation does
// not implement are refused rather than ignored.
func parseDbzConfig(props map[string]string) (*dbzConfig, error) {
	c := &dbzConfig{
		insertMode:       strings.ToLower(stringProp(props, "insert.mode", "insert")),
		pkMode:           strings.ToLower(stringProp(props, "primary.key.mode", pkNone)),
		collectionFormat: stringProp(props, "collection.name.format", stringProp(props, "table.name.format", "${topic}")),
		pkFields:         setOf(props["primary.key.fields"]),
	}
	var err error
	if c.deleteEnabled, err = boolProp(props, "delete.enabled", false); err != nil {
		return nil, err
	}
	if c.truncateEnabled, err = boolProp(props, "truncate.enabled", false); err != nil {
		return nil, err
	}
	if c.quoteIdentifiers, err = boolProp(props, "quote.identifiers", false); err != nil {
		return nil, err
	}
	if c.batchSize, err = intProp(props, "batch.size", 500); err != nil {
		return nil, err
	}
	zone := stringProp(props, "use.time.zone", stringProp(props, "database.time_zone", "UTC"))
	if c.timeZone, err = time.LoadLocation(zone); err != nil {
		return nil, connectError("Failed to resolve time zone '"+zone+"', please specify a correct time zone value", err)
	}
	if err := c.validate(props); err != nil {
		return nil, err
	}
	return c, nil
}

// validate is the config's field validators (validateInsertMode,
// validateDeleteEnabled), plus refusals of what is not emulated.
func (c *dbzConfig) validate(props map[string]string) error {
	invalid := func(problem string) error {
		return connectError("Error configuring an instance of JdbcSinkConnectorConfig; check the logs for details", connectErrorf("%s", problem))
	}
	switch c.insertMode {
	case "insert", "update":
	case "upsert":
		_, mode := props["primary.key.mode"]
		_, fields := props["primary.key.fields"]
		switch {
		case !mode && !fields:
			return invalid("When using UPSERT, please define 'primary.key.mode' and 'primary.key.fields'.")
		case !mode:
			return invalid("When using UPSERT, please define 'primary.key.mode'.")
		}
	default:
		return invalid(fmt.Sprintf("Invalid value %s for configuration insert.mode", c.insertMode))
	}
	switch c.pkMode {
	case pkNone, pkRecordKey, pkRecordValue:
	case pkKafka, pkHeader:
		return invalid("jdbcsink: primary.key.mode=" + c.pkMode + " is not emulated")
	default:
		return invalid(fmt.Sprintf("Invalid value %s for configuration primary.key.mode", c.pkMode))
	}
	if c.deleteEnabled && c.pkMode != pkRecordKey && c.pkMode != pkRecordValue {
		return invalid("When 'delete.enabled' is set to 'true', the 'primary.key.mode' option must be set to 'record_key', 'record_value', or 'record_header'.")
	}
	return refuseUnemulated(props, map[string]string{
		"schema.evolution":                       "none",
		"use.reduction.buffer":                   "false",
		"dialect.postgres.unnest.insert.enabled": "false",
		"enable.sces":                            "false",
		"field.include.list":                     "",
		"field.exclude.list":                     "",
	})
}

// refuseUnemulated fails for a property set to anything but the one value the
// emulation implements.
func refuseUnemulated(props map[string]string, only map[string]string) error {
	for name, want := range only {
		if v, ok := props[name]; ok && !strings.EqualFold(v, want) {
			return connectErrorf("jdbcsink: %s=%s is not emulated (only %q)", name, v, want)
		}
	}
	return nil
}

// setOf is Strings.setOf: split on commas, items not trimmed, empty ones dropped.
func setOf(s string) map[string]bool {
	m := map[string]bool{}
	for _, p := range strings.Split(s, ",") {
		if p != "" {
			m[p] = true
		}
	}
	return m
}

// DebeziumSink is one task of Debezium's JDBC sink connector
// (io.debezium.connector.jdbc.JdbcSinkConnector) writing to PostgreSQL through
// PostgresDatabaseDialect. It is not safe for concurrent use.
//
// Put is JdbcSinkConnectorTask.put over JdbcChangeEventSink.execute (debezium/debezium
// debezium-connector-jdbc/src/main/java/io/debezium/connector/jdbc/JdbcChangeEventSink.java):
// records are buffered per table, upserts and deletes apart, and each flush of a
// buffer is its own transaction (DefaultRecordWriter.write). A buffer is flushed when
// it reaches batch.size, when the key or value schema changes, when a delete follows
// upserts of the same table (or an upsert follows deletes), and at the end of Put. So
// a Put is NOT one transaction: when a flush fails, the flushes before it in the same
// Put stay committed and the rest is not written. The real task keeps the exception
// and throws it from the next put (failing the task), and marks none of the batch's
// records processed, so on restart they are all redelivered; here Put returns it at
// once and the sink stays failed (ErrTaskFailed).
type DebeziumSink struct {
	conn     *pgx.Conn
	cfg      *dbzConfig
	conv     converters
	reserved map[string]bool
	upserts  bufferSet
	deletes  bufferSet
	err      error // the exception that failed the task
}

// NewDebeziumSink starts a task with the connector properties (as in the connector's
// JSON config: insert.mode, primary.key.mode, primary.key.fields, delete.enabled,
// collection.name.format, ...; key.converter.schemas.enable and
// value.converter.schemas.enable configure the JsonConverters, both default true).
// conn stands for the task's JDBC connection; the sink sets pgjdbc's session settings
// on it and the caller keeps ownership.
func NewDebeziumSink(ctx context.Context, conn *pgx.Conn, props map[string]string) (*DebeziumSink, error) {
	cfg, err := parseDbzConfig(props)
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
	reserved, err := reservedWords(ctx, conn)
	if err != nil {
		return nil, err
	}
	return &DebeziumSink{
		conn: conn, cfg: cfg, conv: conv, reserved: reserved,
		upserts: newBufferSet(), deletes: newBufferSet(),
	}, nil
}

// Put writes a batch as the worker hands it to the task. See DebeziumSink for what a
// failure leaves committed.
func (s *DebeziumSink) Put(ctx context.Context, records []Record) error {
	if s.err != nil {
		return failed(connectError("JDBC sink connector failure", s.err))
	}
	recs, err := s.conv.convert(records)
	if err == nil {
		err = s.execute(ctx, recs)
	}
	if err != nil {
		s.err = err
		return failed(err)
	}
	return nil
}

// execute is JdbcChangeEventSink.execute.
func (s *DebeziumSink) execute(ctx context.Context, recs []sinkRecord) error {
	for _, sr := range recs {
		r, err := newDbzRecord(sr, s.cfg)
		if err != nil {
			return err
		}
		if r.isSchemaChange() {
			continue
		}
		id := s.collectionID(r)
		if r.truncate {
			if !s.cfg.truncateEnabled {
				continue
			}
			return connectErrorf("jdbcsink: truncate events are not emulated")
		}
		if err := s.route(ctx, id, r); err != nil {
			return err
		}
	}
	if err := s.flushAll(ctx, &s.upserts); err != nil {
		return err
	}
	return s.flushAll(ctx, &s.deletes)
}

// route sends a record to its table's upsert or delete buffer, first flushing the
// other buffer of that table so the order of changes to a row is kept.
func (s *DebeziumSink) route(ctx context.Context, id collectionID, r *dbzRecord) error {
	if r.delete || r.isTombstone() {
		if !s.cfg.deleteEnabled {
			return nil // "Deletes are not enabled, skipping delete"
		}
		if r.isTombstone() && s.cfg.pkMode == pkRecordValue {
			return nil // "Tombstone skipped because primary.key.mode is record_value"
		}
		if err := s.flushBuffer(ctx, id, s.upserts.get(id)); err != nil {
			return err
		}
		return s.add(ctx, &s.deletes, id, r)
	}
	if err := s.flushBuffer(ctx, id, s.deletes.get(id)); err != nil {
		return err
	}
	return s.add(ctx, &s.upserts, id, r)
}

// add is getRecordsToFlush plus flushing what it returns: the buffer is made (and
// the table read) on first use; a record with a field the cached table lacks flushes
// it and reads the table again.
func (s *DebeziumSink) add(ctx context.Context, set *bufferSet, id collectionID, r *dbzRecord) error {
	b, err := s.buffer(ctx, set, id, r)
	if err != nil {
		return err
	}
	missing, err := s.missingFields(r, b.table)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		if err := s.flushBuffer(ctx, id, b); err != nil {
			return err
		}
		set.remove(id)
		if b, err = s.buffer(ctx, set, id, r); err != nil {
			return err
		}
	}
	return s.flushRecords(ctx, id, b.table, b.add(r, s.cfg.batchSize))
}

func (s *DebeziumSink) buffer(ctx context.Context, set *bufferSet, id collectionID, r *dbzRecord) (*dbzBuffer, error) {
	if b := set.get(id); b != nil {
		return b, nil
	}
	t, err := s.checkTable(ctx, id, r)
	if err != nil {
		if isSQLException(err) {
			return nil, connectError(fmt.Sprintf("Error while checking and applying table changes for collection '%s'", id), err)
		}
		return nil, err
	}
	b := &dbzBuffer{table: t}
	set.put(id, b)
	return b, nil
}

func (s *DebeziumSink) flushAll(ctx context.Context, set *bufferSet) error {
	for _, id := range set.order {
		if err := s.flushBuffer(ctx, id, set.m[id]); err != nil {
			return err
		}
	}
	return nil
}

func (s *DebeziumSink) flushBuffer(ctx context.Context, id collectionID, b *dbzBuffer) error {
	if b == nil {
		return nil
	}
	return s.flushRecords(ctx, id, b.table, b.flush())
}

// flushRecords is flushBufferWithRetries: one transaction (DefaultRecordWriter.write);
// exceptions are not retriable (connection.restart.on.errors is off) and are wrapped.
func (s *DebeziumSink) flushRecords(ctx context.Context, id collectionID, t *tableDef, recs []*dbzRecord) error {
	if len(recs) == 0 {
		return nil
	}
	if err := s.write(ctx, t, recs); err != nil {
		return connectError("Failed to flush records for table '"+id.name+"'", err)
	}
	return nil
}

// write builds the statement from the first record, binds every record and runs the
// batch in a transaction, rolled back on any error.
func (s *DebeziumSink) write(ctx context.Context, t *tableDef, recs []*dbzRecord) error {
	sql, err := s.statement(t, recs[0])
	if err != nil {
		return err
	}
	entries := make([][]param, 0, len(recs))
	for _, r := range recs {
		ps, err := s.bindRecord(r)
		if err != nil {
			return err
		}
		entries = append(entries, ps)
	}
	return inTransaction(ctx, s.conn, func() error {
		if err := executeBatch(ctx, s.conn.PgConn(), sql, entries); err != nil {
			// Session.doWork converts the SQLException (hibernate/hibernate-orm
			// JdbcCoordinatorImpl.coordinateWork: convert(e, "error executing work")); the
			// JDBCException subclass it picks by SQLState, and its exact message layout,
			// are not emulated.
			return &JavaError{Class: "JDBCException", Message: "error executing work", Cause: err}
		}
		return nil
	})
}

// inTransaction runs fn between BEGIN and COMMIT, rolling back when it fails.
func inTransaction(ctx context.Context, conn *pgx.Conn, fn func() error) error {
	if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
		return sqlError("BEGIN", err)
	}
	if err := fn(); err != nil {
		_, _ = conn.Exec(ctx, "ROLLBACK")
		return err
	}
	if _, err := conn.Exec(ctx, "COMMIT"); err != nil {
		return sqlError("COMMIT", err)
	}
	return nil
}

// dbzBuffer is RecordBuffer (use.reduction.buffer=false) with its table descriptor,
// read when the buffer was made and kept across Puts.
type dbzBuffer struct {
	table       *tableDef
	keySchema   *Schema
	valueSchema *Schema
	records     []*dbzRecord
}

// add is RecordBuffer.add: a schema change flushes what was buffered before the new
// record; reaching batch.size flushes everything.
func (b *dbzBuffer) add(r *dbzRecord, batchSize int) []*dbzRecord {
	if len(b.records) == 0 {
		b.keySchema, b.valueSchema = r.keySchema, r.valueSchema
	}
	if !schemasEqual(b.keySchema, r.keySchema) || !schemasEqual(b.valueSchema, r.valueSchema) {
		b.keySchema, b.valueSchema = r.keySchema, r.valueSchema
		flushed := b.flush()
		b.records = append(b.records, r)
		return flushed
	}
	b.records = append(b.records, r)
	if len(b.records) >= batchSize {
		return b.flush()
	}
	return nil
}

func (b *dbzBuffer) flush() []*dbzRecord {
	out := b.records
	b.records = nil
	return out
}

// bufferSet is a LinkedHashMap of buffers by table: flushed in insertion order.
type bufferSet struct {
	order []collectionID
	m     map[collectionID]*dbzBuffer
}

func newBufferSet() bufferSet { return bufferSet{m: map[collectionID]*dbzBuffer{}} }

func (s *bufferSet) get(id collectionID) *dbzBuffer { return s.m[id] }

func (s *bufferSet) put(id collectionID, b *dbzBuffer) {
	if _, ok := s.m[id]; !ok {
		s.order = append(s.order, id)
	}
	s.m[id] = b
}

func (s *bufferSet) remove(id collectionID) {
	delete(s.m, id)
	for i, o := range s.order {
		if o == id {
			s.order = append(s.order[:i], s.order[i+1:]...)
			return
		}
	}
}
