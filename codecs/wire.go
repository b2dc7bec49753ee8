package codecs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// DefaultMaxMessageBytes is the largest message (key and value together) a Decoder
// takes unless Options.MaxMessageBytes says otherwise: 1 MiB, Kafka's default
// message.max.bytes and the largest message concord's producer sends, so that an
// apply event carrying the row could not be produced anyway.
const DefaultMaxMessageBytes = 1 << 20

// checkWire checks what must hold of a message's bytes before they are parsed: its
// size, and that its text is Unicode. JSON is UTF-8 (RFC 8259), and Kafka Connect's
// JsonConverter never writes anything else: invalid bytes, or a UTF-16 surrogate
// escape without its pair, mean another producer, and a value that silently became
// U+FFFD would be synced everywhere.
func (d *Decoder) checkWire(m Message) (part string, err error) {
	if limit := d.opts.maxMessageBytes(); limit > 0 && len(m.Key)+len(m.Value) > limit {
		return "message", fmt.Errorf("%d bytes, more than the %d concord takes (kafka.max_message_bytes): an apply event carrying it could not be produced", len(m.Key)+len(m.Value), limit)
	}
	for _, p := range [...]struct {
		name string
		b    []byte
	}{{"key", m.Key}, {"value", m.Value}} {
		if err := checkText(p.b); err != nil {
			return p.name, err
		}
	}
	return "", nil
}

func (o Options) maxMessageBytes() int {
	if o.MaxMessageBytes == 0 {
		return DefaultMaxMessageBytes
	}
	return o.MaxMessageBytes
}

// checkText reports bytes that cannot be JSON text: Confluent Schema Registry
// framing (a magic byte 0 and a 4-byte schema id before Avro, Protobuf or JSON
// Schema data), invalid UTF-8, lone surrogate escapes.
func checkText(b []byte) error {
	if len(b) >= 5 && b[0] == 0 {
		return fmt.Errorf("not JSON: Confluent Schema Registry framing (magic byte 0, schema id %d): the connector writes with an Avro, Protobuf or JSON Schema converter; concord reads Kafka's JsonConverter", binary.BigEndian.Uint32(b[1:5]))
	}
	return checkUnicode(b)
}

// checkUnicode reports invalid UTF-8 and lone surrogate escapes in b.
func checkUnicode(b []byte) error {
	if !utf8.Valid(b) {
		i := 0
		for i < len(b) {
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				break
			}
			i += size
		}
		return fmt.Errorf("invalid UTF-8 at byte %d (%q): JSON text is UTF-8", i, b[i:min(i+4, len(b))])
	}
	if i := loneSurrogate(b); i >= 0 {
		return fmt.Errorf("a lone UTF-16 surrogate escape %s at byte %d: it stands for no Unicode character", b[i:i+6], i)
	}
	return nil
}

// loneSurrogate returns the offset of the first \uD800-\uDFFF escape in b that is
// not a high surrogate followed by a low one, or -1. Escapes appear only in strings,
// so a backslash is an escape's exactly when an even number of backslashes precede it.
func loneSurrogate(b []byte) int {
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte(`\u`))
		if j < 0 {
			return -1
		}
		j += i
		i = j + 2
		k := j
		for k > 0 && b[k-1] == '\\' {
			k--
		}
		if (j-k)%2 == 1 || j+6 > len(b) {
			continue // an escaped backslash followed by a u, or cut short (the parser says so)
		}
		switch r := hex4(b[j+2 : j+6]); {
		case r >= 0xd800 && r < 0xdc00:
			if j+12 <= len(b) && b[j+6] == '\\' && b[j+7] == 'u' {
				if lo := hex4(b[j+8 : j+12]); lo >= 0xdc00 && lo < 0xe000 {
					i = j + 12
					continue
				}
			}
			return j
		case r >= 0xdc00 && r < 0xe000:
			return j
		}
	}
}

// hex4 reads four hex digits, or returns -1.
func hex4(b []byte) int {
	n, err := parseHex32(b)
	if err != nil {
		return -1
	}
	return int(n)
}

var utf8BOM = []byte{0xef, 0xbb, 0xbf}

// notJSON describes why b is not JSON, from the parser's error: what it looks like
// instead (a byte order mark, blank), or where the JSON breaks: cut short
// (truncated), nested too deep, followed by more, or the first bad byte.
func notJSON(b []byte, err error) error {
	trimmed := bytes.TrimLeft(b, " \t\n\r")
	switch {
	case bytes.HasPrefix(b, utf8BOM):
		return errors.New("not JSON: starts with a UTF-8 byte order mark")
	case len(trimmed) == 0:
		return errors.New("not JSON: only white space (a tombstone has no bytes at all)")
	}
	msg := err.Error()
	if tail, ok := strings.CutPrefix(msg, "unexpected tail: "); ok {
		return fmt.Errorf("not JSON: more after the end of the JSON document: %s", tail)
	}
	// fastjson: "cannot parse JSON: cannot parse object: ...: <cause>; unparsed tail: %q"
	chain, quotedTail, found := cutLast(strings.TrimPrefix(msg, "cannot parse JSON: "), "; unparsed tail: ")
	if !found {
		return fmt.Errorf("not JSON: %w", err)
	}
	cause := chain
	if i := strings.LastIndex(chain, "cannot parse "); i >= 0 {
		cause = "in " + chain[i+len("cannot parse "):]
	}
	tail, uerr := strconv.Unquote(quotedTail)
	switch {
	case strings.Contains(chain, "too big depth"):
		return fmt.Errorf("not JSON: nested more than 300 levels deep (%s)", cause)
	case uerr == nil && tail == "":
		return fmt.Errorf("not JSON: truncated: it ends after %d bytes %s", len(b), cause)
	case uerr == nil && !strings.Contains(tail, "..."):
		at := len(b) - len(tail)
		return fmt.Errorf("not JSON at byte %d: %s (near %.20q)", at, cause, b[at:])
	}
	return fmt.Errorf("not JSON: %s (near %.20q)", cause, tail)
}

func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}
