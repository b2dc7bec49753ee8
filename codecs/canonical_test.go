package codecs

import (
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"
)

func TestCanonicalize(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{ "b" : [1, 2.50, "x\u0041"], "a": null }`, `{"b":[1,2.50,"xA"],"a":null}`},
		{`"caf\u00e9 \/ \t"`, `"café / \t"`},
		{`"\u0001\u001f\u007f"`, `"\u0001\u001f` + "\x7f" + `"`},
		{`"\u2028 <&>"`, "\"\u2028 <&>\""},
		{`"\ud83d\ude00"`, `"😀"`},
		{`1E+3`, `1E+3`},
		{`-0`, `-0`},
		{`[true,false,{}]`, `[true,false,{}]`},
		{`{"\n":"\""}`, `{"\n":"\""}`},
	}
	for _, c := range cases {
		got, err := Canonicalize([]byte(c.in))
		if err != nil || string(got) != c.want {
			t.Errorf("Canonicalize(%s) = %s, %v; want %s", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{``, `NaN`, `"\x"`, "\"\x01\"", `{"a":1,}`, `01`} {
		_, err := Canonicalize([]byte(bad))
		if !errors.Is(err, ErrPoison) {
			t.Errorf("Canonicalize(%q) = %v, want a poison error", bad, err)
		}
	}
}

func TestAppendJSONString(t *testing.T) {
	cases := []struct{ in, want string }{
		{"plain", `"plain"`},
		{"q\"b\\s", `"q\"b\\s"`},
		{"\b\f\n\r\t\x00\x1f", `"\b\f\n\r\t\u0000\u001f"`},
		{"bad \xff utf8 \xe2\x82", "\"bad \uFFFD utf8 \uFFFD\uFFFD\""},
		{"ünïcödé ✓", `"ünïcödé ✓"`},
	}
	for _, c := range cases {
		got := appendJSONString(nil, []byte(c.in))
		if string(got) != c.want {
			t.Errorf("appendJSONString(%q) = %s, want %s", c.in, got, c.want)
		}
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Errorf("%s is not JSON: %v", got, err)
		}
		if utf8.ValidString(c.in) && back != c.in {
			t.Errorf("round trip of %q gave %q", c.in, back)
		}
	}
}

func TestIsJSONNumber(t *testing.T) {
	for _, ok := range []string{"0", "-0", "1", "-12", "1.5", "0.001", "1e5", "1E+5", "2.5e-3", "9223372036854775808"} {
		if !isJSONNumber([]byte(ok)) {
			t.Errorf("isJSONNumber(%q) = false", ok)
		}
	}
	for _, bad := range []string{"", "-", "01", "+1", ".5", "1.", "1e", "1e+", "NaN", "inf", "1-2", "1.2.3", "0x10"} {
		if isJSONNumber([]byte(bad)) {
			t.Errorf("isJSONNumber(%q) = true", bad)
		}
	}
}

func TestAppendScaled(t *testing.T) {
	cases := []struct {
		neg    bool
		digits string
		scale  int
		want   string
	}{
		{false, "1250", 2, `"12.5"`},
		{false, "123400", 4, `"12.34"`},
		{false, "1200", 2, `"12"`},
		{true, "1", 3, `"-0.001"`},
		{true, "100", 3, `"-0.1"`},
		{false, "0", 2, `"0"`},
		{true, "0", 2, `"0"`},
		{false, "000", 2, `"0"`},
		{false, "0005", 1, `"0.5"`},
		{false, "12", -2, `"1200"`},
		{false, "0", -2, `"0"`},
		{false, "123", 3, `"0.123"`},
	}
	for _, c := range cases {
		got, err := appendScaled(nil, c.neg, []byte(c.digits), c.scale)
		if err != nil || string(got) != c.want {
			t.Errorf("appendScaled(%v, %s, %d) = %s, %v; want %s", c.neg, c.digits, c.scale, got, err, c.want)
		}
	}
}

func TestParseInt(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"-9223372036854775808", -9223372036854775808, true},
		{"9223372036854775807", 9223372036854775807, true},
		{"9223372036854775808", 0, false},
		{"-9223372036854775809", 0, false},
		{"", 0, false},
		{"-", 0, false},
		{"1.0", 0, false},
		{"+1", 0, false},
		{"1465491411815437158", 1465491411815437158, true},
	}
	for _, c := range cases {
		got, err := parseInt([]byte(c.in))
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parseInt(%q) = %d, %v", c.in, got, err)
		}
	}
}

// FuzzAppendJSONText: text given as strings is escaped exactly as the same bytes are,
// a name and an ASCII suffix as their concatenation.
func FuzzAppendJSONText(f *testing.F) {
	for _, s := range []string{"", "billing.public.customers", "a\"b\\c\n\x01", "caf\xc3\xa9", "bad\xc3", "\xff\xfe", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := appendJSONText(nil, s), appendJSONString(nil, []byte(s)); string(got) != string(want) {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
		if got, want := appendJSONText(nil, s, ".Envelope"), appendJSONString(nil, []byte(s+".Envelope")); string(got) != string(want) {
			t.Errorf("%q with a suffix: got %s, want %s", s, got, want)
		}
	})
}

// TestApplyEncoderAllocs: encoding an apply into a buffer with room allocates
// nothing, however long the table and column names (a name copied to bytes or
// joined to a suffix would be, past 32 bytes). (Decimals still do: big.Int.)
func TestApplyEncoderAllocs(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("allocation counts are not meaningful under -race")
	}
	a := &Apply{
		Key: []TypedColumn{{Name: "customer_identifier_in_the_billing_system", Value: []byte(`"r-1"`)}},
		Fields: []TypedColumn{
			{Name: "a_rather_long_column_name_of_forty_chars", Value: []byte(`"x"`)},
			{Name: "visits", Value: []byte(`125`), Type: ColumnType{Type: TypeInt64}},
			{Name: "seen_at", Value: []byte(`"2024-01-02T03:04:05.123456Z"`), Type: ColumnType{Type: TypeInt64, Name: NameMicroTimestamp}},
		},
		TsMs: 1,
	}
	buf := make([]byte, 0, 8192)
	for _, format := range []string{FormatDebezium, FormatFlat} {
		e := ApplyEncoder{Format: format, Schema: true, Name: "a-concord-deployment-with-a-long-name", Table: "billing.public.customers_with_a_long_name"}
		allocs := testing.AllocsPerRun(100, func() {
			var err error
			if buf, err = e.AppendKey(buf[:0], a); err != nil {
				t.Fatal(err)
			}
			if buf, _, err = e.AppendValue(buf[:0], a); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > 0 {
			t.Errorf("%s: %.1f allocations per apply, want none", format, allocs)
		}
		// Into no buffer at all, key and value are each made in one allocation: the
		// buffer is sized once (sizeHint), not grown step by step.
		allocs = testing.AllocsPerRun(100, func() {
			if _, err := e.AppendKey(nil, a); err != nil {
				t.Fatal(err)
			}
			if _, _, err := e.AppendValue(nil, a); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > 2 {
			t.Errorf("%s: %.1f allocations per apply into a nil buffer, want 2", format, allocs)
		}
	}
}
