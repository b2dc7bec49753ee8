package codecs_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/concord-sync/concord/codecs"
)

func mustType(t *testing.T, s string) codecs.ColumnType {
	t.Helper()
	ct, err := codecs.ParseColumnType(s)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

// TestTypedValuesRoundTrip encodes canonical values for typed columns and decodes them
// again as a Debezium event with that column's schema: the decoder, which follows
// Debezium's encodings, must give back the same canonical value.
func TestTypedValuesRoundTrip(t *testing.T) {
	tests := []struct {
		typ, canonical, wire string
	}{
		{"decimal(12,2)", `"12.3"`, `"BM4="`},
		{"decimal(12,2)", `"-1.28"`, `"gA=="`},
		{"decimal(12,2)", `"0"`, `"AA=="`},
		{"decimal(4)", `"-0.0001"`, `"/w=="`},
		{"decimal(2)", `12.5`, `"BOI="`},
		{"variable_scale_decimal", `"-12.345"`, `{"scale":3,"value":"z8c="}`},
		{"zoned_timestamp", `"2026-12-01T10:00:00.5Z"`, `"2026-12-01T10:00:00.5Z"`},
		{"timestamp", `"2026-12-01T10:00:00.123Z"`, `1796119200123`},
		{"micro_timestamp", `"1969-12-31T23:59:59.999999Z"`, `-1`},
		{"nano_timestamp", `"2026-12-01T10:00:00.000000001Z"`, `1796119200000000001`},
		{"date", `"2026-12-01"`, `20788`},
		{"date", `"1969-12-31"`, `-1`},
		{"int32", `42`, `42`},
		{"int16", `"-7"`, `-7`},
		{"double", `1.5e3`, `1.5e3`},
		{"boolean", `false`, `false`},
		{"string", `"a\"b"`, `"a\"b"`},
		{"json", `"{\"a\":[1,2]}"`, `"{\"a\":[1,2]}"`},
		{"bytes", `"AQID"`, `"AQID"`},
		{"decimal(12,2)", `null`, `null`},
	}
	for _, tc := range tests {
		t.Run(tc.typ+" "+tc.canonical, func(t *testing.T) {
			ct := mustType(t, tc.typ)
			wire, err := ct.AppendValue(nil, []byte(tc.canonical))
			if err != nil {
				t.Fatal(err)
			}
			if string(wire) != tc.wire {
				t.Errorf("wire form %s, want %s", wire, tc.wire)
			}
			got := decodeTyped(t, ct, wire)
			want := tc.canonical
			if tc.typ == "decimal(2)" || tc.typ == "double" || tc.typ == "int16" {
				want = map[string]string{"decimal(2)": `"12.5"`, "double": `1.5e3`, "int16": `-7`}[tc.typ]
			}
			if got != want {
				t.Errorf("decoded back to %s, want %s", got, want)
			}
		})
	}
}

// decodeTyped decodes wire as column v of an update event whose schema gives v the
// type ct, and returns v's canonical value.
func decodeTyped(t *testing.T, ct codecs.ColumnType, wire []byte) string {
	t.Helper()
	a := codecs.Apply{
		Key:    []codecs.TypedColumn{{Name: "id", Value: []byte(`1`)}},
		Fields: []codecs.TypedColumn{{Name: "v", Type: ct}},
	}
	// Encode the event with a placeholder value, then put the wire form in.
	enc := codecs.ApplyEncoder{Schema: true, Name: "t", Table: "x.public.t"}
	a.Fields[0].Value = []byte(`null`)
	value, _, err := enc.AppendValue(nil, &a)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte(strings.Replace(string(value), `"v":null`, `"v":`+string(wire), 1))
	var ev codecs.Event
	if err := codecs.NewDecoder(codecs.Options{}).Decode(codecs.Message{Value: msg}, &ev); err != nil {
		t.Fatalf("decode %s: %v", msg, err)
	}
	v, ok := ev.After.Get("v")
	if !ok {
		t.Fatalf("no column v in %s", msg)
	}
	return string(v)
}

func TestTypedValuesRefuseLoss(t *testing.T) {
	tests := []struct{ typ, canonical string }{
		{"decimal(12,2)", `"12.345"`},
		{"decimal(4,2)", `"123.4"`},
		{"decimal(2)", `"abc"`},
		{"decimal(2)", `1e99999999999`},
		{"int16", `40000`},
		{"int64", `1.5`},
		{"int32", `"x"`},
		{"boolean", `1`},
		{"timestamp", `"2026-12-01T10:00:00.0001Z"`},
		{"micro_timestamp", `"yesterday"`},
		{"nano_timestamp", `"2300-01-01T00:00:00Z"`},
		{"date", `"2026-12-01T10:00:00Z"`},
		{"json", `"not json"`},
		{"bytes", `"%%%"`},
		{"float", `1e999`},
	}
	for _, tc := range tests {
		t.Run(tc.typ+" "+tc.canonical, func(t *testing.T) {
			wire, err := mustType(t, tc.typ).AppendValue(nil, []byte(tc.canonical))
			if !errors.Is(err, codecs.ErrTypeMismatch) {
				t.Fatalf("got %s, %v; want a type mismatch", wire, err)
			}
		})
	}
}

func TestParseColumnType(t *testing.T) {
	for _, s := range []string{"decimal(12,2)", "decimal(3)", "json", "zoned_timestamp", "int64", "double", "string:io.debezium.data.Uuid", "variable_scale_decimal"} {
		ct := mustType(t, s)
		if back := mustType(t, ct.String()); back != ct {
			t.Errorf("%s: String %q parses to %+v, want %+v", s, ct.String(), back, ct)
		}
	}
	for _, s := range []string{"", "numeric", "decimal(x)", "decimal(2,3)", "decimal(-1)", "int9:x"} {
		if _, err := codecs.ParseColumnType(s); err == nil {
			t.Errorf("%q parsed", s)
		}
	}
}

// TestVariableScaleForConfluent: a column of no fixed scale goes to the Confluent
// sink, which cannot bind a VariableScaleDecimal struct, as a Decimal of each value's
// own scale, its schema saying that scale.
func TestVariableScaleForConfluent(t *testing.T) {
	ct := mustType(t, "variable_scale_decimal").ForConfluent()
	a := codecs.Apply{
		Key:    []codecs.TypedColumn{{Name: "id", Value: []byte(`1`)}},
		Fields: []codecs.TypedColumn{{Name: "amount", Value: []byte(`"-12.345"`), Type: ct}},
	}
	v, _, err := (codecs.ApplyEncoder{Format: codecs.FormatFlat, Schema: true}).AppendValue(nil, &a)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"3"}`, `"amount":"z8c="`} {
		if !strings.Contains(string(v), want) {
			t.Errorf("value lacks %s: %s", want, v)
		}
	}
	if got := decodeTypedFlat(t, v); got != `"-12.345"` {
		t.Errorf("decoded back to %s", got)
	}
}

func decodeTypedFlat(t *testing.T, value []byte) string {
	t.Helper()
	var ev codecs.Event
	if err := codecs.NewDecoder(codecs.Options{Unwrapped: true}).Decode(codecs.Message{Value: value}, &ev); err != nil {
		t.Fatal(err)
	}
	v, _ := ev.After.Get("amount")
	return string(v)
}

// TestJSONDocumentsCompareByMeaning: a json/jsonb column's documents decode to one
// form, whatever order, spacing or duplicate keys PostgreSQL or a writer gave them.
func TestJSONDocumentsCompareByMeaning(t *testing.T) {
	ct := mustType(t, "json")
	want := decodeTyped(t, ct, []byte(`"{\"a\":3,\"b\":[{\"c\":1,\"d\":2}]}"`))
	for _, wire := range []string{
		`"{\"b\": [{\"d\": 2, \"c\": 1}], \"a\": 3}"`,
		`"{\"a\":1,\"b\":[{\"c\":1,\"d\":2}],\"a\":3}"`, // the last duplicate wins, as in jsonb
	} {
		if got := decodeTyped(t, ct, []byte(wire)); got != want {
			t.Errorf("%s decodes to %s, want %s", wire, got, want)
		}
	}
}
