// Package jdbcsink is a test oracle: a Go emulation of what happens to a Kafka record
// on its way into PostgreSQL through Kafka Connect's JsonConverter and a JDBC sink
// connector, writing into a real PostgreSQL server.
//
// It is written from the real components' source code, not from concord's: each
// behaviour names the Java file it follows (repository and path). The versions read
// were apache/kafka 1eb7644349cb (JsonConverter, Connect data API, WorkerSinkTask),
// debezium/debezium aad551990299 (debezium-connector-jdbc, debezium-sink),
// confluentinc/kafka-connect-jdbc 388d41d64450 and pgjdbc/pgjdbc 3a699d57d957.
//
// The pieces:
//
//   - JSONConverter (Java's JsonConverter) turns the bytes of a record key or value
//     into Connect data (Schema, Struct, Go values for Java's Integer, String,
//     BigDecimal, ...) exactly as org.apache.kafka.connect.json.JsonConverter's
//     toConnectData does, quirks included (a JSON object in a "string" field is null).
//   - DebeziumSink is io.debezium.connector.jdbc.JdbcSinkConnector with the
//     PostgreSQL dialect; ConfluentSink is io.confluent.connect.jdbc.JdbcSinkConnector
//     with its PostgreSQL dialect. Both take connector properties as the real ones do,
//     and Put a batch as the worker would hand it to SinkTask.put.
//   - Statements are sent the way pgjdbc sends them: each parameter is declared in
//     the Parse message with the type OID pgjdbc would choose for the Java value the
//     sink binds (setString is varchar, setBigDecimal numeric, a java.sql.Timestamp
//     unspecified, ...), so PostgreSQL accepts and refuses exactly what it would for the
//     real connector. Placeholders are $n instead of ?.
//
// Settings and types the emulation does not implement (schema evolution, the
// reduction buffer, primary.key.mode=kafka, hstore, arrays, geometry, ...) are refused
// with an error starting "jdbcsink:", never silently approximated.
//
// A sink is not safe for concurrent use; one sink is one connector task. Where the
// real task would die, Put returns an error and the sink stays failed (errors.Is
// ErrTaskFailed), as a dead task stays dead until restarted: make a new sink to
// restart it. Records a failed Put did not commit are redelivered by a real worker.
package jdbcsink
