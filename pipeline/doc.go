// Package pipeline runs the resolver as a streaming processor: a kafka-go consumer
// group over every system's input topic, one worker per assigned partition number
// (input topics are co-partitioned, so partition N of every topic holds the same
// records), state in a state.Store, apply events and poison messages out through one
// franz-go producer (producer.go), DLQ entries into a DLQ recorder.
//
// Per batch the effects are ordered so that a crash anywhere reprocesses and never
// loses a change: DLQ entries are recorded (idempotent), then the record states are
// written together with the batch's outbox (its messages and input positions) in one
// atomic step fenced by the partition's claim, then the messages are produced, and
// the positions are committed to the group in the background (commit.go). A new
// owner of the partition produces the outbox again and resumes after it.
// Reprocessing yields the same event ids.
package pipeline
