package codecs_test

import (
	"errors"
	"fmt"

	"github.com/concord-sync/concord/codecs"
)

func ExampleDecoder_Decode() {
	d := codecs.NewDecoder(codecs.Options{})
	m := codecs.Message{
		Topic: "crm.public.contacts", Partition: 0, Offset: 17,
		Key:   []byte(`{"id":7}`),
		Value: []byte(`{"before":null,"after":{"id":7,"email":"ada@example.com"},"source":{"connector":"postgresql","ts_ms":1718280000123,"lsn":22910504},"op":"c"}`),
	}
	var ev codecs.Event
	if err := d.Decode(m, &ev); err != nil {
		fmt.Println(err)
		return
	}
	email, _ := ev.After.Get("email")
	fmt.Println(ev.Kind, ev.Op, ev.Position, ev.TsMs, string(email))

	m.Value = []byte(`{"id":7,"email":"ada@example.com"}`)
	err := d.Decode(m, &ev)
	fmt.Println(errors.Is(err, codecs.ErrPoison))
	fmt.Println(err)
	// Output:
	// change c 1:22910504:0:0 1718280000123 "ada@example.com"
	// true
	// codecs: value: no Debezium envelope ("op" missing); if the connector uses ExtractNewRecordState set envelope: unwrapped
}

func ExampleOptions_unwrapped() {
	d := codecs.NewDecoder(codecs.Options{Unwrapped: true})
	var ev codecs.Event
	err := d.Decode(codecs.Message{Value: []byte(`{"id":7,"balance":"12.50","__op":"d","__deleted":"true","__lsn":33}`)}, &ev)
	fmt.Println(ev.Kind, ev.Op, ev.Position, len(ev.Before), ev.After == nil, err)
	// Output: change d 1:33:0:0 2 true <nil>
}

func ExampleParseReplayLine() {
	l, err := codecs.ParseReplayLine([]byte(`{"system":"crm","offset":3,"key":{"id":7},"value":null}`))
	fmt.Printf("%s %d %s %v %v\n", l.System, l.Offset, l.Key, l.Value == nil, err)
	// Output: crm 3 {"id":7} true <nil>
}
