// Package bench is `concord bench` (DESIGN.md section 9): the real pipeline on
// generated Debezium events through an in-process Kafka broker and Redis, a plain
// consume-and-produce pass through the same broker and client for comparison, and the
// resolver's hot path alone.
package bench
