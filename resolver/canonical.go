package resolver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/concord-sync/concord/codecs"
)

// ErrEvent classifies a decoded event that cannot be mapped onto a record (a key
// field or the timestamp column missing, an unknown system): poison, like a message
// that does not decode.
var ErrEvent = errors.New("resolver: unusable event")

// Canonicalize maps a decoded change event of a system onto canonical field names and
// its record ID, filling ch (whose slices are reused). Only KindChange events can be
// canonicalized. ch borrows values from ev. ch.Record is kept when it already holds
// the event's record ID (a single-field key's), so a caller that knows it (from a
// first pass over the batch) can set it and spare the allocation of a new string.
func (r *Resolver) Canonicalize(system string, ev *codecs.Event, ch *Change) error {
	sr := r.system(system)
	if sr == nil {
		return fmt.Errorf("%w: unknown system %q", ErrEvent, system)
	}
	if ev.Kind != codecs.KindChange {
		return fmt.Errorf("%w: a %s message carries no change", ErrEvent, ev.Kind)
	}
	ch.System = sr.name
	ch.Op = ev.Op
	ch.Position = ev.Position
	ch.CommitMs = ev.TsMs
	ch.Marker = ""
	ch.After = sr.values(ch.After[:0], ev.After)
	if ev.After == nil {
		ch.After = nil
	}
	ch.Before = nil
	if ev.Before != nil {
		ch.Before = sr.values(ch.Before[:0], ev.Before)
	}
	ch.Key = ch.Key[:0]
	for i := range sr.keyCols {
		v, err := keyValue(sr, ev, i)
		if err != nil {
			return err
		}
		ch.Key = append(ch.Key, Value{Name: r.keys[i], FP: Fingerprint(v), Value: v})
	}
	ch.Record = recordOf(ch.Key, ch.Record)
	if sr.marker != "" {
		if v, ok := ev.After.Get(sr.marker); ok {
			ch.Marker = stringValue(v)
		}
	}
	var err error
	ch.TsUs, err = sr.timestamp(ev)
	return err
}

// RecordOfKey returns the record ID a message key names, for messages that carry no
// row (tombstones, poison whose key still decodes).
func (r *Resolver) RecordOfKey(system string, key codecs.Row) (string, error) {
	sr := r.system(system)
	if sr == nil {
		return "", fmt.Errorf("%w: unknown system %q", ErrEvent, system)
	}
	return r.recordID(sr, &codecs.Event{Key: key})
}

// values appends the synced columns of a row (not key, timestamp or marker columns,
// nor a column a mapping shadows) under their canonical names. A column holding
// Debezium's unavailable-value placeholder (an unchanged TOASTed column) is left out:
// its value was not sent, so it is neither a change nor a value to propagate.
func (sr *systemRules) values(dst []Value, row codecs.Row) []Value {
	for _, c := range row {
		field := sr.fieldOf(c.Name)
		if field == "" || bytes.Equal(c.Value, sr.unavailable[0]) || bytes.Equal(c.Value, sr.unavailable[1]) {
			continue
		}
		dst = append(dst, Value{Name: field, FP: Fingerprint(c.Value), Value: c.Value})
	}
	return dst
}

// Fingerprint is the 64-bit fingerprint of a canonical value.
func Fingerprint(v []byte) uint64 { return xxhash.Sum64(v) }

// fingerprintText is Fingerprint of a string's bytes, without copying them.
func fingerprintText(s string) uint64 { return xxhash.Sum64String(s) }

// recordID joins the canonical key values: a string value as its text, anything else
// as its canonical JSON; several key fields are joined with "/", with "%" and "/"
// inside a value escaped as %25 and %2F. So crm id 42 and billing id "42" are one record.
func (r *Resolver) recordID(sr *systemRules, ev *codecs.Event) (string, error) {
	var buf [4]Value
	key := buf[:0]
	for i := range sr.keyCols {
		v, err := keyValue(sr, ev, i)
		if err != nil {
			return "", err
		}
		key = append(key, Value{Value: v})
	}
	return recordOf(key, ""), nil
}

// recordOf is the record ID of the key fields' values (see recordID). When prev is
// that ID already it is returned, and no new string is made.
func recordOf(key []Value, prev string) string {
	if len(key) == 1 {
		if text, ok := plainText(key[0].Value); ok && string(text) == prev {
			return prev
		}
		return stringValue(key[0].Value)
	}
	var b strings.Builder
	for i := range key {
		if i > 0 {
			b.WriteByte('/')
		}
		s := stringValue(key[i].Value)
		s = strings.ReplaceAll(s, "%", "%25")
		b.WriteString(strings.ReplaceAll(s, "/", "%2F"))
	}
	return b.String()
}

func keyValue(sr *systemRules, ev *codecs.Event, i int) ([]byte, error) {
	col := sr.keyCols[i]
	for _, row := range [...]codecs.Row{ev.After, ev.Before, ev.Key} {
		if v, ok := row.Get(col); ok && string(v) != "null" {
			return v, nil
		}
	}
	return nil, fmt.Errorf("%w: key column %q of system %s is missing from the event (neither the row nor the message key has it)", ErrEvent, col, sr.name)
}

// plainText is stringValue's text as bytes, for a value that needs no unescaping.
func plainText(v []byte) ([]byte, bool) {
	if len(v) < 2 || v[0] != '"' {
		return v, true
	}
	if bytes.IndexByte(v, '\\') >= 0 {
		return nil, false
	}
	return v[1 : len(v)-1], true
}

// stringValue renders a canonical value as text: a JSON string as its content,
// anything else as is.
func stringValue(v []byte) string {
	if len(v) < 2 || v[0] != '"' {
		return string(v)
	}
	if !strings.ContainsRune(string(v), '\\') {
		return string(v[1 : len(v)-1])
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return string(v)
	}
	return s
}

// timestamp returns the change's timestamp in microseconds: source.ts_ms, or the
// system's timestamp column (epoch milliseconds, or an ISO-8601 / RFC 3339 string).
func (sr *systemRules) timestamp(ev *codecs.Event) (int64, error) {
	if sr.tsCol == "" {
		return ev.TsMs * 1000, nil
	}
	row := ev.After
	if row == nil {
		row = ev.Before
	}
	v, ok := row.Get(sr.tsCol)
	if !ok || string(v) == "null" {
		if ev.Op == codecs.OpDelete {
			return ev.TsMs * 1000, nil // a delete's before image may hold only the key
		}
		return 0, fmt.Errorf("%w: timestamp column %q of system %s is missing or null", ErrEvent, sr.tsCol, sr.name)
	}
	us, err := parseTimestamp(v)
	if err != nil {
		return 0, fmt.Errorf("%w: timestamp column %q of system %s: %w", ErrEvent, sr.tsCol, sr.name, err)
	}
	return us, nil
}

var isoLayouts = [...]string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999"}

func parseTimestamp(v []byte) (int64, error) {
	if v[0] != '"' {
		ms, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s is not epoch milliseconds", v)
		}
		return ms * 1000, nil
	}
	s := stringValue(v)
	for _, layout := range isoLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixMicro(), nil
		}
	}
	return 0, fmt.Errorf("%q is not an ISO-8601 timestamp", s)
}
