// Package pipeline runs the resolver as a streaming processor: a kafka-go consumer
// group over every system's input topic, one worker per assigned partition number
// (input topics are co-partitioned, so partition N of every topic holds the same
// records), state in a state.Store, apply events and poison messages out through one
// batched kafka-go Writer, DLQ entries into a DLQ recorder.
//
// Per batch the effects are ordered so that a crash anywhere reprocesses and never
// loses a change: apply events and poison messages are produced and acknowledged,
// then DLQ entries are recorded (idempotent), then the record states are written
// (compare-and-set, fenced by the consumer-group generation), then offsets are
// committed. Reprocessing yields the same event ids.
package pipeline
