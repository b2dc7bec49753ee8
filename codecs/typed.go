package codecs

import (
	"bytes"
	"encoding/base64"
	"math"
	"math/big"
	"strconv"
	"time"

	"github.com/valyala/fastjson"
)

// AppendValue appends v, a canonical value (see Column), encoded as Kafka's
// JsonConverter encodes a value of type t, so that the sink binds it to the target
// column's SQL type: a Decimal as the base64 of its unscaled two's-complement bytes
// at t's scale, a timestamp as epoch units or ISO-8601 text, a date as days since the
// epoch, JSON and other text as a string. An unknown t (zero value) is inferred from
// v (InferType). SQL NULL stays null.
//
// A value the type cannot hold without loss (more fractional digits than the scale,
// an integer out of range, text that is not a number or a timestamp, a timestamp
// finer than the column) is an error wrapping ErrTypeMismatch: it is never rounded.
func (t ColumnType) AppendValue(dst, v []byte) ([]byte, error) {
	if !t.Known() {
		t = InferType(v)
	}
	if string(v) == "null" {
		return append(dst, "null"...), nil
	}
	switch t.Name {
	case NameDecimal:
		return t.appendDecimal(dst, v)
	case NameVarScale:
		return t.appendVarScale(dst, v)
	case NameTimestamp, NameConnectTime, NameMicroTimestamp, NameNanoTimestamp:
		return t.appendEpochTime(dst, v)
	case NameZonedTimestamp:
		ts, err := t.timestamp(v)
		if err != nil {
			return dst, err
		}
		return appendTimestamp(dst, ts)
	case NameDate, NameConnectDate:
		return t.appendDays(dst, v)
	case NameJSON:
		return t.appendJSONText(dst, v)
	}
	switch t.Type {
	case TypeInt8, TypeInt16, TypeInt32, TypeInt64:
		return t.appendInteger(dst, v)
	case TypeFloat32, TypeFloat64:
		return t.appendFloat(dst, v)
	case TypeBoolean:
		return t.appendBoolean(dst, v)
	case TypeBytes:
		return t.appendBytes(dst, v)
	case TypeString:
		return appendText(dst, v), nil
	}
	return dst, mismatch(t, v, "concord cannot write values of this Connect type")
}

// text returns the content of a canonical JSON string (nil, false for anything else).
func text(v []byte) ([]byte, bool) {
	if len(v) < 2 || v[0] != '"' {
		return nil, false
	}
	inner := v[1 : len(v)-1]
	for _, c := range inner {
		if c == '\\' {
			s, err := strconv.Unquote(string(v))
			if err != nil {
				return nil, false
			}
			return []byte(s), true
		}
	}
	return inner, true
}

// numberText returns the text of a number: a JSON number, or a string holding one.
func numberText(v []byte) []byte {
	if s, ok := text(v); ok {
		v = s
	}
	if !isJSONNumber(v) {
		return nil
	}
	return v
}

// appendText appends a value as a Connect string: strings as they are, anything else
// (numbers, booleans, objects, arrays) as its JSON text.
func appendText(dst, v []byte) []byte {
	if v[0] == '"' {
		return append(dst, v...)
	}
	return appendJSONString(dst, v)
}

func (t ColumnType) appendJSONText(dst, v []byte) ([]byte, error) {
	doc, ok := text(v)
	if !ok {
		return appendJSONString(dst, v), nil
	}
	if err := fastjson.ValidateBytes(doc); err != nil {
		return dst, mismatch(t, v, "the text is not a JSON document")
	}
	return append(dst, v...), nil
}

var intRange = map[string][2]int64{
	TypeInt8:  {math.MinInt8, math.MaxInt8},
	TypeInt16: {math.MinInt16, math.MaxInt16},
	TypeInt32: {math.MinInt32, math.MaxInt32},
	TypeInt64: {math.MinInt64, math.MaxInt64},
}

func (t ColumnType) appendInteger(dst, v []byte) ([]byte, error) {
	n, err := t.integer(v)
	if err != nil {
		return dst, err
	}
	return strconv.AppendInt(dst, n, 10), nil
}

func (t ColumnType) integer(v []byte) (int64, error) {
	num := numberText(v)
	if num == nil {
		return 0, mismatch(t, v, "not an integer")
	}
	n, err := parseInt(num)
	if err != nil {
		return 0, mismatch(t, v, "not an integer in 64 bits")
	}
	if r := intRange[t.Type]; n < r[0] || n > r[1] {
		return 0, mismatch(t, v, "out of the column's range")
	}
	return n, nil
}

func (t ColumnType) appendFloat(dst, v []byte) ([]byte, error) {
	num := numberText(v)
	if num == nil {
		return dst, mismatch(t, v, "not a number")
	}
	bits := 64
	if t.Type == TypeFloat32 {
		bits = 32
	}
	if _, err := strconv.ParseFloat(string(num), bits); err != nil {
		return dst, mismatch(t, v, "out of the column's range")
	}
	return append(dst, num...), nil
}

func (t ColumnType) appendBoolean(dst, v []byte) ([]byte, error) {
	if s, ok := text(v); ok {
		v = s
	}
	switch string(v) {
	case "true", "false":
		return append(dst, v...), nil
	}
	return dst, mismatch(t, v, "not a boolean")
}

func (t ColumnType) appendBytes(dst, v []byte) ([]byte, error) {
	s, ok := text(v)
	if !ok {
		return dst, mismatch(t, v, "not base64 text")
	}
	if _, err := base64.StdEncoding.DecodeString(string(s)); err != nil {
		return dst, mismatch(t, v, "not base64 text")
	}
	return append(dst, v...), nil
}

// decimal reads a decimal value (a canonical decimal string, a JSON number or a
// string holding one) as unscaled digits and a scale: the fewest fractional digits
// that hold it exactly (never below 0). It works on the text, so that a hostile
// exponent such as 1e-30000 costs no more than the digits it spells out.
func (t ColumnType) decimal(v []byte) (*big.Int, int, error) {
	num := numberText(v)
	if num == nil {
		return nil, 0, mismatch(t, v, "not a number")
	}
	if exponentTooLarge(num) {
		return nil, 0, mismatch(t, v, "an exponent beyond any decimal column")
	}
	neg := num[0] == '-'
	if neg {
		num = num[1:]
	}
	exp := 0
	if i := bytes.IndexAny(num, "eE"); i >= 0 {
		e, _ := parseInt(bytes.TrimPrefix(num[i+1:], []byte{'+'})) // bounded by exponentTooLarge
		exp, num = int(e), num[:i]
	}
	whole, frac, _ := bytes.Cut(num, []byte{'.'})
	digits := append(append(make([]byte, 0, len(whole)+len(frac)), whole...), frac...)
	scale := len(frac) - exp
	for scale > 0 && len(digits) > 0 && digits[len(digits)-1] == '0' {
		digits, scale = digits[:len(digits)-1], scale-1
	}
	if scale > maxDecimalScale {
		return nil, 0, mismatch(t, v, "no finite decimal form")
	}
	for ; scale < 0; scale++ {
		digits = append(digits, '0')
	}
	unscaled, ok := new(big.Int).SetString(string(digits), 10)
	if !ok {
		unscaled = new(big.Int) // no digits left: zero
	}
	if neg {
		unscaled.Neg(unscaled)
	}
	return unscaled, scale, nil
}

func (t ColumnType) appendDecimal(dst, v []byte) ([]byte, error) {
	unscaled, scale, err := t.decimal(v)
	if err != nil {
		return dst, err
	}
	if t.Scale == ScaleOfValue {
		return appendBase64Quoted(dst, twosComplement(unscaled)), nil
	}
	if scale > t.Scale {
		return dst, mismatch(t, v, "more fractional digits than the column's scale "+strconv.Itoa(t.Scale))
	}
	unscaled.Mul(unscaled, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(t.Scale-scale)), nil))
	if t.Precision > 0 && len(new(big.Int).Abs(unscaled).String()) > t.Precision && unscaled.Sign() != 0 {
		return dst, mismatch(t, v, "more digits than the column's precision "+strconv.Itoa(t.Precision))
	}
	return appendBase64Quoted(dst, twosComplement(unscaled)), nil
}

// appendVarScale appends Debezium's VariableScaleDecimal struct: {"scale":s,"value":b64}.
func (t ColumnType) appendVarScale(dst, v []byte) ([]byte, error) {
	unscaled, scale, err := t.decimal(v)
	if err != nil {
		return dst, err
	}
	dst = append(dst, `{"scale":`...)
	dst = strconv.AppendInt(dst, int64(scale), 10)
	dst = append(dst, `,"value":`...)
	dst = appendBase64Quoted(dst, twosComplement(unscaled))
	return append(dst, '}'), nil
}

// twosComplement is the big-endian two's-complement form of n in the fewest bytes,
// as java.math.BigInteger.toByteArray writes the unscaled value of a Decimal.
func twosComplement(n *big.Int) []byte {
	if n.Sign() >= 0 {
		b := n.Bytes()
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return b
	}
	// -n = ^(n-1): take the magnitude minus one, invert, and keep a leading 1 bit.
	m := new(big.Int).Neg(n)
	m.Sub(m, big.NewInt(1))
	b := m.Bytes()
	if len(b) == 0 || b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	for i := range b {
		b[i] = ^b[i]
	}
	return b
}

func appendBase64Quoted(dst, raw []byte) []byte {
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, raw)
	return append(dst, '"')
}

// timestamp reads a canonical timestamp (an RFC 3339 string).
func (t ColumnType) timestamp(v []byte) (time.Time, error) {
	s, ok := text(v)
	if !ok {
		return time.Time{}, mismatch(t, v, "not a timestamp")
	}
	ts, err := time.Parse(time.RFC3339Nano, string(s))
	if err != nil {
		return time.Time{}, mismatch(t, v, "not an RFC 3339 timestamp")
	}
	return ts, nil
}

func (t ColumnType) appendEpochTime(dst, v []byte) ([]byte, error) {
	ts, err := t.timestamp(v)
	if err != nil {
		return dst, err
	}
	unit := time.Millisecond
	switch t.Name {
	case NameMicroTimestamp:
		unit = time.Microsecond
	case NameNanoTimestamp:
		unit = time.Nanosecond
	}
	if ts.Nanosecond()%int(unit) != 0 {
		return dst, mismatch(t, v, "finer than the column's precision")
	}
	if unit == time.Nanosecond && (ts.Year() < 1678 || ts.Year() > 2261) {
		return dst, mismatch(t, v, "out of the range of epoch nanoseconds in 64 bits")
	}
	sec, frac := ts.Unix(), int64(ts.Nanosecond())/int64(unit)
	return strconv.AppendInt(dst, sec*int64(time.Second/unit)+frac, 10), nil
}

func (t ColumnType) appendDays(dst, v []byte) ([]byte, error) {
	s, ok := text(v)
	if !ok {
		return dst, mismatch(t, v, "not a date")
	}
	d, err := time.Parse(time.DateOnly, string(s))
	if err != nil {
		ts, terr := t.timestamp(v)
		if terr != nil {
			return dst, mismatch(t, v, "not a date")
		}
		if ts = ts.UTC(); ts.Truncate(24*time.Hour) != ts {
			return dst, mismatch(t, v, "a time of day that a date column would drop")
		}
		d = ts
	}
	return strconv.AppendInt(dst, d.Unix()/86400, 10), nil
}

// exponentTooLarge reports whether a number's exponent is beyond any decimal column's
// scale, so that hostile input such as 1e999999999 never builds a huge integer.
func exponentTooLarge(num []byte) bool {
	for i, c := range num {
		if c == 'e' || c == 'E' {
			exp := num[i+1:]
			if len(exp) > 0 && (exp[0] == '+' || exp[0] == '-') {
				exp = exp[1:]
			}
			n, err := parseUint(exp)
			return err != nil || n > maxDecimalScale
		}
	}
	return false
}

// Fits reports whether a column of type t can hold the canonical value v without
// loss (AppendValue would succeed).
func (t ColumnType) Fits(v []byte) bool {
	var buf [64]byte
	_, err := t.AppendValue(buf[:0], v)
	return err == nil
}

// valueScale is the scale a Decimal of ScaleOfValue has for v (0 for NULL or a value
// that is no decimal, which AppendValue then refuses).
func (t ColumnType) valueScale(v []byte) int {
	if _, scale, err := t.decimal(v); err == nil {
		return scale
	}
	return 0
}
