package state

import (
	"errors"
	"reflect"
	"testing"
)

func sampleOutbox() Outbox {
	return Outbox{
		Seq: 1<<40 + 3, Epoch: 7,
		Offsets: map[string]int64{"a": 0, "b": 1 << 50, "c": -1},
		Messages: []Message{
			{Topic: "t", Partition: 3, Key: []byte("k"), Value: []byte("v"), Headers: []Header{{Key: "h", Value: []byte{}}, {Key: "n"}}},
			{Topic: "u", Key: nil, Value: nil},
			{Topic: "w", Key: []byte{}, Value: []byte{}},
		},
	}
}

func TestOutboxRoundTrip(t *testing.T) {
	want := sampleOutbox()
	got, err := unmarshalOutbox(string(want.marshal()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %#v\nwant %#v", got, want)
	}
	// nil and empty stay apart: Kafka tells a null key or value from an empty one.
	if got.Messages[1].Key != nil || got.Messages[2].Key == nil || got.Messages[0].Headers[1].Value != nil || got.Messages[0].Headers[0].Value == nil {
		t.Error("nil and empty bytes were confused")
	}
	if zero, err := unmarshalOutbox(""); err != nil || !reflect.DeepEqual(zero, Outbox{}) {
		t.Errorf("no outbox = %+v, %v; want the zero Outbox", zero, err)
	}
}

// TestOutboxCorruptIsAnError: every truncation of a valid encoding, and trailing
// bytes, give ErrCorrupt, never a panic or a silently shorter outbox.
func TestOutboxCorruptIsAnError(t *testing.T) {
	box := sampleOutbox()
	b := box.marshal()
	for n := range len(b) {
		if _, err := unmarshalOutbox(string(b[:n])); n > 0 && !errors.Is(err, ErrCorrupt) {
			t.Errorf("truncated to %d of %d bytes: err = %v, want ErrCorrupt", n, len(b), err)
		}
	}
	if _, err := unmarshalOutbox(string(append(b, 0))); !errors.Is(err, ErrCorrupt) {
		t.Errorf("trailing byte: err = %v", err)
	}
	b[8] = 99
	if _, err := unmarshalOutbox(string(b)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("unknown version: err = %v", err)
	}
}

func FuzzUnmarshalOutbox(f *testing.F) {
	box := sampleOutbox()
	f.Add(box.marshal())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := unmarshalOutbox(string(b))
		if err != nil {
			return
		}
		again, err := unmarshalOutbox(string(got.marshal()))
		if err != nil || !reflect.DeepEqual(normal(again), normal(got)) {
			t.Fatalf("a decoded outbox does not survive a round trip: %v", err)
		}
	})
}

// normal makes empty maps and slices nil, which the encoding does not tell apart.
func normal(b Outbox) Outbox {
	if len(b.Offsets) == 0 {
		b.Offsets = nil
	}
	if len(b.Messages) == 0 {
		b.Messages = nil
	}
	for i := range b.Messages {
		if len(b.Messages[i].Headers) == 0 {
			b.Messages[i].Headers = nil
		}
	}
	return b
}
