// Package world models the outside world concord keeps in sync, as the real
// components behave, so that the resolver's model-based test, the demo and the
// end-to-end tests all run against one model and cannot drift apart.
//
// A Table is one system's PostgreSQL table: rows in the system's own column names,
// every column present (NULL unless written), a trigger-maintained timestamp column
// when the system has one, and the change Debezium's PostgreSQL connector publishes
// for every commit once the connector is capturing (before that, a Snapshot reads
// what is there). Sink writes follow Debezium's JDBC sink (DecodeApply, Table.Sink):
// an upsert of the apply's columns only, an insert with the other columns NULL when
// the row is missing, ON CONFLICT DO NOTHING for a key-only insert, a delete that
// commits nothing when the row is gone. Every Change carries its Cause (a user's
// write, a sink write of a named apply, or a snapshot read): the ground truth a
// checker holds concord's claims against.
//
// The package is pure and deterministic: no clock (callers pass the system's clock),
// no I/O, no randomness. A Table is not safe for concurrent use.
package world
