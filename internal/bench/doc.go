// Package bench is `concord bench` (DESIGN.md section 9): the real pipeline on
// generated Debezium events through an in-process Kafka broker and Redis, a plain
// consume-and-produce pass through the same broker and client for comparison
// (passthrough.go), and the resolver's hot path alone (hotpath.go).
//
// memory.go measures the state in Redis as Redis counts it (MEMORY USAGE, and
// used_memory over a load of many records written through the state store);
// soak.go streams a long run through `concord run` in a child process and samples its
// heap and RSS, the broker's logs trimmed behind its commits; report.go prints the
// table and the comparison with an earlier run; progress.go the progress bar.
package bench
