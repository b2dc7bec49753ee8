package jdbcsink

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// nodeType is Jackson's JsonNodeType, named as getNodeType() prints.
type nodeType string

const (
	nodeMissing nodeType = "MISSING"
	nodeNull    nodeType = "NULL"
	nodeBoolean nodeType = "BOOLEAN"
	nodeNumber  nodeType = "NUMBER"
	nodeString  nodeType = "STRING"
	nodeArray   nodeType = "ARRAY"
	nodeObject  nodeType = "OBJECT"
)

// jsonNode is a Jackson JsonNode as Kafka's JsonDeserializer builds it: integers are
// IntNode, LongNode or BigIntegerNode by size, other numbers DecimalNode
// (USE_BIG_DECIMAL_FOR_FLOATS, exact), objects keep their first-seen key order and the
// last value of a duplicate key (apache/kafka
// connect/json/src/main/java/org/apache/kafka/connect/json/JsonConverter.java and
// JsonDeserializer.java; FasterXML/jackson-databind node/*.java).
type jsonNode struct {
	typ     nodeType
	boolean bool
	text    string // STRING value, or a NUMBER's literal
	integer *big.Int
	decimal *Decimal // NUMBER that is not integral
	elems   []*jsonNode
	keys    []string
	fields  map[string]*jsonNode
}

var missingNode = &jsonNode{typ: nodeMissing}

// parseJSON is ObjectMapper.readTree(byte[]): empty input is a MissingNode, and
// content after the first value is ignored (FAIL_ON_TRAILING_TOKENS is off).
func parseJSON(b []byte) (*jsonNode, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return missingNode, nil
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	n, err := readNode(d, 0)
	if err != nil {
		return nil, &JavaError{Class: "SerializationException", Message: "com.fasterxml.jackson.core.JsonParseException: " + err.Error()}
	}
	return n, nil
}

// Jackson's StreamReadConstraints defaults (2.15 and later, as Kafka ships): deeper
// nesting or longer number literals fail the parse.
const (
	maxNestingDepth = 1000
	maxNumberLength = 1000
)

func readNode(d *json.Decoder, depth int) (*jsonNode, error) {
	if depth > maxNestingDepth {
		return nil, &JavaError{Class: "StreamConstraintsException", Message: fmt.Sprintf(
			"Document nesting depth (%d) exceeds the maximum allowed (%d, from `StreamReadConstraints.getMaxNestingDepth()`)", depth, maxNestingDepth)}
	}
	tok, err := d.Token()
	if errors.Is(err, io.EOF) {
		return nil, io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			return readArray(d, depth+1)
		}
		if t == '{' {
			return readObject(d, depth+1)
		}
		return nil, fmt.Errorf("unexpected %q", t)
	case nil:
		return &jsonNode{typ: nodeNull}, nil
	case bool:
		return &jsonNode{typ: nodeBoolean, boolean: t}, nil
	case string:
		return &jsonNode{typ: nodeString, text: t}, nil
	case json.Number:
		if len(t) > maxNumberLength {
			return nil, &JavaError{Class: "StreamConstraintsException", Message: fmt.Sprintf(
				"Number value length (%d) exceeds the maximum allowed (%d, from `StreamReadConstraints.getMaxNumberLength()`)", len(t), maxNumberLength)}
		}
		return numberNode(string(t))
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

func readArray(d *json.Decoder, depth int) (*jsonNode, error) {
	n := &jsonNode{typ: nodeArray}
	for d.More() {
		e, err := readNode(d, depth)
		if err != nil {
			return nil, err
		}
		n.elems = append(n.elems, e)
	}
	_, err := d.Token()
	return n, err
}

func readObject(d *json.Decoder, depth int) (*jsonNode, error) {
	n := &jsonNode{typ: nodeObject, fields: map[string]*jsonNode{}}
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		v, err := readNode(d, depth)
		if err != nil {
			return nil, err
		}
		if _, dup := n.fields[key]; !dup {
			n.keys = append(n.keys, key)
		}
		n.fields[key] = v
	}
	_, err := d.Token()
	return n, err
}

// numberNode makes an integral node for an integer literal and a DecimalNode for any
// other (new BigDecimal(literal): "1.50" keeps scale 2, "1e3" has scale -3).
func numberNode(lit string) (*jsonNode, error) {
	if !strings.ContainsAny(lit, ".eE") {
		i, ok := new(big.Int).SetString(lit, 10)
		if !ok {
			return nil, fmt.Errorf("bad number %q", lit)
		}
		return &jsonNode{typ: nodeNumber, text: lit, integer: i}, nil
	}
	d, err := parseBigDecimal(lit)
	if err != nil {
		return nil, err
	}
	return &jsonNode{typ: nodeNumber, text: lit, decimal: &d}, nil
}

// parseBigDecimal is new BigDecimal(String) for JSON number literals.
func parseBigDecimal(lit string) (Decimal, error) {
	mant, exp := lit, 0
	if i := strings.IndexAny(lit, "eE"); i >= 0 {
		e, err := strconv.Atoi(lit[i+1:])
		if err != nil {
			return Decimal{}, fmt.Errorf("bad number %q", lit)
		}
		mant, exp = lit[:i], e
	}
	scale := 0
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		scale = len(mant) - i - 1
		mant = mant[:i] + mant[i+1:]
	}
	u, ok := new(big.Int).SetString(mant, 10)
	if !ok {
		return Decimal{}, fmt.Errorf("bad number %q", lit)
	}
	if sc := int64(scale) - int64(exp); sc < math.MinInt32 || sc > math.MaxInt32 {
		return Decimal{}, fmt.Errorf("number %q: exponent overflow", lit)
	}
	return Decimal{Unscaled: u, Scale: int32(scale - exp)}, nil
}

func (n *jsonNode) isNull() bool { return n == nil || n.typ == nodeNull || n.typ == nodeMissing }

// isInt is JsonNode.isInt: an IntNode, an integer literal that fits an int.
func (n *jsonNode) isInt() bool {
	return n.integer != nil && n.integer.IsInt64() && n.integer.Int64() >= math.MinInt32 && n.integer.Int64() <= math.MaxInt32
}

func (n *jsonNode) isIntegral() bool { return n.integer != nil }

// get is ObjectNode.get: nil when absent (or when n is not an object).
func (n *jsonNode) get(key string) *jsonNode {
	if n.typ != nodeObject {
		return nil
	}
	return n.fields[key]
}

// has is JsonNode.has: the key is present, even with an explicit null.
func (n *jsonNode) has(key string) bool { return n.get(key) != nil }

// size is JsonNode.size: entries of a container, 0 for a value node.
func (n *jsonNode) size() int {
	switch n.typ {
	case nodeObject:
		return len(n.keys)
	case nodeArray:
		return len(n.elems)
	}
	return 0
}

// iterate is `for (JsonNode e : node)`: an array's elements, an object's values (in
// key order), nothing for a value node.
func (n *jsonNode) iterate() []*jsonNode {
	switch n.typ {
	case nodeArray:
		return n.elems
	case nodeObject:
		vs := make([]*jsonNode, len(n.keys))
		for i, k := range n.keys {
			vs[i] = n.fields[k]
		}
		return vs
	}
	return nil
}

// booleanValue, intValue, ... are the JsonNode accessors: for a node of another type
// they return false, 0, 0.0, BigDecimal.ZERO or null, as JsonNode's defaults do.
func (n *jsonNode) booleanValue() bool { return n.typ == nodeBoolean && n.boolean }

func (n *jsonNode) textValue() (string, bool) { return n.text, n.typ == nodeString }

// bigInteger is the number's BigInteger value (a decimal truncated toward zero, as
// BigDecimal.intValue/longValue do before keeping the low bits).
func (n *jsonNode) bigInteger() *big.Int {
	switch {
	case n.integer != nil:
		return n.integer
	case n.decimal != nil:
		return truncateDecimal(*n.decimal)
	}
	return new(big.Int)
}

// intValue is (int): the low 32 bits, as Java's narrowing conversions keep.
func (n *jsonNode) intValue() int32 { return int32(lowBits(n.bigInteger())) }

// longValue is (long): the low 64 bits.
func (n *jsonNode) longValue() int64 { return lowBits(n.bigInteger()) }

func (n *jsonNode) floatValue() float32 {
	if n.typ != nodeNumber {
		return 0
	}
	f, _ := strconv.ParseFloat(n.text, 32) // correctly rounded, ±Inf on overflow, like BigDecimal.floatValue
	return float32(f)
}

func (n *jsonNode) doubleValue() float64 {
	if n.typ != nodeNumber {
		return 0
	}
	f, _ := strconv.ParseFloat(n.text, 64)
	return f
}

func (n *jsonNode) decimalValue() Decimal {
	switch {
	case n.decimal != nil:
		return *n.decimal
	case n.integer != nil:
		return Decimal{Unscaled: n.integer, Scale: 0}
	}
	return Decimal{Unscaled: new(big.Int)}
}

// binaryValue is TextNode.binaryValue: the trimmed text decoded as Base64 with
// Jackson's default variant (MIME_NO_LINEFEEDS: standard alphabet, padding required);
// other nodes give null.
func (n *jsonNode) binaryValue() ([]byte, bool, error) {
	if n.typ != nodeString {
		return nil, false, nil
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(n.text))
	if err != nil {
		return nil, true, &JavaError{Class: "InvalidFormatException", Message: "Cannot access contents of TextNode as binary due to broken Base64 encoding: " + err.Error()}
	}
	return b, true, nil
}

// truncateDecimal is BigDecimal.toBigInteger for what lowBits keeps: a scale of -64
// or less leaves the low 64 bits zero (10^64 is a multiple of 2^64), and a scale past
// the digits leaves nothing, so those are 0 without computing a huge power.
func truncateDecimal(d Decimal) *big.Int {
	if d.Scale <= -64 || (d.Scale > 0 && int(d.Scale) > len(d.Unscaled.String())) {
		return new(big.Int)
	}
	u := new(big.Int).Set(d.Unscaled)
	if d.Scale <= 0 {
		return u.Mul(u, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-d.Scale)), nil))
	}
	return u.Quo(u, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(d.Scale)), nil))
}

// lowBits is the two's-complement low 64 bits of i (BigInteger.longValue).
func lowBits(i *big.Int) int64 {
	if i.IsInt64() {
		return i.Int64()
	}
	m := new(big.Int).And(i, new(big.Int).SetUint64(math.MaxUint64))
	return int64(m.Uint64())
}
