// Package replay runs the resolver over a file of Kafka messages (DESIGN.md section 8)
// with in-memory state, writing one JSON decision per line. It is what
// `concord replay` runs for offline what-if analysis and what the conformance tests
// drive. With Messages it writes instead the Kafka messages concord would produce,
// built by the pipeline's own encoders. Output is deterministic: the same input and
// configuration give the same bytes.
package replay
