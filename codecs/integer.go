package codecs

import (
	"errors"
	"fmt"
	"math"

	"github.com/valyala/fastjson"
)

// errNotInteger is the cause when a field that must hold an integer does not.
var errNotInteger = errors.New("not an integer")

// integerText returns the decimal text of an integer field, which Debezium writes as a
// JSON number and its documentation examples sometimes as a string. The text is
// appended to scratch, which is returned for reuse. The text is not checked yet.
func integerText(scratch []byte, v *fastjson.Value) (text, grown []byte, err error) {
	switch v.Type() {
	case fastjson.TypeNumber:
		scratch = v.MarshalTo(scratch[:0])
		return scratch, scratch, nil
	case fastjson.TypeString:
		s, _ := v.StringBytes() // cannot fail: the type is string
		return s, scratch, nil
	default:
		return nil, scratch, fmt.Errorf("is %s, want an integer", kindOf(v))
	}
}

// parseUint parses a non-negative decimal integer without sign, exponent or fraction,
// never through float64.
func parseUint(b []byte) (uint64, error) {
	if len(b) == 0 {
		return 0, errNotInteger
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, errNotInteger
		}
		d := uint64(c - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, fmt.Errorf("%w: %s overflows 64 bits", errNotInteger, b)
		}
		n = n*10 + d
	}
	return n, nil
}

// parseInt parses a decimal integer with an optional leading minus sign.
func parseInt(b []byte) (int64, error) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	u, err := parseUint(b)
	if err != nil {
		return 0, err
	}
	if neg {
		if u > 1<<63 {
			return 0, fmt.Errorf("%w: -%s overflows 64 bits", errNotInteger, b)
		}
		return -int64(u), nil // for u == 1<<63 this wraps to MinInt64, as intended
	}
	if u > math.MaxInt64 {
		return 0, fmt.Errorf("%w: %s overflows 64 bits", errNotInteger, b)
	}
	return int64(u), nil
}

// kindOf names the JSON type of v for error messages: "an object", "a string", ...
func kindOf(v *fastjson.Value) string {
	if v == nil {
		return "missing"
	}
	switch v.Type() {
	case fastjson.TypeObject:
		return "an object"
	case fastjson.TypeArray:
		return "an array"
	case fastjson.TypeString:
		return "a string"
	case fastjson.TypeNumber:
		return "a number"
	case fastjson.TypeTrue, fastjson.TypeFalse:
		return "a boolean"
	default:
		return "null"
	}
}

// preview renders v for an error message: its JSON, cut to 40 bytes, or "missing".
func preview(v *fastjson.Value) string {
	if v == nil {
		return "missing"
	}
	b := v.MarshalTo(nil)
	if len(b) > 40 {
		b = append(b[:40], "…"...)
	}
	return string(b)
}
