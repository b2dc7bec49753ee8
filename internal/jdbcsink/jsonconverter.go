package jdbcsink

import (
	"math/big"
	"strconv"
)

// JSONConverter is org.apache.kafka.connect.json.JsonConverter's deserializing half
// (apache/kafka connect/json/src/main/java/org/apache/kafka/connect/json/JsonConverter.java).
// The zero value is not configured; use NewJSONConverter. Safe for concurrent use.
//
// decimal.format only changes how the real converter serializes a Decimal; reading,
// it accepts both a Base64 string and a JSON number (LOGICAL_CONVERTERS' Decimal
// toConnect), so there is no option for it here.
type JSONConverter struct {
	// SchemasEnable is schemas.enable (default true): every message must be an
	// envelope {"schema": ..., "payload": ...}.
	SchemasEnable bool
	// ReplaceNullWithDefault is replace.null.with.default (default true): a null for a
	// field whose schema has a default becomes the default.
	ReplaceNullWithDefault bool
}

// NewJSONConverter returns a converter with the real defaults and schemas.enable as
// given.
func NewJSONConverter(schemasEnable bool) *JSONConverter {
	return &JSONConverter{SchemasEnable: schemasEnable, ReplaceNullWithDefault: true}
}

// ToConnectData converts with a default-configured converter; see
// JSONConverter.ToConnectData.
func ToConnectData(topic string, b []byte, schemasEnable bool) (SchemaAndValue, error) {
	return NewJSONConverter(schemasEnable).ToConnectData(topic, b)
}

const envelopeError = "JsonConverter with schemas.enable requires \"schema\" and \"payload\" fields and may not contain additional fields." +
	" If you are trying to deserialize plain JSON data, set schemas.enable=false in your converter configuration."

// ToConnectData is JsonConverter.toConnectData: nil bytes (a tombstone) give a null
// schema and value; otherwise the JSON is parsed and its schema (or, schemaless, an
// all-encompassing null schema) applied to the payload. Errors are DataExceptions with
// the Java messages.
func (c *JSONConverter) ToConnectData(_ string, b []byte) (SchemaAndValue, error) {
	if b == nil {
		return SchemaAndValue{}, nil
	}
	n, err := parseJSON(b)
	if err != nil {
		return SchemaAndValue{}, &JavaError{
			Class:   "DataException",
			Message: "Converting byte[] to Kafka Connect data failed due to serialization error: ", Cause: err,
		}
	}
	var schemaNode, payload *jsonNode
	if c.SchemasEnable {
		if n.typ != nodeObject || n.size() != 2 || !n.has("schema") || !n.has("payload") {
			return SchemaAndValue{}, dataErrorf("%s", envelopeError)
		}
		schemaNode, payload = n.get("schema"), n.get("payload")
	} else {
		schemaNode, payload = &jsonNode{typ: nodeNull}, n
	}
	schema, err := c.asConnectSchema(schemaNode)
	if err != nil {
		return SchemaAndValue{}, err
	}
	v, err := c.convertToConnect(schema, payload)
	if err != nil {
		return SchemaAndValue{}, err
	}
	return SchemaAndValue{Schema: schema, Value: v}, nil
}

// asConnectSchema is JsonConverter.asConnectSchema.
func (c *JSONConverter) asConnectSchema(n *jsonNode) (*Schema, error) {
	if n.typ == nodeNull {
		return nil, nil
	}
	typ, ok := n.get("type").textValueOrNil()
	if !ok {
		return nil, dataErrorf("Schema must contain 'type' field")
	}
	s, err := c.schemaOfType(typ, n)
	if err != nil {
		return nil, err
	}
	if o := n.get("optional"); o != nil && o.typ == nodeBoolean && o.boolean {
		s.Optional = true
	}
	if name, ok := n.get("name").textValueOrNil(); ok {
		s.Name = name
	}
	if v := n.get("version"); v != nil && v.isIntegral() {
		ver := int(v.intValue())
		s.Version = &ver
	}
	if doc, ok := n.get("doc").textValueOrNil(); ok {
		s.Doc = doc
	}
	if err := setParameters(s, n.get("parameters")); err != nil {
		return nil, err
	}
	return s, c.setDefault(s, n.get("default"))
}

func (n *jsonNode) textValueOrNil() (string, bool) {
	if n == nil {
		return "", false
	}
	return n.textValue()
}

// schemaOfType builds the SchemaBuilder for a JSON schema's "type".
func (c *JSONConverter) schemaOfType(typ string, n *jsonNode) (*Schema, error) {
	switch typ {
	case "boolean":
		return &Schema{Type: TypeBoolean}, nil
	case "int8":
		return &Schema{Type: TypeInt8}, nil
	case "int16":
		return &Schema{Type: TypeInt16}, nil
	case "int32":
		return &Schema{Type: TypeInt32}, nil
	case "int64":
		return &Schema{Type: TypeInt64}, nil
	case "float":
		return &Schema{Type: TypeFloat32}, nil
	case "double":
		return &Schema{Type: TypeFloat64}, nil
	case "bytes":
		return &Schema{Type: TypeBytes}, nil
	case "string":
		return &Schema{Type: TypeString}, nil
	case "array":
		return c.arraySchema(n)
	case "map":
		return c.mapSchema(n)
	case "struct":
		return c.structSchema(n)
	}
	return nil, dataErrorf("Unknown schema type: %s", typ)
}

func (c *JSONConverter) arraySchema(n *jsonNode) (*Schema, error) {
	items := n.get("items")
	if items.isNull() {
		return nil, dataErrorf("Array schema did not specify the element type")
	}
	elem, err := c.asConnectSchema(items)
	if err != nil {
		return nil, err
	}
	return &Schema{Type: TypeArray, Value: elem}, nil
}

func (c *JSONConverter) mapSchema(n *jsonNode) (*Schema, error) {
	keys, values := n.get("keys"), n.get("values")
	if keys == nil {
		return nil, dataErrorf("Map schema did not specify the key type")
	}
	if values == nil {
		return nil, dataErrorf("Map schema did not specify the value type")
	}
	k, err := c.asConnectSchema(keys)
	if err != nil {
		return nil, err
	}
	v, err := c.asConnectSchema(values)
	if err != nil {
		return nil, err
	}
	if k == nil || v == nil {
		// SchemaBuilder.map refuses null key or value schemas.
		return nil, &JavaError{Class: "SchemaBuilderException", Message: "keySchema and valueSchema cannot be null."}
	}
	return &Schema{Type: TypeMap, Key: k, Value: v}, nil
}

func (c *JSONConverter) structSchema(n *jsonNode) (*Schema, error) {
	fields := n.get("fields")
	if fields == nil || fields.typ != nodeArray {
		return nil, dataErrorf("Struct schema's \"fields\" argument is not an array.")
	}
	s := &Schema{Type: TypeStruct}
	for _, f := range fields.elems {
		name, ok := f.get("field").textValueOrNil()
		if !ok {
			return nil, dataErrorf("Struct schema's field name not specified properly")
		}
		fs, err := c.asConnectSchema(f)
		if err != nil {
			return nil, err
		}
		if s.Field(name) != nil {
			return nil, &JavaError{Class: "SchemaBuilderException", Message: "Cannot create field because of field name duplication " + name}
		}
		s.Fields = append(s.Fields, Field{Name: name, Index: len(s.Fields), Schema: fs})
	}
	return s, nil
}

func setParameters(s *Schema, params *jsonNode) error {
	if params == nil || params.typ != nodeObject {
		return nil
	}
	s.Parameters = map[string]string{}
	for _, k := range params.keys {
		v, ok := params.fields[k].textValue()
		if !ok {
			return dataErrorf("Schema parameters must have string values.")
		}
		s.Parameters[k] = v
	}
	return nil
}

// setDefault is builder.defaultValue(convertToConnect(builder, default)).
func (c *JSONConverter) setDefault(s *Schema, n *jsonNode) error {
	if n == nil {
		return nil
	}
	v, err := c.convertToConnect(s, n)
	if err != nil {
		return err
	}
	if err := validateValue("value", s, v); err != nil {
		return &JavaError{Class: "SchemaBuilderException", Message: "Invalid default value", Cause: err}
	}
	s.Default = v
	return nil
}

// convertToConnect is JsonConverter.convertToConnect: null handling, then the
// logical converter for the schema's name, then the type converter.
func (c *JSONConverter) convertToConnect(s *Schema, n *jsonNode) (any, error) {
	if s == nil {
		return c.convertSchemaless(n)
	}
	if n.isNull() {
		if s.Default != nil && c.ReplaceNullWithDefault {
			return s.Default, nil
		}
		if s.Optional {
			return nil, nil
		}
		return nil, dataErrorf("Invalid null value for required %s field", s.Type)
	}
	if s.Name != "" {
		if v, ok, err := logicalToConnect(s, n); ok {
			return v, err
		}
	}
	return c.convertTyped(s, n)
}

// convertSchemaless infers the type from the node, as convertToConnect does with a
// null schema: integers are INT64, other numbers FLOAT64, objects MAPs.
func (c *JSONConverter) convertSchemaless(n *jsonNode) (any, error) {
	if n.isNull() {
		return nil, nil
	}
	switch n.typ {
	case nodeBoolean:
		return n.booleanValue(), nil
	case nodeNumber:
		if n.isIntegral() {
			return n.longValue(), nil
		}
		return n.doubleValue(), nil
	case nodeString:
		s, _ := n.textValue()
		return s, nil
	case nodeArray:
		return c.convertArray(nil, n)
	default: // nodeObject
		return c.convertMap(nil, n)
	}
}

// convertTyped is TO_CONNECT_CONVERTERS: each reads the node with the JsonNode
// accessor for its type, whatever the node really is (a number in a STRING field
// gives null, a string in an INT32 field gives 0).
func (c *JSONConverter) convertTyped(s *Schema, n *jsonNode) (any, error) {
	switch s.Type {
	case TypeBoolean:
		return n.booleanValue(), nil
	case TypeInt8:
		return int8(n.intValue()), nil
	case TypeInt16:
		return int16(n.intValue()), nil
	case TypeInt32:
		return n.intValue(), nil
	case TypeInt64:
		return n.longValue(), nil
	case TypeFloat32:
		return n.floatValue(), nil
	case TypeFloat64:
		return n.doubleValue(), nil
	case TypeBytes:
		return bytesValue(n)
	case TypeString:
		if v, ok := n.textValue(); ok {
			return v, nil
		}
		return nil, nil
	case TypeArray:
		return c.convertArray(s.Value, n)
	case TypeMap:
		return c.convertMap(s, n)
	default:
		return c.convertStruct(s, n)
	}
}

func bytesValue(n *jsonNode) (any, error) {
	b, ok, err := n.binaryValue()
	if err != nil {
		return nil, &JavaError{Class: "DataException", Message: "Invalid bytes field", Cause: err}
	}
	if !ok {
		return nil, nil
	}
	return b, nil
}

func (c *JSONConverter) convertArray(elem *Schema, n *jsonNode) (any, error) {
	out := []any{}
	for _, e := range n.iterate() {
		v, err := c.convertToConnect(elem, e)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// convertMap: string-keyed (or schemaless) maps are JSON objects, others arrays of
// [key, value] pairs.
func (c *JSONConverter) convertMap(s *Schema, n *jsonNode) (any, error) {
	var keySchema, valueSchema *Schema
	if s != nil {
		keySchema, valueSchema = s.Key, s.Value
	}
	if s == nil || keySchema.Type == TypeString {
		if n.typ != nodeObject {
			return nil, dataErrorf("Maps with string fields should be encoded as JSON objects, but found %s", n.typ)
		}
		return c.convertObjectMap(valueSchema, n)
	}
	if n.typ != nodeArray {
		return nil, dataErrorf("Maps with non-string fields should be encoded as JSON array of tuples, but found %s", n.typ)
	}
	out := []MapEntry{}
	for _, e := range n.elems {
		if e.typ != nodeArray {
			return nil, dataErrorf("Found invalid map entry instead of array tuple: %s", e.typ)
		}
		if len(e.elems) != 2 {
			return nil, dataErrorf("Found invalid map entry, expected length 2 but found :%d", len(e.elems))
		}
		k, err := c.convertToConnect(keySchema, e.elems[0])
		if err != nil {
			return nil, err
		}
		v, err := c.convertToConnect(valueSchema, e.elems[1])
		if err != nil {
			return nil, err
		}
		out = append(out, MapEntry{Key: k, Value: v})
	}
	return out, nil
}

func (c *JSONConverter) convertObjectMap(valueSchema *Schema, n *jsonNode) (any, error) {
	out := []MapEntry{}
	for _, k := range n.keys {
		v, err := c.convertToConnect(valueSchema, n.fields[k])
		if err != nil {
			return nil, err
		}
		out = append(out, MapEntry{Key: k, Value: v})
	}
	return out, nil
}

// convertStruct puts every schema field (absent ones as null) through Struct.put,
// which validates it: a required field left null by its converter is refused there.
func (c *JSONConverter) convertStruct(s *Schema, n *jsonNode) (any, error) {
	if n.typ != nodeObject {
		return nil, dataErrorf("Structs should be encoded as JSON objects, but found %s", n.typ)
	}
	st := newStruct(s)
	for _, f := range s.Fields {
		v, err := c.convertToConnect(f.Schema, n.get(f.Name))
		if err != nil {
			return nil, err
		}
		if err := validateValue(fieldLocation(f.Name), f.Schema, v); err != nil {
			return nil, err
		}
		st.Values[f.Index] = v
	}
	return st, nil
}

// logicalToConnect is LOGICAL_CONVERTERS' toConnect; ok is false when the schema's
// name is not one of Connect's logical types.
func logicalToConnect(s *Schema, n *jsonNode) (v any, ok bool, err error) {
	switch s.Name {
	case DecimalName:
		v, err = decimalToConnect(s, n)
	case DateName:
		if !n.isInt() {
			return nil, true, dataErrorf("Invalid type for Date, underlying representation should be integer but was %s", n.typ)
		}
		v = epochMillis(int64(n.intValue()) * 86_400_000)
	case TimeName:
		v, err = timeToConnect(n)
	case TimestampName:
		if !n.isIntegral() {
			return nil, true, dataErrorf("Invalid type for Timestamp, underlying representation should be integral but was %s", n.typ)
		}
		v = epochMillis(n.longValue())
	default:
		return nil, false, nil
	}
	return v, true, err
}

func timeToConnect(n *jsonNode) (any, error) {
	if !n.isInt() {
		return nil, dataErrorf("Invalid type for Time, underlying representation should be integer but was %s", n.typ)
	}
	ms := n.intValue()
	if ms < 0 || ms > 86_400_000 {
		return nil, dataErrorf("Time values must use number of milliseconds greater than 0 and less than 86400000")
	}
	return epochMillis(int64(ms)), nil
}

// decimalToConnect: a JSON number is taken as is (its own scale, whatever the
// schema's); text is Base64 of the unscaled two's-complement big-endian integer, with
// the schema's "scale" parameter (apache/kafka
// connect/api/src/main/java/org/apache/kafka/connect/data/Decimal.java).
func decimalToConnect(s *Schema, n *jsonNode) (any, error) {
	if n.typ == nodeNumber {
		return n.decimalValue(), nil
	}
	if n.typ != nodeString {
		return nil, dataErrorf("Invalid type for Decimal, underlying representation should be numeric or bytes but was %s", n.typ)
	}
	b, _, err := n.binaryValue()
	if err == nil {
		var d Decimal
		d, err = decimalFromBytes(s, b)
		if err == nil {
			return d, nil
		}
	}
	return nil, &JavaError{Class: "DataException", Message: "Invalid bytes for Decimal field", Cause: err}
}

func decimalFromBytes(s *Schema, b []byte) (Decimal, error) {
	if len(b) == 0 {
		return Decimal{}, &JavaError{Class: "NumberFormatException", Message: "Zero length BigInteger"}
	}
	if s.Parameters == nil {
		return Decimal{}, nullPointer("Cannot invoke \"java.util.Map.get(Object)\" because the return value of \"org.apache.kafka.connect.data.Schema.parameters()\" is null")
	}
	scaleText, ok := s.Parameters["scale"]
	if !ok {
		return Decimal{}, dataErrorf("Invalid Decimal schema: scale parameter not found.")
	}
	scale, err := strconv.ParseInt(scaleText, 10, 32)
	if err != nil {
		return Decimal{}, &JavaError{Class: "DataException", Message: "Invalid scale parameter found in Decimal schema: ", Cause: err}
	}
	return Decimal{Unscaled: twosComplement(b), Scale: int32(scale)}, nil
}

// twosComplement is new BigInteger(byte[]).
func twosComplement(b []byte) *big.Int {
	i := new(big.Int).SetBytes(b)
	if b[0]&0x80 != 0 {
		i.Sub(i, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return i
}
