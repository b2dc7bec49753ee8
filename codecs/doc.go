// Package codecs decodes the Debezium change events concord consumes (DESIGN.md
// section 2) and the replay file lines that stand in for them (section 8).
//
// A Decoder turns one Kafka message (Kafka Connect JsonConverter output, with or
// without schemas, as a full Debezium envelope or flattened by ExtractNewRecordState)
// into an Event: its Kind (change, tombstone, heartbeat, transaction marker,
// truncate, logical message), its Op, key and row images, commit time, transaction
// id and source Position (PostgreSQL LSN, MySQL binlog file/pos/row or GTID, else
// the Kafka partition/offset).
//
// Row values are canonical JSON (see Column): Connect logical types (Decimal,
// VariableScaleDecimal, the Debezium and Connect timestamps, ZonedTimestamp, Date)
// are decoded using the message's schema when it has one, numbers keep their exact
// text, strings are escaped one way. Two systems that store the same value in
// different column types thus give the same bytes.
//
// Decoding reuses the decoder's buffers: an Event is valid until the next call, and
// steady-state decoding allocates next to nothing. A message that cannot be decoded
// yields an error wrapping ErrPoison that says what is wrong; decoding never panics.
// What is refused beyond unparsable JSON (text that is not Unicode, duplicated keys,
// a payload its schema does not describe, numbers no apply could carry, a key of
// another row, oversized messages) is listed at Decoder.Decode; the corpus in
// testdata/hostile holds an example of each.
package codecs
