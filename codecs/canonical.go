package codecs

import (
	"bytes"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

// AppendCanonicalJSON appends the canonical JSON encoding of v to dst (see Column):
// compact, object members in their original order, numbers copied verbatim, strings
// escaped one way only (\" \\ \b \f \n \r \t, other control characters as \u00XX,
// everything else literal UTF-8, invalid UTF-8 as U+FFFD). A nil v is `null`.
//
// fastjson's parser is lenient about numbers (it takes NaN, "1-2", "+1"), so every
// number is checked against the JSON grammar: an error names the first bad one, and
// the returned slice then holds a partial encoding.
func AppendCanonicalJSON(dst []byte, v *fastjson.Value) ([]byte, error) {
	if v == nil {
		return append(dst, "null"...), nil
	}
	switch v.Type() {
	case fastjson.TypeObject:
		return appendCanonicalObject(dst, v)
	case fastjson.TypeArray:
		return appendCanonicalArray(dst, v)
	case fastjson.TypeString:
		s, _ := v.StringBytes() // cannot fail: the type is string
		return appendJSONString(dst, s), nil
	case fastjson.TypeNumber:
		start := len(dst)
		dst = v.MarshalTo(dst)
		if !isJSONNumber(dst[start:]) {
			return dst, fmt.Errorf("%.40q is not a JSON number", dst[start:])
		}
		return dst, nil
	default: // true, false, null
		return v.MarshalTo(dst), nil
	}
}

func appendCanonicalObject(dst []byte, v *fastjson.Value) ([]byte, error) {
	o, _ := v.Object() // cannot fail: the caller checked the type
	dst = append(dst, '{')
	var err error
	o.Visit(func(key []byte, member *fastjson.Value) {
		if err != nil {
			return
		}
		if dst[len(dst)-1] != '{' {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, key)
		dst = append(dst, ':')
		dst, err = AppendCanonicalJSON(dst, member)
	})
	return append(dst, '}'), err
}

func appendCanonicalArray(dst []byte, v *fastjson.Value) ([]byte, error) {
	items, _ := v.Array() // cannot fail: the caller checked the type
	dst = append(dst, '[')
	for i, item := range items {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = AppendCanonicalJSON(dst, item); err != nil {
			return dst, err
		}
	}
	return append(dst, ']'), nil
}

// isJSONNumber reports whether b follows the JSON number grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func isJSONNumber(b []byte) bool {
	b, _ = bytes.CutPrefix(b, []byte{'-'})
	switch {
	case len(b) > 0 && b[0] == '0':
		b = b[1:]
	case len(b) > 0 && b[0] >= '1' && b[0] <= '9':
		b = b[skipDigits(b, 0):]
	default:
		return false
	}
	if frac, ok := bytes.CutPrefix(b, []byte{'.'}); ok {
		if b = frac[skipDigits(frac, 0):]; len(b) == len(frac) {
			return false
		}
	}
	if len(b) > 0 && (b[0] == 'e' || b[0] == 'E') {
		exp := b[1:]
		if len(exp) > 0 && (exp[0] == '+' || exp[0] == '-') {
			exp = exp[1:]
		}
		if b = exp[skipDigits(exp, 0):]; len(b) == len(exp) {
			return false
		}
	}
	return len(b) == 0
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// Canonicalize returns the canonical JSON encoding (see Column) of the JSON document
// raw, for values that do not come through a Decoder, such as a value a reviewer
// typed. It allocates a parser per call; errors wrap ErrPoison.
func Canonicalize(raw []byte) ([]byte, error) {
	if err := checkUnicode(raw); err != nil {
		return nil, poison("value", err)
	}
	var p fastjson.Parser
	v, err := parseStrict(&p, raw)
	if err != nil {
		return nil, poison("value", err)
	}
	out, err := AppendCanonicalJSON(nil, v)
	if err != nil {
		return nil, poison("value", err)
	}
	return out, nil
}

// parseStrict parses b with p and checks that it is strict JSON. fastjson's parser
// bounds the nesting depth but accepts some non-JSON (NaN, "1-2", control characters
// in strings, unknown escapes); the validator catches those. Parsing first keeps the
// validator's recursion bounded.
//
// The Decoder does without the validator, which would double its cost (mostly
// spent on schemas): it checks the numbers it uses, escapes what it emits, and reads
// strings the way fastjson does (an unknown escape such as \x stays as written).
func parseStrict(p *fastjson.Parser, b []byte) (*fastjson.Value, error) {
	v, err := p.ParseBytes(b)
	if err != nil {
		return nil, notJSON(b, err)
	}
	if err := fastjson.ValidateBytes(b); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	return v, nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a canonical JSON string.
func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	dst = appendEscaped(dst, s)
	return append(dst, '"')
}

// appendJSONText appends the text, its parts joined, as one canonical JSON string:
// appendJSONString for strings, without copying them to bytes (which allocates past
// 32 bytes). Every part but the first must be ASCII, so that no invalid UTF-8
// sequence is cut in two.
func appendJSONText(dst []byte, text ...string) []byte {
	dst = append(dst, '"')
	for _, s := range text {
		dst = appendEscaped(dst, s)
	}
	return append(dst, '"')
}

// appendEscaped appends s escaped as the content of a canonical JSON string.
func appendEscaped[S string | []byte](dst []byte, s S) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := decodeRune(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\uFFFD"...)
		} else {
			dst = append(dst, s[start:i]...)
			dst = appendEscape(dst, c)
		}
		i++
		start = i
	}
	return append(dst, s[start:]...)
}

// plain marks the bytes a canonical JSON string holds as they are: ASCII but for
// the control characters, the quote and the backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// decodeRune is utf8.DecodeRune or utf8.DecodeRuneInString, as s is.
func decodeRune[S string | []byte](s S) (rune, int) {
	if b, ok := any(s).([]byte); ok {
		return utf8.DecodeRune(b)
	}
	return utf8.DecodeRuneInString(string(s))
}

func appendEscape(dst []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(dst, '\\', c)
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	default:
		return append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
	}
}

// parse parses b with the decoder's parser (see parseStrict for what it accepts).
func parse(p *fastjson.Parser, b []byte) (*fastjson.Value, error) {
	v, err := p.ParseBytes(b)
	if err != nil {
		return nil, notJSON(b, err)
	}
	return v, nil
}

// AppendSortedJSON appends v as AppendCanonicalJSON does, but with every object's
// members sorted by key and only the last of duplicate keys kept: the same JSON
// document in one form (see the Json logical type).
func AppendSortedJSON(dst []byte, v *fastjson.Value) ([]byte, error) {
	switch v.Type() {
	case fastjson.TypeObject:
		o, _ := v.Object() // cannot fail: the type is object
		type member struct {
			key []byte
			v   *fastjson.Value
		}
		var ms []member
		o.Visit(func(key []byte, mv *fastjson.Value) { ms = append(ms, member{key, mv}) })
		slices.SortStableFunc(ms, func(a, b member) int { return bytes.Compare(a.key, b.key) })
		dst = append(dst, '{')
		for i, m := range ms {
			if i+1 < len(ms) && bytes.Equal(ms[i+1].key, m.key) {
				continue // a later duplicate wins
			}
			if dst[len(dst)-1] != '{' {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, m.key)
			dst = append(dst, ':')
			var err error
			if dst, err = AppendSortedJSON(dst, m.v); err != nil {
				return dst, err
			}
		}
		return append(dst, '}'), nil
	case fastjson.TypeArray:
		items, _ := v.Array() // cannot fail: the type is array
		dst = append(dst, '[')
		for i, item := range items {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = AppendSortedJSON(dst, item); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	}
	return AppendCanonicalJSON(dst, v)
}
