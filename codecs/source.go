package codecs

import (
	"bytes"
	"fmt"
	"math"

	"github.com/valyala/fastjson"
)

// sourceInfo holds the fields that place an event in its source's history: those of
// the envelope's `source` block, or an unwrapped row's metadata columns (`__lsn`,
// `__source_ts_ms`, ...). A nil field is absent.
type sourceInfo struct {
	connector, table, file, gtid, snapshot *fastjson.Value
	lsn, pos, row, tsMs, tsUs, tsNs        *fastjson.Value

	seen uint32 // the spellings met so far, one bit each
	dup  string // the first field met twice
}

// fromObject takes the fields of a `source` block.
func (s *sourceInfo) fromObject(o *fastjson.Object) {
	*s = sourceInfo{}
	o.Visit(func(key []byte, v *fastjson.Value) { s.set(key, v) })
}

// set takes the source field called name, if it is one the decoder uses. A field
// given twice is noted (applySource refuses it): parsers disagree on which wins.
func (s *sourceInfo) set(name []byte, v *fastjson.Value) { s.setAs(name, v, false) }

// setAs is set for a field that may come under two spellings (an unwrapped row's
// "__lsn" and "__source_lsn"); the first one met is kept.
func (s *sourceInfo) setAs(name []byte, v *fastjson.Value, alias bool) {
	var p **fastjson.Value
	var bit uint32
	switch string(name) {
	case "connector":
		p, bit = &s.connector, 1<<0
	case "table":
		p, bit = &s.table, 1<<1
	case "collection":
		p, bit = &s.table, 1<<2
	case "file":
		p, bit = &s.file, 1<<3
	case "gtid":
		p, bit = &s.gtid, 1<<4
	case "snapshot":
		p, bit = &s.snapshot, 1<<5
	case "lsn":
		p, bit = &s.lsn, 1<<6
	case "pos":
		p, bit = &s.pos, 1<<7
	case "row":
		p, bit = &s.row, 1<<8
	case "ts_ms":
		p, bit = &s.tsMs, 1<<9
	case "ts_us":
		p, bit = &s.tsUs, 1<<10
	case "ts_ns":
		p, bit = &s.tsNs, 1<<11
	default:
		return
	}
	if alias {
		bit <<= 16
	}
	if s.seen&bit != 0 && s.dup == "" {
		s.dup = string(name)
	}
	s.seen |= bit
	if *p == nil {
		*p = v
	}
}

// applySource fills the event's table, commit times, snapshot flag and, when the
// source gives one, position. bareLSN says an `lsn` without a `connector` is still a
// PostgreSQL LSN (unwrapped rows carry no connector name).
func (d *Decoder) applySource(ev *Event, s *sourceInfo, bareLSN bool) error {
	if s.dup != "" {
		return fmt.Errorf("source field %q appears twice", s.dup)
	}
	var err error
	if ev.Table, err = d.sourceString(s.table, "table"); err != nil {
		return err
	}
	if ev.TsMs, err = d.sourceInt(s.tsMs, "ts_ms"); err != nil {
		return err
	}
	if ev.TsNs, err = d.sourceNanos(s, ev.TsMs); err != nil {
		return err
	}
	ev.Snapshot = isSnapshot(s.snapshot)
	pos, ok, err := d.sourcePosition(s, bareLSN)
	if err != nil {
		return err
	}
	if ok {
		ev.Position = pos
	}
	return nil
}

// sourceNanos returns the commit time in nanoseconds: ts_ns, else ts_us, else ts_ms,
// scaled; 0 when unknown or when scaling would overflow.
func (d *Decoder) sourceNanos(s *sourceInfo, tsMs int64) (int64, error) {
	if present(s.tsNs) {
		return d.sourceInt(s.tsNs, "ts_ns")
	}
	if present(s.tsUs) {
		us, err := d.sourceInt(s.tsUs, "ts_us")
		return mulOrZero(us, 1e3), err
	}
	return mulOrZero(tsMs, 1e6), nil
}

func mulOrZero(n, factor int64) int64 {
	if n > math.MaxInt64/factor || n < math.MinInt64/factor {
		return 0
	}
	return n * factor
}

// sourcePosition returns the position the source gives: a PostgreSQL LSN, a MySQL
// binlog file and offset, or a MySQL GTID, in that order. ok is false when it gives
// none of them.
func (d *Decoder) sourcePosition(s *sourceInfo, bareLSN bool) (p Position, ok bool, err error) {
	connector := stringOrNil(s.connector)
	if present(s.lsn) && (string(connector) == "postgresql" || bareLSN && !present(s.connector)) {
		lsn, lsnErr := d.lsn(s.lsn)
		return Position{Kind: PosPostgres, A: lsn}, lsnErr == nil, lsnErr
	}
	row, err := d.sourceUint(s.row, "row")
	if err != nil {
		return p, false, err
	}
	if file, ok := binlogNumber(stringOrNil(s.file)); ok && present(s.pos) {
		pos, posErr := d.sourceUint(s.pos, "pos")
		return Position{Kind: PosMySQL, A: file, B: pos, C: row}, posErr == nil, posErr
	}
	if server, n, ok := parseGTID(stringOrNil(s.gtid)); ok {
		return Position{Kind: PosGTID, A: server, B: n, C: row}, true, nil
	}
	return p, false, nil
}

// lsn reads a PostgreSQL LSN: Debezium's integer (as a number or a string), or the
// server's "16/B374D848" text form.
func (d *Decoder) lsn(v *fastjson.Value) (uint64, error) {
	if s := stringOrNil(v); s != nil {
		if hi, lo, found := bytes.Cut(s, []byte{'/'}); found {
			h, herr := parseHex32(hi)
			l, lerr := parseHex32(lo)
			if herr != nil || lerr != nil {
				return 0, fmt.Errorf("source field \"lsn\" %.40q is not an LSN", s)
			}
			return h<<32 | l, nil
		}
	}
	return d.sourceUint(v, "lsn")
}

func parseHex32(b []byte) (uint64, error) {
	if len(b) == 0 || len(b) > 8 {
		return 0, errNotInteger
	}
	var n uint64
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			n = n<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			n = n<<4 | uint64(c-'a'+10)
		case c >= 'A' && c <= 'F':
			n = n<<4 | uint64(c-'A'+10)
		default:
			return 0, errNotInteger
		}
	}
	return n, nil
}

// binlogNumber returns the sequence number of a binlog file name such as
// "mysql-bin.000003".
func binlogNumber(file []byte) (uint64, bool) {
	i := bytes.LastIndexByte(file, '.')
	if i < 0 {
		return 0, false
	}
	n, err := parseUint(file[i+1:])
	return n, err == nil
}

// parseGTID splits a MySQL GTID ("3e11fa47-71ca-11e1-9e33-c80aa9429562:23", or an
// interval "uuid:1-23", or a tagged "uuid:tag:23") into a 64-bit hash of its source
// (the uuid, with the tag if any) and the last transaction number. GTID sets naming
// several sources are not a position.
func parseGTID(g []byte) (server, n uint64, ok bool) {
	colon := bytes.LastIndexByte(g, ':')
	if colon <= 0 || bytes.IndexByte(g, ',') >= 0 {
		return 0, 0, false
	}
	tail := g[colon+1:]
	if dash := bytes.LastIndexByte(tail, '-'); dash >= 0 {
		tail = tail[dash+1:]
	}
	n, err := parseUint(tail)
	if err != nil {
		return 0, 0, false
	}
	return fnv1aLower(g[:colon]), n, true
}

// fnv1aLower is the 64-bit FNV-1a hash of s with ASCII letters lowered, so that the
// same server uuid hashes the same however it is spelled.
func fnv1aLower(s []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range s {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// isSnapshot reads source.snapshot: boolean true (old connectors and the
// documentation), or any string but "false" ("true", "first", "last",
// "incremental", ...).
func isSnapshot(v *fastjson.Value) bool {
	if v == nil {
		return false
	}
	switch v.Type() {
	case fastjson.TypeTrue:
		return true
	case fastjson.TypeString:
		s, _ := v.StringBytes() // cannot fail: the type is string
		return len(s) > 0 && string(s) != "false"
	default:
		return false
	}
}

// sourceString reads an optional string field as an interned string.
func (d *Decoder) sourceString(v *fastjson.Value, name string) (string, error) {
	if !present(v) {
		return "", nil
	}
	s, err := v.StringBytes()
	if err != nil {
		return "", fmt.Errorf("source field %q is %s, want a string", name, kindOf(v))
	}
	return d.names.intern(s), nil
}

// sourceInt reads an optional integer field (0 when absent or null).
func (d *Decoder) sourceInt(v *fastjson.Value, name string) (int64, error) {
	if !present(v) {
		return 0, nil
	}
	text, err := d.integerText(v, name)
	if err != nil {
		return 0, err
	}
	n, err := parseInt(text)
	if err != nil {
		return 0, fmt.Errorf("source field %q %.40q: %w", name, text, err)
	}
	return n, nil
}

// sourceUint reads an optional non-negative integer field (0 when absent or null).
func (d *Decoder) sourceUint(v *fastjson.Value, name string) (uint64, error) {
	if !present(v) {
		return 0, nil
	}
	text, err := d.integerText(v, name)
	if err != nil {
		return 0, err
	}
	n, err := parseUint(text)
	if err != nil {
		return 0, fmt.Errorf("source field %q %.40q: %w (want a non-negative integer)", name, text, err)
	}
	return n, nil
}

func (d *Decoder) integerText(v *fastjson.Value, name string) ([]byte, error) {
	text, scratch, err := integerText(d.conv.text, v)
	d.conv.text = scratch
	if err != nil {
		return nil, fmt.Errorf("source field %q %w", name, err)
	}
	return text, nil
}

// present reports whether a field is there and not null.
func present(v *fastjson.Value) bool {
	return v != nil && v.Type() != fastjson.TypeNull
}

// stringOrNil returns the content of a string value, or nil for anything else.
func stringOrNil(v *fastjson.Value) []byte {
	if v == nil || v.Type() != fastjson.TypeString {
		return nil
	}
	s, _ := v.StringBytes() // cannot fail: the type is string
	return s
}
