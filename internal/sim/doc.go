// Package sim simulates business systems that concord keeps in sync, for `concord demo`
// and end-to-end tests.
//
// Each simulated system is a PostgreSQL table captured by Debezium and written by a JDBC
// sink. It keeps its rows in its own column names, makes random edits (creates, updates,
// deletes, and on purpose concurrent edits of a shared field with another system),
// publishes a Debezium change event (JsonConverter, schemas disabled) for every change it
// commits, its sink's writes included, and consumes its apply topic as Debezium's or
// Confluent's JDBC sink would. Sink writes come back out as change events, as they
// would from PostgreSQL: these are the echoes concord has to recognise. An optional
// timestamp column is bumped on every write, like a trigger-maintained updated_at.
//
// A Sim talks to Kafka with kafka-go; it never creates topics. Rows gives each system's
// table in canonical field names, so a test can check that systems converged.
package sim
