package codecs

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"time"

	"github.com/valyala/fastjson"
)

// logicalKind is a Connect logical type the decoder turns into a canonical value.
type logicalKind uint8

const (
	logicalNone     logicalKind = iota
	logicalDecimal              // org.apache.kafka.connect.data.Decimal: base64 unscaled value, scale parameter
	logicalVarScale             // io.debezium.data.VariableScaleDecimal: {"scale":s,"value":base64}
	logicalMillis               // epoch milliseconds
	logicalMicros               // epoch microseconds
	logicalNanos                // epoch nanoseconds
	logicalZoned                // ISO-8601 string with offset
	logicalDate                 // days since the epoch
	logicalJSON                 // io.debezium.data.Json: a JSON document as text
)

func logicalKindOf(name []byte) logicalKind {
	switch string(name) {
	case "org.apache.kafka.connect.data.Decimal":
		return logicalDecimal
	case "io.debezium.data.VariableScaleDecimal":
		return logicalVarScale
	case "io.debezium.time.Timestamp", "org.apache.kafka.connect.data.Timestamp":
		return logicalMillis
	case "io.debezium.time.MicroTimestamp":
		return logicalMicros
	case "io.debezium.time.NanoTimestamp":
		return logicalNanos
	case "io.debezium.time.ZonedTimestamp":
		return logicalZoned
	case "io.debezium.time.Date", "org.apache.kafka.connect.data.Date":
		return logicalDate
	case "io.debezium.data.Json":
		return logicalJSON
	}
	return logicalNone
}

var logicalNames = [...]string{
	logicalNone:     "",
	logicalDecimal:  "Decimal",
	logicalVarScale: "VariableScaleDecimal",
	logicalMillis:   "Timestamp",
	logicalMicros:   "MicroTimestamp",
	logicalNanos:    "NanoTimestamp",
	logicalZoned:    "ZonedTimestamp",
	logicalDate:     "Date",
	logicalJSON:     "Json",
}

// Bounds that keep hostile input from making huge values: PostgreSQL's numeric has
// at most 16383 digits after the point, so real decimals stay well inside them.
const (
	maxDecimalScale = 1 << 15
	maxDecimalBytes = 1 << 12
)

// fieldType is what a schema says about one column: its Connect type, and the
// logical type when it names one the decoder understands.
type fieldType struct {
	column []byte // borrowed from the parse tree of the message
	typ    schemaType
	kind   logicalKind
	scale  int // Decimal only
}

// fieldTypes are the columns of a row's schema.
type fieldTypes struct {
	fields []fieldType
	// strict says the schema is a JsonConverter struct schema the decoder reads in
	// full (every field has a name and a type): a value must then be of its field's
	// type, and a column that is not one of its fields is an error.
	strict bool
}

// lookup returns what the schema says about the named column, and whether it names
// it at all. JsonConverter writes a row in its schema's field order, so the field at
// the column's position is tried first.
func (ts *fieldTypes) lookup(column []byte, pos int) (fieldType, bool) {
	if pos >= 0 && pos < len(ts.fields) && bytes.Equal(ts.fields[pos].column, column) {
		return ts.fields[pos], true
	}
	for _, t := range ts.fields {
		if bytes.Equal(t.column, column) {
			return t, true
		}
	}
	return fieldType{}, false
}

// read takes the fields of a JsonConverter struct schema:
// {"type":"struct","fields":[{"field":column,"type":type,"name":logical,...},...]}.
// Anything else (a null schema, another shape such as the PostgreSQL documentation's
// key example, an unknown logical name, a Decimal without a scale) says nothing about
// the columns it does not describe in full: a schema the decoder does not understand
// only means values pass through unchanged.
func (ts *fieldTypes) read(structSchema *fastjson.Value) {
	ts.fields, ts.strict = ts.fields[:0], false
	fields := structSchema.GetArray("fields")
	strict := fields != nil
	for _, f := range fields {
		o, err := f.Object()
		if err != nil {
			strict = false
			continue
		}
		// One pass over the field schema's members: this runs for every column of
		// every schema'd message.
		var column, typ, name []byte
		var params *fastjson.Value
		o.Visit(func(key []byte, v *fastjson.Value) {
			switch string(key) {
			case "field":
				column = stringOrNil(v)
			case "type":
				typ = stringOrNil(v)
			case "name":
				name = stringOrNil(v)
			case "parameters":
				params = v
			}
		})
		t, known := schemaTypeOf(typ)
		strict = strict && column != nil && known
		if column == nil {
			continue
		}
		ft := fieldType{column: column, typ: t, kind: logicalKindOf(name)}
		if ft.kind == logicalDecimal {
			scale, ok := decimalScale(params.Get("scale"))
			if !ok {
				ft.kind = logicalNone // a Decimal without a scale passes through unchanged
			}
			ft.scale = scale
		}
		ts.fields = append(ts.fields, ft)
	}
	ts.strict = strict
}

// decimalScale reads a Decimal's scale parameter: JsonConverter writes it as a
// string ("2"), hand-written schemas sometimes as a number.
func decimalScale(v *fastjson.Value) (int, bool) {
	if v == nil {
		return 0, false
	}
	var text []byte
	switch v.Type() {
	case fastjson.TypeString:
		text, _ = v.StringBytes() // cannot fail: the type is string
	case fastjson.TypeNumber:
		var buf [24]byte
		text = v.MarshalTo(buf[:0])
	default:
		return 0, false
	}
	n, err := parseInt(text)
	if err != nil || n < -maxDecimalScale || n > maxDecimalScale {
		return 0, false
	}
	return int(n), true
}

// envelopeFieldSchema returns the schema of the envelope field called name ("before",
// "after") in a JsonConverter envelope schema, or nil.
func envelopeFieldSchema(schema *fastjson.Value, name string) *fastjson.Value {
	for _, f := range schema.GetArray("fields") {
		if string(f.GetStringBytes("field")) == name {
			return f
		}
	}
	return nil
}

// converter turns values of Connect logical types into canonical JSON. Its buffers
// are scratch space reused from one value to the next.
type converter struct {
	raw    []byte // decoded base64
	digits []byte // decimal digits
	text   []byte // number text
	doc    fastjson.Parser
	docBuf []byte // a canonical JSON document
}

// appendJSONDocument handles io.debezium.data.Json (a json or jsonb column): the text
// of a JSON document, canonicalised by meaning, so that the same document compares
// equal however it was written: PostgreSQL's jsonb reorders keys, keeps the last of
// duplicate keys and prints its own spacing, and a document concord writes comes
// back in that form. Object members are sorted by key, the last of duplicates kept.
func (c *converter) appendJSONDocument(dst []byte, v *fastjson.Value) ([]byte, error) {
	s, err := v.StringBytes()
	if err != nil {
		return dst, fmt.Errorf("value is %s, want a string holding a JSON document", kindOf(v))
	}
	doc, err := c.doc.ParseBytes(s)
	if err != nil {
		return dst, fmt.Errorf("value %.40q is not a JSON document", s)
	}
	c.docBuf, err = AppendSortedJSON(c.docBuf[:0], doc)
	if err != nil {
		return dst, err
	}
	return appendJSONString(dst, c.docBuf), nil
}

// appendLogical appends the canonical form of v, a value of the logical type t.
// SQL NULL stays null.
func (c *converter) appendLogical(dst []byte, v *fastjson.Value, t fieldType) ([]byte, error) {
	if v.Type() == fastjson.TypeNull {
		return append(dst, "null"...), nil
	}
	var err error
	switch t.kind {
	case logicalNone:
		return AppendCanonicalJSON(dst, v)
	case logicalDecimal:
		dst, err = c.appendDecimal(dst, v, t.scale)
	case logicalVarScale:
		dst, err = c.appendVarScale(dst, v)
	case logicalMillis, logicalMicros, logicalNanos:
		dst, err = c.appendEpoch(dst, v, t.kind)
	case logicalZoned:
		dst, err = appendZoned(dst, v)
	case logicalDate:
		dst, err = c.appendDate(dst, v)
	case logicalJSON:
		dst, err = c.appendJSONDocument(dst, v)
	}
	if err != nil {
		return dst, fmt.Errorf("%s: %w", logicalNames[t.kind], err)
	}
	return dst, nil
}

// appendDecimal handles Decimal in both JsonConverter decimal.format settings: BASE64
// (the default: a base64 string) and NUMERIC (a JSON number).
func (c *converter) appendDecimal(dst []byte, v *fastjson.Value, scale int) ([]byte, error) {
	switch v.Type() {
	case fastjson.TypeString:
		s, _ := v.StringBytes() // cannot fail: the type is string
		return c.appendBase64Decimal(dst, s, scale)
	case fastjson.TypeNumber:
		c.text = v.MarshalTo(c.text[:0])
		if !isJSONNumber(c.text) {
			return dst, fmt.Errorf("%.40q is not a JSON number", c.text)
		}
		return c.appendNumberDecimal(dst, c.text, scale)
	default:
		return dst, fmt.Errorf("value is %s, want a base64 string or a number", kindOf(v))
	}
}

// appendVarScale handles VariableScaleDecimal: a struct {"scale":int32,"value":base64}.
func (c *converter) appendVarScale(dst []byte, v *fastjson.Value) ([]byte, error) {
	o, err := v.Object()
	if err != nil {
		return dst, fmt.Errorf("value is %s, want an object {\"scale\":…,\"value\":…}", kindOf(v))
	}
	sv, value := o.Get("scale"), o.Get("value")
	if sv == nil || value == nil {
		return dst, errors.New(`value needs both "scale" and "value"`)
	}
	scale, err := c.integer(sv)
	if err != nil {
		return dst, fmt.Errorf(`"scale": %w`, err)
	}
	if scale < -maxDecimalScale || scale > maxDecimalScale {
		return dst, fmt.Errorf(`"scale" %d is out of range ±%d`, scale, maxDecimalScale)
	}
	s, err := value.StringBytes()
	if err != nil {
		return dst, fmt.Errorf(`"value" is %s, want a base64 string`, kindOf(value))
	}
	return c.appendBase64Decimal(dst, s, int(scale))
}

func (c *converter) appendBase64Decimal(dst, s []byte, scale int) ([]byte, error) {
	if base64.StdEncoding.DecodedLen(len(s)) > maxDecimalBytes {
		return dst, fmt.Errorf("unscaled value of %d base64 characters is too large", len(s))
	}
	c.raw = grow(c.raw, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(c.raw, s)
	if err != nil {
		return dst, fmt.Errorf("unscaled value %.40q is not base64: %w", s, err)
	}
	if n == 0 {
		return dst, errors.New("unscaled value is empty")
	}
	neg := c.twosComplementDigits(c.raw[:n])
	return appendScaled(dst, neg, c.digits, scale)
}

// twosComplementDigits writes the magnitude of the big-endian two's complement
// integer b (as Java's BigInteger.toByteArray gives it) to c.digits in decimal and
// reports whether it is negative.
func (c *converter) twosComplementDigits(b []byte) (neg bool) {
	if len(b) <= 8 {
		n := int64(int8(b[0]))
		for _, x := range b[1:] {
			n = n<<8 | int64(x)
		}
		mag := uint64(n)
		if n < 0 {
			mag = -mag
		}
		c.digits = strconv.AppendUint(c.digits[:0], mag, 10)
		return n < 0
	}
	var z big.Int
	z.SetBytes(b)
	neg = b[0]&0x80 != 0
	if neg {
		var m big.Int
		m.Lsh(big.NewInt(1), uint(8*len(b)))
		z.Sub(&m, &z)
	}
	c.digits = z.Append(c.digits[:0], 10)
	return neg
}

// appendNumberDecimal renders the JSON number text (a NUMERIC-format Decimal, which
// Jackson may write with an exponent) as a plain decimal string (see appendScaled).
// It never rounds.
func (c *converter) appendNumberDecimal(dst, text []byte, scale int) ([]byte, error) {
	neg := text[0] == '-'
	if neg {
		text = text[1:]
	}
	exp := 0
	if i := bytes.IndexAny(text, "eE"); i >= 0 {
		e, err := parseInt(bytes.TrimPrefix(text[i+1:], []byte{'+'}))
		if err != nil || e < -maxDecimalScale || e > maxDecimalScale {
			return dst, fmt.Errorf("exponent of %s is out of range", text)
		}
		exp, text = int(e), text[:i]
	}
	intPart, frac, _ := bytes.Cut(text, []byte{'.'})
	c.digits = append(append(c.digits[:0], intPart...), frac...)
	natural := len(frac) - exp
	for ; natural < scale; natural++ {
		c.digits = append(c.digits, '0')
	}
	return appendScaled(dst, neg, c.digits, natural)
}

// appendScaled appends the JSON string of the decimal digits×10^-scale in its
// shortest exact form, for example "12.5" or "-0.001". digits may have leading
// zeros. Trailing fractional zeros are dropped: they only say the column's scale,
// and a numeric(12,2) 12.50 and a numeric(12,4) 12.5000 are the same value, so two
// systems holding it must compare equal (and an apply written into a column of
// another scale must be recognised when it echoes back).
func appendScaled(dst []byte, neg bool, digits []byte, scale int) ([]byte, error) {
	if scale < -maxDecimalScale || scale > maxDecimalScale {
		return dst, fmt.Errorf("scale %d is out of range ±%d", scale, maxDecimalScale)
	}
	for len(digits) > 1 && digits[0] == '0' {
		digits = digits[1:]
	}
	for scale > 0 && len(digits) > 1 && digits[len(digits)-1] == '0' {
		digits, scale = digits[:len(digits)-1], scale-1
	}
	if len(digits) == 1 && digits[0] == '0' {
		scale = 0
	}
	zero := len(digits) == 1 && digits[0] == '0'
	dst = append(dst, '"')
	if neg && !zero {
		dst = append(dst, '-')
	}
	switch {
	case scale <= 0:
		dst = append(dst, digits...)
		if !zero {
			dst = appendZeros(dst, -scale)
		}
	case len(digits) > scale:
		dst = append(dst, digits[:len(digits)-scale]...)
		dst = append(dst, '.')
		dst = append(dst, digits[len(digits)-scale:]...)
	default:
		dst = append(dst, '0', '.')
		dst = appendZeros(dst, scale-len(digits))
		dst = append(dst, digits...)
	}
	return append(dst, '"'), nil
}

func appendZeros(dst []byte, n int) []byte {
	for range n {
		dst = append(dst, '0')
	}
	return dst
}

// appendEpoch handles the epoch-based timestamps (Debezium's Timestamp,
// MicroTimestamp, NanoTimestamp and Connect's Timestamp). They carry no time zone;
// Debezium documents them as UTC.
func (c *converter) appendEpoch(dst []byte, v *fastjson.Value, kind logicalKind) ([]byte, error) {
	n, err := c.integer(v)
	if err != nil {
		return dst, err
	}
	var t time.Time
	switch kind {
	case logicalMillis:
		t = time.UnixMilli(n)
	case logicalMicros:
		t = time.UnixMicro(n)
	default:
		t = time.Unix(0, n)
	}
	return appendTimestamp(dst, t)
}

func appendZoned(dst []byte, v *fastjson.Value) ([]byte, error) {
	s, err := v.StringBytes()
	if err != nil {
		return dst, fmt.Errorf("value is %s, want an ISO-8601 string", kindOf(v))
	}
	t, err := time.Parse(time.RFC3339Nano, string(s))
	if err != nil {
		return dst, fmt.Errorf("value %.60q is not an ISO-8601 timestamp with offset", s)
	}
	return appendTimestamp(dst, t)
}

// appendTimestamp appends t as an RFC 3339 UTC JSON string. Years outside 0000-9999
// have no RFC 3339 form.
func appendTimestamp(dst []byte, t time.Time) ([]byte, error) {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return dst, fmt.Errorf("year %d is out of range 0000-9999", y)
	}
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"'), nil
}

// Days since 1970-01-01 of 0000-01-01 and 9999-12-31.
const (
	minEpochDay = -719528
	maxEpochDay = 2932896
)

func (c *converter) appendDate(dst []byte, v *fastjson.Value) ([]byte, error) {
	days, err := c.integer(v)
	if err != nil {
		return dst, err
	}
	if days < minEpochDay || days > maxEpochDay {
		return dst, fmt.Errorf("%d days since the epoch is outside 0000-9999", days)
	}
	dst = append(dst, '"')
	dst = time.Unix(days*86400, 0).UTC().AppendFormat(dst, time.DateOnly)
	return append(dst, '"'), nil
}

// integer reads an integer value, as a JSON number or a string of digits.
func (c *converter) integer(v *fastjson.Value) (int64, error) {
	text, scratch, err := integerText(c.text, v)
	c.text = scratch
	if err != nil {
		return 0, fmt.Errorf("value %w", err)
	}
	n, err := parseInt(text)
	if err != nil {
		return 0, fmt.Errorf("value %.40s: %w", text, err)
	}
	return n, nil
}

// grow returns b resized to n bytes, reusing its array when it is large enough.
func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}
