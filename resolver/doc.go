// Package resolver decides, for each change one system made to one record, what every
// system must apply (DESIGN.md section 3): duplicates and echoes of concord's own
// applies produce nothing, plain changes are applied everywhere, and concurrent changes
// are decided by field authority, last-write-wins with a clock-skew tolerance, or held
// in the DLQ for review.
//
// The resolver is pure. Resolve takes a record's State, a Change and the time, updates
// the state in place and appends Decisions to an Output; it does no I/O and reads no
// clock, which is what makes replay, what-if analysis and exhaustive tests possible.
// Canonicalize maps a decoded Debezium event onto canonical field names and a record
// ID; Expire does the time-driven work (apply timeouts, the pairing window).
package resolver
