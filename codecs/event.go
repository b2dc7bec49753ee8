package codecs

import "strconv"

// Kind says what a decoded Kafka message is. Only KindChange carries row data.
type Kind uint8

// Message kinds. Everything but KindChange is acknowledged and produces no apply.
const (
	KindChange    Kind = iota // a row change: op c, u, d or r
	KindTombstone             // null value after a delete (or the legacy {"schema":null,"payload":null})
	KindHeartbeat             // io.debezium.connector.common.Heartbeat
	KindTxBegin               // transaction metadata BEGIN
	KindTxEnd                 // transaction metadata END
	KindTruncate              // op t: never propagated
	KindMessage               // op m: logical decoding message, never propagated
)

var kindNames = [...]string{"change", "tombstone", "heartbeat", "transaction_begin", "transaction_end", "truncate", "message"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Op is the Debezium operation of a change event.
type Op byte

// Debezium operations, with their wire letters.
const (
	OpNone   Op = 0
	OpCreate Op = 'c'
	OpUpdate Op = 'u'
	OpDelete Op = 'd'
	OpRead   Op = 'r' // snapshot read
)

// String is the operation's wire letter ("" for OpNone). It allocates only for a
// letter that is not one of the constants (the pipeline counts every event by it).
func (o Op) String() string {
	switch o {
	case OpNone:
		return ""
	case OpCreate:
		return "c"
	case OpUpdate:
		return "u"
	case OpDelete:
		return "d"
	case OpRead:
		return "r"
	}
	return string(rune(o))
}

// Column is one column of a row image, in the source system's column name.
//
// Value is the canonical JSON encoding of the column value: Connect logical types are
// already decoded (decimals to JSON strings in their shortest exact form such as "12.5", timestamps to RFC 3339 UTC
// strings, dates to "2006-01-02"), strings are re-escaped in one canonical way, numbers
// keep their exact textual form (never routed through float64). SQL NULL is the four
// bytes `null`. Two values mean the same thing exactly when their bytes are equal.
type Column struct {
	Name  string
	Value []byte
}

// Row is a row image. A nil Row means the image is absent (for example `before` under
// PostgreSQL's default REPLICA IDENTITY); an empty non-nil Row is an image with no columns.
type Row []Column

// Clone returns a deep copy of r that owns its memory (nil for nil, empty for empty).
func (r Row) Clone() Row {
	if r == nil {
		return nil
	}
	n := 0
	for i := range r {
		n += len(r[i].Value)
	}
	buf := make([]byte, 0, n)
	out := make(Row, len(r))
	for i, c := range r {
		start := len(buf)
		buf = append(buf, c.Value...)
		out[i] = Column{Name: c.Name, Value: buf[start:len(buf):len(buf)]}
	}
	return out
}

// Get returns the value of the named column and whether the row has it.
func (r Row) Get(name string) ([]byte, bool) {
	for i := range r {
		if r[i].Name == name {
			return r[i].Value, true
		}
	}
	return nil, false
}

// PositionKind says which source position an event carries.
type PositionKind uint8

// Position kinds. Positions of different kinds are not comparable.
const (
	PosNone     PositionKind = iota
	PosPostgres              // A = lsn
	PosMySQL                 // A = binlog file number, B = pos, C = row
	PosGTID                  // A = hash of the server uuid, B = transaction number, C = row
	PosKafka                 // A = partition, B = offset: the fallback when the source gives none
)

// Position orders the events of one system. Per record, a later event always has a
// greater position of the same kind.
type Position struct {
	Kind    PositionKind
	A, B, C uint64
}

// Compare returns -1, 0 or +1, and false when the two positions are not comparable
// (different kinds, or different partitions or GTID sources).
func (p Position) Compare(q Position) (int, bool) {
	if p.Kind != q.Kind || p.Kind == PosNone {
		return 0, false
	}
	if (p.Kind == PosKafka || p.Kind == PosGTID) && p.A != q.A {
		return 0, false
	}
	for _, d := range [3][2]uint64{{p.A, q.A}, {p.B, q.B}, {p.C, q.C}} {
		switch {
		case d[0] < d[1]:
			return -1, true
		case d[0] > d[1]:
			return 1, true
		}
	}
	return 0, true
}

// AppendText appends a stable text form of the position, used in event ids.
func (p Position) AppendText(b []byte) []byte {
	b = strconv.AppendUint(b, uint64(p.Kind), 10)
	for _, v := range [3]uint64{p.A, p.B, p.C} {
		b = append(b, ':')
		b = strconv.AppendUint(b, v, 10)
	}
	return b
}

// String is AppendText's form as a string, made in one allocation.
func (p Position) String() string {
	var buf [4 + 3*21]byte // the kind and three uint64s, each after a colon
	return string(p.AppendText(buf[:0]))
}

// Message is one Kafka message as the decoder sees it.
type Message struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte // nil for a null key
	Value     []byte // nil for a tombstone
}

// Event is one decoded Debezium message.
//
// An Event filled by Decoder.Decode borrows the decoder's buffers: its Rows and their
// Values stay valid only until the next Decode call on the same Decoder. Copy what
// must outlive it.
type Event struct {
	Kind     Kind
	Op       Op
	Key      Row   // from the message key; nil when the key is null
	Before   Row   // nil when absent
	After    Row   // nil for deletes
	TsMs     int64 // source.ts_ms: commit time in the source database (0 when unknown)
	TsNs     int64 // the same in nanoseconds: source.ts_ns, else ts_us or ts_ms scaled (exact; 0 when unknown)
	Snapshot bool  // source.snapshot is true/"true"/"first"/"last"/... (anything but false)
	Position Position
	TxID     string // transaction id from the `transaction` block or BEGIN/END record
	Table    string // source.table (or collection), when present
}

// Clone returns a deep copy of e that stays valid after the decoder's next call.
func (e *Event) Clone() Event {
	c := *e
	c.Key, c.Before, c.After = e.Key.Clone(), e.Before.Clone(), e.After.Clone()
	return c
}
