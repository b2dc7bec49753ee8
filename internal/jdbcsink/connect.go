package jdbcsink

import (
	"fmt"
	"math/big"
	"strings"
	"time"
)

// Type is a Connect schema type (org.apache.kafka.connect.data.Schema.Type);
// String is the Java enum constant's name, as error messages print it.
type Type string

// The Connect schema types.
const (
	TypeInt8    Type = "INT8"
	TypeInt16   Type = "INT16"
	TypeInt32   Type = "INT32"
	TypeInt64   Type = "INT64"
	TypeFloat32 Type = "FLOAT32"
	TypeFloat64 Type = "FLOAT64"
	TypeBoolean Type = "BOOLEAN"
	TypeString  Type = "STRING"
	TypeBytes   Type = "BYTES"
	TypeArray   Type = "ARRAY"
	TypeMap     Type = "MAP"
	TypeStruct  Type = "STRUCT"
)

// IsPrimitive is Schema.Type.isPrimitive: every type but ARRAY, MAP and STRUCT.
func (t Type) IsPrimitive() bool { return t != TypeArray && t != TypeMap && t != TypeStruct }

// Logical type names the emulation knows (Connect's and Debezium's).
const (
	DecimalName   = "org.apache.kafka.connect.data.Decimal"
	DateName      = "org.apache.kafka.connect.data.Date"
	TimeName      = "org.apache.kafka.connect.data.Time"
	TimestampName = "org.apache.kafka.connect.data.Timestamp"
)

// Schema is a Connect schema (ConnectSchema). Values of each type are these Go types,
// standing for the Java classes the real converter produces:
//
//	INT8 int8 (Byte), INT16 int16 (Short), INT32 int32 (Integer), INT64 int64 (Long),
//	FLOAT32 float32, FLOAT64 float64, BOOLEAN bool, STRING string, BYTES []byte,
//	ARRAY []any (ArrayList), MAP []MapEntry (HashMap), STRUCT *Struct;
//	Decimal is a BigDecimal; Date, Time and Timestamp are time.Time (java.util.Date).
//
// A nil value is Java's null. Schemas are immutable once built.
type Schema struct {
	Type       Type
	Optional   bool
	Name       string // "" when the schema has none
	Version    *int
	Doc        string
	Parameters map[string]string // nil when the JSON schema had none
	Default    any               // nil when there is no default
	Fields     []Field           // STRUCT only, in order
	Key        *Schema           // MAP only
	Value      *Schema           // ARRAY elements and MAP values
}

// Field is a field of a STRUCT schema.
type Field struct {
	Name   string
	Index  int
	Schema *Schema
}

// Field returns the named field, or nil (Schema.field).
func (s *Schema) Field(name string) *Field {
	for i := range s.Fields {
		if s.Fields[i].Name == name {
			return &s.Fields[i]
		}
	}
	return nil
}

// String renders the schema like ConnectSchema.toString, "Schema{name:TYPE}".
func (s *Schema) String() string {
	if s == nil {
		return "null"
	}
	if s.Name != "" {
		return "Schema{" + s.Name + ":" + string(s.Type) + "}"
	}
	return "Schema{" + string(s.Type) + "}"
}

// SchemaAndValue is what a converter returns.
type SchemaAndValue struct {
	Schema *Schema
	Value  any
}

// MapEntry is one entry of a MAP value, in the order the JSON gave them.
type MapEntry struct {
	Key, Value any
}

// Struct is a Connect Struct: values by field index.
type Struct struct {
	Schema *Schema
	Values []any
}

func newStruct(s *Schema) *Struct {
	return &Struct{Schema: s, Values: make([]any, len(s.Fields))}
}

// Get returns the named field's value, or its default when the value is null
// (Struct.get). ok is false when the schema has no such field.
func (s *Struct) Get(name string) (v any, ok bool) {
	f := s.Schema.Field(name)
	if f == nil {
		return nil, false
	}
	if v := s.Values[f.Index]; v != nil {
		return v, true
	}
	return f.Schema.Default, true
}

// GetWithoutDefault returns the named field's value as set (Struct.getWithoutDefault).
func (s *Struct) GetWithoutDefault(name string) (v any, ok bool) {
	f := s.Schema.Field(name)
	if f == nil {
		return nil, false
	}
	return s.Values[f.Index], true
}

// getStruct is Struct.getStruct: the field must exist and be a STRUCT.
func (s *Struct) getStruct(name string) (*Struct, error) {
	v, err := s.getCheckType(name, TypeStruct)
	if err != nil || v == nil {
		return nil, err
	}
	st, ok := v.(*Struct)
	if !ok {
		return nil, classCast(v, "org.apache.kafka.connect.data.Struct")
	}
	return st, nil
}

// getString is Struct.getString.
func (s *Struct) getString(name string) (*string, error) {
	v, err := s.getCheckType(name, TypeString)
	if err != nil || v == nil {
		return nil, err
	}
	str, ok := v.(string)
	if !ok {
		return nil, classCast(v, "java.lang.String")
	}
	return &str, nil
}

// getCheckType follows Struct.getCheckType in apache/kafka
// connect/api/src/main/java/org/apache/kafka/connect/data/Struct.java.
func (s *Struct) getCheckType(name string, t Type) (any, error) {
	f := s.Schema.Field(name)
	if f == nil {
		return nil, dataErrorf("%s is not a valid field name", name)
	}
	if f.Schema.Type != t {
		return nil, dataErrorf("Field '%s' is not of type %s", name, t)
	}
	v, _ := s.Get(name)
	return v, nil
}

// Decimal is a java.math.BigDecimal: Unscaled × 10^-Scale.
type Decimal struct {
	Unscaled *big.Int
	Scale    int32
}

// String is BigDecimal.toString: plain notation unless the scale is negative or the
// adjusted exponent is below -6, then scientific ("1.23E+5"), as pgjdbc's
// setBigDecimal sends it (PgPreparedStatement.setNumber uses x.toString()).
func (d Decimal) String() string {
	digits := new(big.Int).Abs(d.Unscaled).String()
	sign := ""
	if d.Unscaled.Sign() < 0 {
		sign = "-"
	}
	scale := int(d.Scale)
	adjusted := -scale + len(digits) - 1
	switch {
	case scale == 0:
		return sign + digits
	case scale > 0 && adjusted >= -6:
		if pad := scale - len(digits) + 1; pad > 0 {
			digits = strings.Repeat("0", pad) + digits
		}
		point := len(digits) - scale
		return sign + digits[:point] + "." + digits[point:]
	default:
		s := digits[:1]
		if len(digits) > 1 {
			s += "." + digits[1:]
		}
		if adjusted != 0 {
			s += "E"
			if adjusted > 0 {
				s += "+"
			}
			s += fmt.Sprint(adjusted)
		}
		return sign + s
	}
}

// epochDate is java.util.Date(millis) as a time.Time in UTC.
func epochMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// validateValue follows ConnectSchema.validateValue for what can go wrong with the
// values JsonConverter builds (they always have the right Java class): a null where
// the schema is required, at any depth (apache/kafka
// connect/api/src/main/java/org/apache/kafka/connect/data/ConnectSchema.java).
func validateValue(location string, s *Schema, v any) error {
	if v == nil {
		if !s.Optional {
			return dataErrorf("Invalid value: null used for required %s, schema type: %s", location, s.Type)
		}
		return nil
	}
	switch s.Type {
	case TypeArray:
		loc := "element of array " + location
		elems, _ := v.([]any)
		for _, e := range elems {
			if err := validateValue(loc, s.Value, e); err != nil {
				return err
			}
		}
	case TypeMap:
		entries, _ := v.([]MapEntry)
		for _, e := range entries {
			if err := validateValue("key of map "+location, s.Key, e.Key); err != nil {
				return err
			}
			if err := validateValue("value of map "+location, s.Value, e.Value); err != nil {
				return err
			}
		}
	}
	return nil
}

// fieldLocation is how ConnectSchema.validateValue names a field.
func fieldLocation(name string) string { return `field: "` + name + `"` }

// schemasEqual is ConnectSchema.equals: the sinks' buffers flush when the key or
// value schema of the next record differs from the buffered ones.
func schemasEqual(a, b *Schema) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a == b {
		return true
	}
	if a.Type != b.Type || a.Optional != b.Optional || a.Name != b.Name || a.Doc != b.Doc ||
		!intPtrEqual(a.Version, b.Version) || !paramsEqual(a.Parameters, b.Parameters) ||
		!valuesEqual(a.Default, b.Default) || len(a.Fields) != len(b.Fields) ||
		!schemasEqual(a.Key, b.Key) || !schemasEqual(a.Value, b.Value) {
		return false
	}
	for i := range a.Fields {
		if a.Fields[i].Name != b.Fields[i].Name || !schemasEqual(a.Fields[i].Schema, b.Fields[i].Schema) {
			return false
		}
	}
	return true
}

func intPtrEqual(a, b *int) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func paramsEqual(a, b map[string]string) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// valuesEqual compares default values (Objects.equals on the Java values).
func valuesEqual(a, b any) bool {
	return fmt.Sprintf("%T:%v", a, a) == fmt.Sprintf("%T:%v", b, b)
}

// javaClassName names the Java class a Go value stands for, for messages such as a
// ClassCastException's.
func javaClassName(v any) string {
	switch v.(type) {
	case int8:
		return "java.lang.Byte"
	case int16:
		return "java.lang.Short"
	case int32:
		return "java.lang.Integer"
	case int64:
		return "java.lang.Long"
	case float32:
		return "java.lang.Float"
	case float64:
		return "java.lang.Double"
	case bool:
		return "java.lang.Boolean"
	case string:
		return "java.lang.String"
	case []byte:
		return "[B"
	case []any:
		return "java.util.ArrayList"
	case []MapEntry:
		return "java.util.HashMap"
	case *Struct:
		return "org.apache.kafka.connect.data.Struct"
	case Decimal:
		return "java.math.BigDecimal"
	case time.Time:
		return "java.util.Date"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// simpleClassName is Class.getSimpleName of javaClassName.
func simpleClassName(v any) string {
	n := javaClassName(v)
	if n == "[B" {
		return "byte[]"
	}
	return n[strings.LastIndex(n, ".")+1:]
}
