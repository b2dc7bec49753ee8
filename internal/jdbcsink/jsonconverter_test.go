package jdbcsink_test

import (
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/concord-sync/concord/internal/jdbcsink"
)

// show renders a converted value with its Go type, so each case pins down the Java
// class JsonConverter produces as well as the value.
func show(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case *jdbcsink.Struct:
		parts := make([]string, len(x.Values))
		for i, f := range x.Schema.Fields {
			parts[i] = f.Name + "=" + show(x.Values[i])
		}
		return "Struct{" + strings.Join(parts, ",") + "}"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = show(e)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case []jdbcsink.MapEntry:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = show(e.Key) + ":" + show(e.Value)
		}
		return "{" + strings.Join(parts, ",") + "}"
	case jdbcsink.Decimal:
		return "Decimal(" + x.String() + ")"
	case time.Time:
		return "Date(" + x.UTC().Format(time.RFC3339Nano) + ")"
	case []byte:
		return fmt.Sprintf("bytes%v", x)
	case string:
		return fmt.Sprintf("%q", x)
	}
	return fmt.Sprintf("%T(%v)", v, v)
}

func TestJsonConverterWithSchemas(t *testing.T) {
	env := func(schema, payload string) string { return `{"schema":` + schema + `,"payload":` + payload + `}` }
	cases := []struct {
		name, in, want string
	}{
		{"null bytes are a null schema and value", "", "null"},
		{"int32", env(`{"type":"int32"}`, `42`), "int32(42)"},
		{"int8 keeps the low bits, as Java's (byte) cast", env(`{"type":"int8"}`, `300`), "int8(44)"},
		{"int32 of a fraction truncates", env(`{"type":"int32"}`, `2.9`), "int32(2)"},
		{"int32 of a string is 0 (JsonNode.intValue)", env(`{"type":"int32"}`, `"7"`), "int32(0)"},
		{"int64 of a huge integer keeps the low 64 bits", env(`{"type":"int64"}`, `18446744073709551617`), "int64(1)"},
		{"boolean of a number is false", env(`{"type":"boolean"}`, `1`), "bool(false)"},
		{"float", env(`{"type":"float"}`, `0.1`), "float32(0.1)"},
		{"double", env(`{"type":"double"}`, `1e300`), "float64(1e+300)"},
		{"string", env(`{"type":"string"}`, `"x"`), `"x"`},
		{"string of a number is null (textValue)", env(`{"type":"string"}`, `12`), "null"},
		{"string of an object is null", env(`{"type":"string","optional":true}`, `{"a":1}`), "null"},
		{"bytes from Base64", env(`{"type":"bytes"}`, `"AQID"`), "bytes[1 2 3]"},
		{"bytes of a number is null", env(`{"type":"bytes"}`, `5`), "null"},
		{"Decimal from Base64 with the schema's scale", env(`{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"}}`, `"AeJA"`), "Decimal(1234.56)"},
		{"negative Decimal", env(`{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"}}`, `"/w=="`), "Decimal(-0.01)"},
		{"Decimal from a JSON number keeps the number's own scale", env(`{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"}}`, `12.5`), "Decimal(12.5)"},
		{"Decimal in exponent form", env(`{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"0"}}`, `1E+3`), "Decimal(1E+3)"},
		{"Date from epoch days", env(`{"type":"int32","name":"org.apache.kafka.connect.data.Date"}`, `19000`), "Date(2022-01-08T00:00:00Z)"},
		{"Time from millis of the day", env(`{"type":"int32","name":"org.apache.kafka.connect.data.Time"}`, `3600001`), "Date(1970-01-01T01:00:00.001Z)"},
		{"Timestamp from epoch millis", env(`{"type":"int64","name":"org.apache.kafka.connect.data.Timestamp"}`, `1709296496789`), "Date(2024-03-01T12:34:56.789Z)"},
		{"Debezium's names are not Connect's: plain values", env(`{"type":"int64","name":"io.debezium.time.MicroTimestamp"}`, `1709296496123456`), "int64(1709296496123456)"},
		{"optional null", env(`{"type":"string","optional":true}`, `null`), "null"},
		{"null replaced by the default", env(`{"type":"int32","optional":true,"default":5}`, `null`), "int32(5)"},
		{"struct: absent fields are null, extra ones ignored", env(`{"type":"struct","fields":[{"field":"a","type":"int32"},{"field":"b","type":"string","optional":true}]}`, `{"a":1,"c":2}`), `Struct{a=int32(1),b=null}`},
		{"array", env(`{"type":"array","items":{"type":"int16"}}`, `[1,2]`), "[int16(1),int16(2)]"},
		{"map with string keys is an object", env(`{"type":"map","keys":{"type":"string"},"values":{"type":"int32"}}`, `{"k":1}`), `{"k":int32(1)}`},
		{"map with other keys is pairs", env(`{"type":"map","keys":{"type":"int32"},"values":{"type":"string"}}`, `[[1,"a"]]`), `{int32(1):"a"}`},
		{"schema null: schemaless payload", env(`null`, `{"a":1}`), `{"a":int64(1)}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var in []byte
			if c.in != "" {
				in = []byte(c.in)
			}
			sv, err := jdbcsink.ToConnectData("topic", in, true)
			if err != nil {
				t.Fatal(err)
			}
			if got := show(sv.Value); got != c.want {
				t.Errorf("value = %s; want %s", got, c.want)
			}
		})
	}
}

func TestJsonConverterSchemaless(t *testing.T) {
	sv, err := jdbcsink.ToConnectData("topic", []byte(`{"id":1,"price":2.50,"tags":["a",null],"ok":true,"none":null,"big":123456789012}`), false)
	if err != nil {
		t.Fatal(err)
	}
	if sv.Schema != nil {
		t.Errorf("schemaless schema = %v; want null", sv.Schema)
	}
	want := `{"id":int64(1),"price":float64(2.5),"tags":["a",null],"ok":bool(true),"none":null,"big":int64(123456789012)}`
	if got := show(sv.Value); got != want {
		t.Errorf("value = %s; want %s", got, want)
	}
	// An envelope is just data without schemas.
	sv, err = jdbcsink.ToConnectData("topic", []byte(`{"schema":{"type":"int32"},"payload":1}`), false)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := show(sv.Value), `{"schema":{"type":"int32"},"payload":int64(1)}`; got != want {
		t.Errorf("value = %s; want %s", got, want)
	}
}

func TestJsonConverterErrors(t *testing.T) {
	const envelope = `JsonConverter with schemas.enable requires "schema" and "payload" fields and may not contain additional fields. If you are trying to deserialize plain JSON data, set schemas.enable=false in your converter configuration.`
	cases := []struct{ name, in, want string }{
		{"plain object", `{"id":1}`, envelope},
		{"an additional field", `{"schema":{"type":"int32"},"payload":1,"x":0}`, envelope},
		{"no payload", `{"schema":{"type":"int32"}}`, envelope},
		{"an array", `[1]`, envelope},
		{"empty input", ` `, envelope},
		{"not JSON", `{`, "Converting byte[] to Kafka Connect data failed due to serialization error: "},
		{"schema without type", `{"schema":{},"payload":1}`, "Schema must contain 'type' field"},
		{"unknown type", `{"schema":{"type":"uuid"},"payload":1}`, "Unknown schema type: uuid"},
		{"required null", `{"schema":{"type":"int32"},"payload":null}`, "Invalid null value for required INT32 field"},
		{"required string field given an object", `{"schema":{"type":"struct","fields":[{"field":"s","type":"string"}]},"payload":{"s":{}}}`, `Invalid value: null used for required field: "s", schema type: STRING`},
		{"struct of a non-object", `{"schema":{"type":"struct","fields":[]},"payload":1}`, "Structs should be encoded as JSON objects, but found NUMBER"},
		{"broken Base64", `{"schema":{"type":"bytes"},"payload":"@@"}`, "Invalid bytes field"},
		{"Decimal without scale", `{"schema":{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{}},"payload":"AQ=="}`, "Invalid bytes for Decimal field: Invalid Decimal schema: scale parameter not found."},
		{"Decimal of a boolean", `{"schema":{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"0"}},"payload":true}`, "Invalid type for Decimal, underlying representation should be numeric or bytes but was BOOLEAN"},
		{"Date of a string", `{"schema":{"type":"int32","name":"org.apache.kafka.connect.data.Date"},"payload":"2024-01-01"}`, "Invalid type for Date, underlying representation should be integer but was STRING"},
		{"Timestamp of a fraction", `{"schema":{"type":"int64","name":"org.apache.kafka.connect.data.Timestamp"},"payload":1.5}`, "Invalid type for Timestamp, underlying representation should be integral but was NUMBER"},
		{"Time past the day", `{"schema":{"type":"int32","name":"org.apache.kafka.connect.data.Time"},"payload":86400001}`, "Time values must use number of milliseconds greater than 0 and less than 86400000"},
		{"parameters not strings", `{"schema":{"type":"int32","parameters":{"a":1}},"payload":1}`, "Schema parameters must have string values."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := jdbcsink.ToConnectData("topic", []byte(c.in), true)
			if err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("error = %v; want it to start with %q", err, c.want)
			}
		})
	}
}

func TestDecimalStringIsBigDecimalToString(t *testing.T) {
	cases := []struct {
		unscaled int64
		scale    int32
		want     string
	}{
		{123450, 2, "1234.50"},
		{-1, 2, "-0.01"},
		{5, 0, "5"},
		{1, 7, "1E-7"},
		{1, 6, "0.000001"},
		{123, -2, "1.23E+4"},
		{10, -1, "1.0E+2"},
	}
	for _, c := range cases {
		d := jdbcsink.Decimal{Unscaled: big.NewInt(c.unscaled), Scale: c.scale}
		if got := d.String(); got != c.want {
			t.Errorf("BigDecimal(%d, scale %d) = %s; want %s", c.unscaled, c.scale, got, c.want)
		}
	}
}

// FuzzToConnectData: the converter never panics, with or without schemas.
func FuzzToConnectData(f *testing.F) {
	for _, s := range []string{
		`{"schema":{"type":"struct","fields":[{"field":"a","type":"int32"}]},"payload":{"a":1}}`,
		`{"schema":{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"}},"payload":"AeJA"}`,
		`{"schema":{"type":"map","keys":{"type":"int32"},"values":{"type":"string"}},"payload":[[1,"a"]]}`,
		`{"schema":{"type":"array","items":{"type":"int8","default":1}},"payload":[null,2]}`,
		`[1,{"a":null}]`, ``, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, schemas := range []bool{true, false} {
			_, _ = jdbcsink.ToConnectData("t", b, schemas)
		}
	})
}
