package codecs

import (
	"math/big"
	"strings"
	"testing"
	"time"
)

// TestKeyBelongsToTheRow: a key of another row is poison, but the keys of valid
// messages are not, however key and value are encoded.
func TestKeyBelongsToTheRow(t *testing.T) {
	const keySchema = `{"schema":{"type":"struct","fields":[{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"},"field":"id"}]},"payload":{"id":"BNI="}}`
	const rowSchema = `{"type":"struct","fields":[{"type":"struct","field":"after","fields":[{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"},"field":"id"},{"type":"string","optional":true,"field":"name"}]}]}`
	valid := []struct{ name, key, value string }{
		{"same key", `{"id":1}`, `{"op":"c","after":{"id":1,"name":"a"}}`},
		{"delete by before image", `{"id":1}`, `{"op":"d","before":{"id":1,"name":null}}`},
		{"key and row both schema'd", keySchema, `{"schema":` + rowSchema + `,"payload":{"op":"c","after":{"id":"BNI=","name":"a"}}}`},
		// key.converter without schemas, value.converter with: the key's Decimal stays
		// base64 text while the row's is decoded, so the values are not compared.
		{"schemaless key, schema'd row", `{"id":"BNI="}`, `{"schema":` + rowSchema + `,"payload":{"op":"c","after":{"id":"BNI=","name":"a"}}}`},
		{"a null key column", `{"id":null}`, `{"op":"c","after":{"id":1}}`},
		{"ByLogicalTableRouter's key field", `{"id":1,"__dbz__physicalTableIdentifier":"db.t1"}`, `{"op":"c","after":{"id":1}}`},
		{"no row to compare", `{"id":1}`, `{"op":"t","source":{}}`},
		// column.exclude.list may leave the primary key out of the value; concord's
		// record key need not be the connector's key either.
		{"key column not in the row", `{"id":1}`, `{"op":"c","after":{"name":"a"}}`},
		{"key of other columns than the row's", `{"order_id":7}`, `{"op":"c","after":{"id":1}}`},
	}
	for _, c := range valid {
		var ev Event
		if err := NewDecoder(Options{}).Decode(Message{Key: []byte(c.key), Value: []byte(c.value)}, &ev); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	ev := mustDecode(t, Options{}, Message{Key: []byte(`{"id":"BNI="}`), Value: []byte(`{"schema":` + rowSchema + `,"payload":{"op":"c","after":{"id":"BNI=","name":"a"}}}`)})
	wantColumn(t, ev.After, "id", `"12.34"`)
	wantColumn(t, ev.Key, "id", `"BNI="`)

	poisoned := []struct{ name, key, value, want string }{
		{"another row", `{"id":2}`, `{"op":"u","after":{"id":1}}`, `the message key says id is 2, the row says 1`},
		{"another row's delete", `{"id":2}`, `{"op":"d","before":{"id":1}}`, `the row says 1`},
		{"unwrapped", `{"id":2}`, `{"id":1,"__op":"u"}`, `the message key says id is 2`},
	}
	for _, c := range poisoned {
		opts := Options{Unwrapped: c.name == "unwrapped"}
		var ev Event
		err := NewDecoder(opts).Decode(Message{Key: []byte(c.key), Value: []byte(c.value)}, &ev)
		wantPoison(t, err, c.want)
	}
}

// TestSchemaTypesAreChecked: a payload must have the types its JsonConverter schema
// gives, in the forms JsonConverter writes them.
func TestSchemaTypesAreChecked(t *testing.T) {
	schema := func(typ string) string {
		return `{"type":"struct","fields":[{"type":"struct","field":"after","fields":[{"type":"` + typ + `","optional":true,"field":"v"}]}]}`
	}
	for _, c := range []struct{ typ, value string }{
		{"int8", "-128"},
		{"int16", "32767"},
		{"int32", "-2147483648"},
		{"int64", "9223372036854775807"},
		{"float", `3.4e38`},
		{"double", "1e308"},
		{"double", `"NaN"`},
		{"double", `"-Infinity"`},
		{"double", "5"},
		{"boolean", "false"},
		{"string", `"x"`},
		{"bytes", `"AAE="`},
		{"struct", `{"a":1}`},
		{"array", `[1,2]`},
		{"map", `{"k":1}`},
		{"map", `[[1,2]]`},
		{"int32", "null"},
		{"some_future_type", `"x"`},
	} {
		value := `{"schema":` + schema(c.typ) + `,"payload":{"op":"c","after":{"v":` + c.value + `}}}`
		if _, err := decodeValue(t, Options{}, []byte(value)); err != nil {
			t.Errorf("%s %s: %v", c.typ, c.value, err)
		}
	}
	for _, c := range []struct{ typ, value, want string }{
		{"int8", "128", "128 is beyond int8"},
		{"int16", "-32769", "-32769 is beyond int16"},
		{"int64", "-9223372036854775809", "-9223372036854775809 is beyond int64"},
		{"int32", "1e3", "1e3 is not an integer, but the schema says int32"},
		{"float", "1e39", "1e39 is beyond float"},
		{"double", "1e-400", "1e-400 is beyond double"},
		{"double", `"1.5"`, "the schema says double, the value is a string"},
		{"boolean", "1", "the schema says boolean, the value is a number"},
		{"bytes", "[1]", "the schema says bytes, the value is an array"},
		{"struct", `"{}"`, "the schema says struct, the value is a string"},
		{"array", `{}`, "the schema says array, the value is an object"},
	} {
		value := `{"schema":` + schema(c.typ) + `,"payload":{"op":"c","after":{"v":` + c.value + `}}}`
		_, err := decodeValue(t, Options{}, []byte(value))
		wantPoison(t, err, `column "v": `+c.want)
	}
	// A schema the decoder does not read in full (a field without a type, here the
	// PostgreSQL documentation's key shape) does not make missing columns poison.
	partial := `{"schema":{"type":"struct","fields":[{"type":"struct","field":"after","fields":[{"field":"v"}]}]},"payload":{"op":"c","after":{"v":1,"w":2}}}`
	if _, err := decodeValue(t, Options{}, []byte(partial)); err != nil {
		t.Errorf("partial schema: %v", err)
	}
}

// TestTextMustBeUnicode: escapes of surrogate pairs and escaped backslashes are
// fine; lone surrogates are not.
func TestTextMustBeUnicode(t *testing.T) {
	for _, s := range []string{`"\ud83d\ude00"`, `"\\ud800"`, `"\\\\\ud83d\ude00"`, `"é"`} {
		ev, err := decodeValue(t, Options{}, []byte(`{"op":"c","after":{"v":`+s+`}}`))
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		if v, _ := ev.After.Get("v"); strings.Contains(string(v), "\uFFFD") {
			t.Errorf("%s decoded as %s", s, v)
		}
	}
	for _, s := range []string{`"\ud800"`, `"\udc00"`, `"\ud800\u0041"`, `"x\\\ud800"`} {
		_, err := decodeValue(t, Options{}, []byte(`{"op":"c","after":{"v":`+s+`}}`))
		wantPoison(t, err, "a lone UTF-16 surrogate escape")
	}
	if _, err := Canonicalize([]byte("\"\xff\"")); err == nil {
		t.Error("Canonicalize took invalid UTF-8")
	}
}

// TestMessageSizeLimit: the default bound, another one, and none.
func TestMessageSizeLimit(t *testing.T) {
	big := []byte(`{"op":"c","after":{"v":"` + strings.Repeat("x", DefaultMaxMessageBytes) + `"}}`)
	_, err := decodeValue(t, Options{}, big)
	wantPoison(t, err, "codecs: message: ", "more than the 1048576 concord takes")
	_, err = decodeValue(t, Options{MaxMessageBytes: 16}, []byte(`{"op":"c","after":{"v":1}}`))
	wantPoison(t, err, "more than the 16 concord takes")
	if _, err := decodeValue(t, Options{MaxMessageBytes: -1}, big); err != nil {
		t.Errorf("no bound: %v", err)
	}
}

// TestUnwrappedMetadataOnce: a source field may come under either of its
// spellings (the first is kept), but no metadata column twice.
func TestUnwrappedMetadataOnce(t *testing.T) {
	ev, err := decodeValue(t, Options{Unwrapped: true}, []byte(`{"a":1,"__source_lsn":7,"__lsn":8,"__table":"t"}`))
	if err != nil || ev.Position != (Position{Kind: PosPostgres, A: 7}) {
		t.Errorf("got %v, %+v", err, ev.Position)
	}
	for _, value := range []string{`{"a":1,"__deleted":true,"__deleted":false}`, `{"a":1,"__table":"t","__table":"u"}`, `{"a":1,"__source_lsn":7,"__source_lsn":8}`} {
		_, err := decodeValue(t, Options{Unwrapped: true}, []byte(value))
		wantPoison(t, err, "appears twice")
	}
}

// TestInferTypeKeepsNumbersExact: an untyped number is typed as what holds it
// exactly, and encodes without loss.
func TestInferTypeKeepsNumbersExact(t *testing.T) {
	for _, c := range []struct {
		value string
		want  ColumnType
	}{
		{"42", ColumnType{Type: TypeInt64}},
		{"-9223372036854775808", ColumnType{Type: TypeInt64}},
		{"9223372036854775808", exactDecimal},
		{"123456789012345678901234567890", exactDecimal},
		{"1.5", ColumnType{Type: TypeFloat64}},
		{"0.30000000000000004", ColumnType{Type: TypeFloat64}},
		{"1.7976931348623157e308", ColumnType{Type: TypeFloat64}},
		{"5e-324", ColumnType{Type: TypeFloat64}},
		{"0.0", ColumnType{Type: TypeFloat64}},
		{"0.1000000000000000000000001", exactDecimal},
		{"4.9e-324", exactDecimal},
		{"1e400", exactDecimal},
		{"1e-400", exactDecimal},
	} {
		if got := InferType([]byte(c.value)); got != c.want {
			t.Errorf("InferType(%s) = %v, want %v", c.value, got, c.want)
		}
	}
	got, err := ColumnType{}.AppendValue(nil, []byte("123456789012345678901234567890"))
	if err != nil || string(got) != `"AY7pD/bDc+DuTj8K0g=="` {
		t.Errorf("untyped 30-digit integer: %s, %v", got, err)
	}
}

// TestDecimalFromText: the text-based reading of a decimal agrees with exact
// rational arithmetic, and a hostile exponent costs little.
func TestDecimalFromText(t *testing.T) {
	typ := ColumnType{Type: TypeBytes, Name: NameDecimal, Scale: ScaleOfValue}
	for _, v := range []string{
		"0", "-0", "0.000", "12.50", "-12.5", "1e3", "1.25E+2", "-1.25e-2", "100", "0.001", "123.000e-3",
		"5e-5", "9.99e1", `"7.10"`, "1e-300", "12345678901234567890.0987654321",
	} {
		unscaled, scale, err := typ.decimal([]byte(v))
		if err != nil {
			t.Errorf("%s: %v", v, err)
			continue
		}
		want, _ := new(big.Rat).SetString(strings.Trim(v, `"`))
		got := new(big.Rat).SetFrac(unscaled, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil))
		if got.Cmp(want) != 0 {
			t.Errorf("%s: %v × 10^-%d", v, unscaled, scale)
		}
		if scale > 0 && new(big.Int).Mod(unscaled, big.NewInt(10)).Sign() == 0 {
			t.Errorf("%s: scale %d is not the fewest digits (%v)", v, scale, unscaled)
		}
	}
	start := time.Now()
	if _, _, err := typ.decimal([]byte("1e-32768")); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("1e-32768 took %v", d)
	}
}

// TestParseErrorsSayWhere: the reasons of unparsable messages name what is wrong.
func TestParseErrorsSayWhere(t *testing.T) {
	for _, c := range []struct{ value, want string }{
		{`{"op":"c","after":{"a":"x`, "not JSON: truncated: it ends after 25 bytes in string"},
		{`{"op":"c","after":{"a":1}`, "not JSON: truncated"},
		{`{"op":"c","after":{"a":tru}}`, "not JSON at byte 23"},
		{`{"op":"c"} {}`, "not JSON: more after the end of the JSON document"},
		{strings.Repeat("[", 400) + strings.Repeat("]", 400), "nested more than 300 levels deep"},
		{"\x00\x00\x00\x01\x00\x02", "Confluent Schema Registry framing (magic byte 0, schema id 256)"},
		{"\xef\xbb\xbf{}", "byte order mark"},
		{"\r\n", "only white space"},
	} {
		_, err := decodeValue(t, Options{}, []byte(c.value))
		wantPoison(t, err, c.want)
		if len(err.Error()) > 400 {
			t.Errorf("a reason of %d bytes: %.100s…", len(err.Error()), err)
		}
	}
}
