package codecs

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseReplayLine(t *testing.T) {
	cases := []struct {
		line string
		want ReplayLine
	}{
		{
			`{"system":"crm","partition":2,"offset":17,"key":{"id": 1},"value":{"op":"c","after":{"id":1,"s":"\u00e9"}},"headers":{"k":"v"}}`,
			ReplayLine{
				System: "crm", Partition: 2, Offset: 17, HasOffset: true,
				Key: []byte(`{"id":1}`), Value: []byte(`{"op":"c","after":{"id":1,"s":"\u00e9"}}`),
				Headers: map[string]string{"k": "v"},
			},
		},
		{`{"system":"billing","key":null,"value":null}`, ReplayLine{System: "billing"}},
		{`{"system":"billing"}`, ReplayLine{System: "billing"}},
		{`{"value":"not json {","system":"crm","offset":0}`, ReplayLine{System: "crm", HasOffset: true, Value: []byte("not json {")}},
		{`{"system":"crm","value":"","headers":null}`, ReplayLine{System: "crm", Value: []byte{}}},
		{`{"system":"crm","value":[1, 2],"key":"k\n"}`, ReplayLine{System: "crm", Key: []byte("k\n"), Value: []byte(`[1,2]`)}},
	}
	for _, c := range cases {
		got, err := ParseReplayLine([]byte(c.line))
		if err != nil {
			t.Errorf("%s: %v", c.line, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.line, got, c.want)
		}
	}
}

func TestParseReplayLineErrors(t *testing.T) {
	cases := []struct{ line, fragment string }{
		{``, "not JSON"},
		{`{"system":"crm"`, "not JSON"},
		{`[1]`, "got an array, want an object"},
		{`{"partition":1}`, `"system" is missing or empty`},
		{`{"system":""}`, `"system" is missing or empty`},
		{`{"system":1}`, `"system": is a number, want a string`},
		{`{"system":"crm","partition":-1}`, `"partition": -1 is not an integer in [0, 2147483647]`},
		{`{"system":"crm","partition":2147483648}`, `"partition"`},
		{`{"system":"crm","offset":1.5}`, `"offset": 1.5 is not an integer`},
		{`{"system":"crm","offset":"7"}`, `"offset": is a string, want an integer`},
		{`{"system":"crm","vaule":{}}`, `unknown field "vaule"`},
		{`{"system":"crm","value":1,"value":2}`, `field "value" appears twice`},
		{`{"system":"crm","headers":[]}`, `"headers": is an array`},
		{`{"system":"crm","headers":{"a":1}}`, `header "a" is a number, want a string`},
		{`{"system":"crm","value":NaN}`, "not JSON"},
	}
	for _, c := range cases {
		_, err := ParseReplayLine([]byte(c.line))
		wantPoison(t, err, "codecs: replay line: ", c.fragment)
	}
}

// TestReplayLineDecodes replays fixture values through replay lines: the value the
// line carries must decode as the fixture does.
func TestReplayLineDecodes(t *testing.T) {
	ev1 := mustDecode(t, Options{}, Message{Value: []byte(benchPayload)})
	l, err := ParseReplayLine([]byte(`{"system":"crm","offset":4,"value":` + benchPayload + `}`))
	if err != nil {
		t.Fatal(err)
	}
	ev2 := mustDecode(t, Options{}, l.Message("crm.public.contacts"))
	if eventString(&ev1) != eventString(&ev2) {
		t.Errorf("replayed event differs:\n%s\n%s", eventString(&ev1), eventString(&ev2))
	}
	poisonLine, err := ParseReplayLine([]byte(`{"system":"crm","value":"{\"op\":"}`))
	if err != nil {
		t.Fatal(err)
	}
	var ev Event
	if err := NewDecoder(Options{}).Decode(poisonLine.Message("t"), &ev); !errors.Is(err, ErrPoison) {
		t.Errorf("replayed poison decoded with %v", err)
	}
}
