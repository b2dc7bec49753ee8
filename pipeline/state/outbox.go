package state

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
)

// Outbox is what a partition's last decided batch owes Kafka, written with the
// batch's states in the same atomic Put: the messages it must produce, and where the
// partition's input topics continue after it. Because the decisions and their
// messages become durable together, before anything is produced, a crash can only
// lose a batch that produced nothing (it is decided again from its inputs), or leave
// one whose messages are produced again, byte for byte, by the next owner
// (Claimed.Outbox). A batch is never decided twice, so reprocessing can never make
// different decisions with other event ids than the ones already sent.
//
// Messages is cleared once they are known to be produced: lazily, by the next batch's
// Put, or by Store.Delivered.
type Outbox struct {
	Seq      uint64           // the batch's number in the partition: 1, 2, …; 0 before the first
	Epoch    int64            // the fence epoch of the claim that wrote it (Put sets it)
	Offsets  map[string]int64 // input topic -> next offset to read after this batch
	Messages []Message
}

// Message is a Kafka message as the pipeline produces it.
type Message struct {
	Topic     string
	Partition int32 // the partition the message names, when it names one (see Headers)
	Key       []byte
	Value     []byte
	Headers   []Header
}

// Header is a Kafka message header.
type Header struct {
	Key   string
	Value []byte
}

// Claimed is what Store.Claim returns: the fence to write with, the partition's
// outbox, and, when the claim was refused, the fence value that refused it (for
// Claim's supersede).
type Claimed struct {
	Fence  Fence
	Outbox Outbox
	Stored string
}

// outboxVersion is the first byte of an encoded outbox.
const outboxVersion = 1

// Encoded layout: seq (8 bytes big-endian, so a script can compare it), version
// byte, then varints, counts and lengths:
//
//	seq | 1 | epoch | n offsets × (topic, zigzag offset) | m messages × (topic, zigzag
//	partition, key, value, h headers × (key, value))
//
// A key or value is written as uvarint(len+1) and its bytes, 0 for nil: Kafka tells
// a null key or value (a tombstone) from an empty one.
func (b *Outbox) marshal() []byte {
	out := binary.BigEndian.AppendUint64(make([]byte, 0, b.size()), b.Seq)
	out = append(out, outboxVersion)
	out = binary.AppendVarint(out, b.Epoch)
	out = binary.AppendUvarint(out, uint64(len(b.Offsets)))
	for _, t := range slices.Sorted(maps.Keys(b.Offsets)) {
		out = appendString(out, t)
		out = binary.AppendVarint(out, b.Offsets[t])
	}
	out = binary.AppendUvarint(out, uint64(len(b.Messages)))
	for i := range b.Messages {
		m := &b.Messages[i]
		out = appendString(out, m.Topic)
		out = binary.AppendVarint(out, int64(m.Partition))
		out = appendNullable(out, m.Key)
		out = appendNullable(out, m.Value)
		out = binary.AppendUvarint(out, uint64(len(m.Headers)))
		for _, h := range m.Headers {
			out = appendString(out, h.Key)
			out = appendNullable(out, h.Value)
		}
	}
	return out
}

func (b *Outbox) size() int {
	n := 16
	for t := range b.Offsets {
		n += len(t) + 12
	}
	for i := range b.Messages {
		m := &b.Messages[i]
		n += len(m.Topic) + len(m.Key) + len(m.Value) + 24
		for _, h := range m.Headers {
			n += len(h.Key) + len(h.Value) + 8
		}
	}
	return n
}

func appendNullable(b, v []byte) []byte {
	if v == nil {
		return append(b, 0)
	}
	return append(binary.AppendUvarint(b, uint64(len(v))+1), v...)
}

// errOutboxCorrupt is the cause of a stored outbox that does not decode.
var errOutboxCorrupt = fmt.Errorf("%w: outbox", ErrCorrupt)

// unmarshalOutbox decodes a stored outbox; "" (no outbox yet) is the zero Outbox.
func unmarshalOutbox(s string) (Outbox, error) {
	var b Outbox
	if s == "" {
		return b, nil
	}
	d := outboxDecoder{buf: []byte(s)}
	if len(d.buf) < 9 {
		return b, fmt.Errorf("%w: %d bytes", errOutboxCorrupt, len(d.buf))
	}
	b.Seq = binary.BigEndian.Uint64(d.buf)
	if v := d.buf[8]; v != outboxVersion {
		return b, fmt.Errorf("%w: version %d, this build reads %d", errOutboxCorrupt, v, outboxVersion)
	}
	d.buf = d.buf[9:]
	b.Epoch = d.varint()
	if n := d.count(); n > 0 {
		b.Offsets = make(map[string]int64, n)
		for range n {
			t := d.string()
			b.Offsets[t] = d.varint()
		}
	}
	if n := d.count(); n > 0 {
		b.Messages = make([]Message, n)
		for i := range b.Messages {
			m := &b.Messages[i]
			m.Topic, m.Partition = d.string(), int32(d.varint())
			m.Key, m.Value = d.nullable(), d.nullable()
			if h := d.count(); h > 0 {
				m.Headers = make([]Header, h)
				for j := range m.Headers {
					m.Headers[j] = Header{Key: d.string(), Value: d.nullable()}
				}
			}
		}
	}
	if d.err == nil && len(d.buf) > 0 {
		d.err = fmt.Errorf("%w: %d bytes after the last message", errOutboxCorrupt, len(d.buf))
	}
	return b, d.err
}

// outboxDecoder reads the encoding of marshal; the first error sticks and makes
// every later read return zero values.
type outboxDecoder struct {
	buf []byte
	err error
}

func (d *outboxDecoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated %s", errOutboxCorrupt, what)
	}
	d.buf = nil
}

func (d *outboxDecoder) uvarint(what string) uint64 {
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *outboxDecoder) varint() int64 {
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		d.fail("number")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

// count reads a count, bounded by what is left (each element takes a byte at least).
func (d *outboxDecoder) count() int {
	n := d.uvarint("count")
	if n > uint64(len(d.buf)) {
		d.fail("list")
		return 0
	}
	return int(n)
}

func (d *outboxDecoder) bytes(n uint64, what string) []byte {
	if n > uint64(len(d.buf)) {
		d.fail(what)
		return nil
	}
	v := d.buf[:n:n]
	d.buf = d.buf[n:]
	return v
}

func (d *outboxDecoder) string() string { return string(d.bytes(d.uvarint("string"), "string")) }

func (d *outboxDecoder) nullable() []byte {
	n := d.uvarint("bytes")
	if n == 0 {
		return nil
	}
	return d.bytes(n-1, "bytes")
}
