package codecs

import (
	"fmt"
	"strconv"

	"github.com/valyala/fastjson"
)

// schemaType is the Connect schema type of a field, as JsonConverter names it.
type schemaType uint8

const (
	typeUnknown schemaType = iota
	typeInt8
	typeInt16
	typeInt32
	typeInt64
	typeFloat32
	typeFloat64
	typeBoolean
	typeString
	typeBytes
	typeStruct
	typeArray
	typeMap
)

var schemaTypeNames = [...]string{
	typeUnknown: "", typeInt8: TypeInt8, typeInt16: TypeInt16, typeInt32: TypeInt32, typeInt64: TypeInt64,
	typeFloat32: TypeFloat32, typeFloat64: TypeFloat64, typeBoolean: TypeBoolean, typeString: TypeString,
	typeBytes: TypeBytes, typeStruct: TypeStruct, typeArray: "array", typeMap: "map",
}

// schemaTypeOf reads a field schema's "type"; known is false for anything else.
func schemaTypeOf(b []byte) (t schemaType, known bool) {
	switch string(b) {
	case TypeInt8:
		return typeInt8, true
	case TypeInt16:
		return typeInt16, true
	case TypeInt32:
		return typeInt32, true
	case TypeInt64:
		return typeInt64, true
	case TypeFloat32:
		return typeFloat32, true
	case TypeFloat64:
		return typeFloat64, true
	case TypeBoolean:
		return typeBoolean, true
	case TypeString:
		return typeString, true
	case TypeBytes:
		return typeBytes, true
	case TypeStruct:
		return typeStruct, true
	case "array":
		return typeArray, true
	case "map":
		return typeMap, true
	}
	return typeUnknown, false
}

// intBits are the bounds of the integer types.
var intBits = [...]uint8{typeInt8: 8, typeInt16: 16, typeInt32: 32, typeInt64: 64}

// checkType checks a value against the Connect type its schema gives it, as
// JsonConverter would have written it (JsonConverter.convertToJson): integers and
// floats as JSON numbers (floats' NaN and infinities as strings), booleans, strings,
// bytes as base64 strings, structs and maps as objects (a map with non-string keys
// as an array of pairs), arrays as arrays. SQL NULL is always accepted. text is the
// value's canonical JSON. A producer that writes anything else is not JsonConverter,
// and its value cannot be trusted to mean what the schema says.
func checkType(t schemaType, v *fastjson.Value, text []byte) error {
	vt := v.Type()
	if vt == fastjson.TypeNull || t == typeUnknown {
		return nil
	}
	ok := false
	switch t {
	case typeInt8, typeInt16, typeInt32, typeInt64:
		if vt == fastjson.TypeNumber {
			return checkInteger(text, intBits[t])
		}
	case typeFloat32, typeFloat64:
		switch vt {
		case fastjson.TypeNumber:
			return checkFloat(text, t)
		case fastjson.TypeString:
			s := string(text)
			ok = s == `"NaN"` || s == `"Infinity"` || s == `"-Infinity"`
		}
	case typeBoolean:
		ok = vt == fastjson.TypeTrue || vt == fastjson.TypeFalse
	case typeString, typeBytes:
		ok = vt == fastjson.TypeString
	case typeStruct:
		ok = vt == fastjson.TypeObject
	case typeArray:
		ok = vt == fastjson.TypeArray
	case typeMap:
		ok = vt == fastjson.TypeObject || vt == fastjson.TypeArray
	}
	if !ok {
		return fmt.Errorf("the schema says %s, the value is %s (%.40s): the schema does not match its payload", schemaTypeNames[t], kindOf(v), text)
	}
	return nil
}

// checkInteger checks that a JSON number is an integer of the given width.
func checkInteger(text []byte, bits uint8) error {
	n, err := parseInt(text)
	if err != nil {
		if isDigits(text) {
			return fmt.Errorf("%.40s is beyond int%d, the schema's type", text, bits)
		}
		return fmt.Errorf("%.40s is not an integer, but the schema says int%d", text, bits)
	}
	if bits < 64 && (n < -1<<(bits-1) || n >= 1<<(bits-1)) {
		return fmt.Errorf("%d is beyond int%d, the schema's type", n, bits)
	}
	return nil
}

// checkFloat checks that a JSON number is within the range of a float of type t.
func checkFloat(text []byte, t schemaType) error {
	bits := 64
	if t == typeFloat32 {
		bits = 32
	}
	f, err := strconv.ParseFloat(string(text), bits)
	if err != nil || f == 0 && hasNonZeroDigit(text) {
		return fmt.Errorf("%.40s is beyond %s, the schema's type", text, schemaTypeNames[t])
	}
	return nil
}

// isDigits reports whether b is a decimal integer, with an optional minus sign.
func isDigits(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	return len(b) > 0 && skipDigits(b, 0) == len(b)
}

// maxNumberText bounds a number whose type no schema gives. Such a number goes to
// another system whose column type concord may not know either, typed by its value
// (InferType): an int64, a float64 that prints back as the same number, else a
// Decimal of the value's own scale, which holds any number within these bounds
// exactly. A longer one (PostgreSQL's numeric alone allows more digits) or one with
// an exponent beyond any decimal column is refused, not rounded.
const maxNumberText = 1 << 12

// checkUntypedNumber checks a JSON number of a column without a schema type against
// maxNumberText and the decimal exponent bound.
func checkUntypedNumber(text []byte) error {
	switch {
	case len(text) > maxNumberText:
		return fmt.Errorf("a number of %d characters: longer than the %d concord carries exactly", len(text), maxNumberText)
	case exponentTooLarge(text):
		return fmt.Errorf("%.40s is beyond float64 and its exponent beyond any decimal column (%d): concord cannot carry it exactly", text, maxDecimalScale)
	}
	return nil
}
