package codecs

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/concord-sync/concord/internal/hostile"
)

// seedPayloads returns every fixture payload: the shared Debezium fixtures (when
// present), this package's own, and the hostile corpus (testdata/hostile).
func seedPayloads(tb testing.TB) (values, keys [][]byte) {
	tb.Helper()
	var files []string
	if _, err := os.Stat(debeziumDir); err == nil {
		files = fixtureFiles(tb, debeziumDir)
	}
	own, err := filepath.Glob("testdata/*.json")
	if err != nil {
		tb.Fatal(err)
	}
	for _, path := range append(files, own...) {
		for _, p := range fixtureMessages(tb, path) {
			if isKeyFile(path) {
				keys = append(keys, p)
			} else {
				values = append(values, p)
			}
		}
	}
	for _, small := range smallSeeds {
		values = append(values, []byte(small))
	}
	cases, err := hostile.Load("../testdata/hostile")
	if err != nil {
		tb.Fatal(err)
	}
	for _, c := range cases {
		if len(c.Key)+len(c.Value) > maxSeedBytes {
			continue // the fuzzer mutates small inputs far faster; the test decodes the big ones
		}
		if c.Key != nil {
			keys = append(keys, c.Key)
		}
		if c.Value != nil {
			values = append(values, c.Value)
		}
	}
	return values, keys
}

// maxSeedBytes leaves the corpus's generated megabyte messages out of the seeds.
const maxSeedBytes = 64 << 10

// smallSeeds are short messages that reach every branch quickly; mutating the
// multi-kilobyte fixtures alone rarely gets past the first bytes.
var smallSeeds = []string{
	benchPayload,
	`{"op":"c","after":{"a":1.5e3,"b":"x\u00e9","c":[1,{"d":null}]},"source":{"connector":"postgresql","lsn":"0/1A","ts_ms":"1","snapshot":"last"}}`,
	`{"op":"d","before":{"id":1},"source":{"connector":"mysql","file":"b.000001","pos":4,"row":1,"gtid":"u:1-3","ts_ns":5},"transaction":{"id":"t1"}}`,
	`{"op":"t","source":{"connector":"mysql","gtid":"U:7","table":"x"}}`,
	`{"op":"m","source":{"ts_us":"3"}}`,
	`{"status":"BEGIN","id":"x","event_count":null}`,
	`{"schema":null,"payload":null}`,
	`{"ts_ms":1}`,
	`{"a":1,"__op":"r","__deleted":false,"__source_lsn":5,"__table":"t"}`,
	withSchema(`{"d":"BOI=","v":{"scale":1,"value":"fQ=="},"ts":1,"z":"2020-01-01T00:00:00+01:00","day":1}`),
	withSchema(`{"d":-1.25E+2,"v":{"scale":-3,"value":"/4AAAAAAAAAAAA=="},"ts":-1,"day":-719528}`),
	`{"schema":{"fields":[{"field":"a","name":"io.debezium.time.NanoTimestamp"},{"field":"b","name":"org.apache.kafka.connect.data.Date"}]},"payload":{"a":1,"b":2,"__op":"c"}}`,
}

func FuzzDecodeValue(f *testing.F) {
	values, _ := seedPayloads(f)
	for _, v := range values {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, value []byte) { checkDecode(t, Options{}, nil, value) })
}

func FuzzDecodeUnwrapped(f *testing.F) {
	values, _ := seedPayloads(f)
	for _, v := range values {
		f.Add(v)
	}
	f.Add([]byte(`{"a":1,"__op":"d","__deleted":"true","__lsn":"0/1","__source_ts_ms":"5","__file":"x.1","__gtid":"u:1-2"}`))
	f.Fuzz(func(t *testing.T, value []byte) { checkDecode(t, Options{Unwrapped: true}, nil, value) })
}

func FuzzDecodeKey(f *testing.F) {
	_, keys := seedPayloads(f)
	for _, k := range keys {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key []byte) {
		row, err := NewDecoder(Options{}).DecodeKey(key)
		if err != nil {
			if !errors.Is(err, ErrPoison) {
				t.Fatalf("error %q does not wrap ErrPoison", err)
			}
			return
		}
		checkRow(t, "key", row)
		checkDecode(t, Options{}, key, nil)
	})
}

func FuzzParseReplayLine(f *testing.F) {
	values, keys := seedPayloads(f)
	for i, v := range values {
		line := `{"system":"crm","partition":1,"offset":` + strconv.Itoa(i) + `,"value":` + string(cmpOrNull(bytes.TrimSpace(v))) + `}`
		f.Add([]byte(line))
		f.Add([]byte(`{"system":"billing","value":` + strconv.Quote(string(v)) + `,"headers":{"h":"v"}}`))
	}
	for _, k := range keys {
		f.Add([]byte(`{"system":"crm","key":` + string(bytes.TrimSpace(k)) + `,"value":null}`))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		l, err := ParseReplayLine(line)
		if err != nil {
			if !errors.Is(err, ErrPoison) {
				t.Fatalf("error %q does not wrap ErrPoison", err)
			}
			return
		}
		if l.System == "" || l.Partition < 0 || l.Offset < 0 {
			t.Fatalf("accepted %+v", l)
		}
		checkDecode(t, Options{}, l.Key, l.Value)
	})
}

func cmpOrNull(b []byte) []byte {
	if len(b) == 0 {
		return []byte("null")
	}
	return b
}

// checkDecode decodes a message and checks what must hold for any input: errors
// wrap ErrPoison, events are well formed, and decoding is deterministic even with a
// decoder that decoded something else before.
func checkDecode(t *testing.T, opts Options, key, value []byte) {
	t.Helper()
	m := Message{Partition: 4, Offset: 8, Key: key, Value: value}
	d := NewDecoder(opts)
	var ev Event
	err := d.Decode(m, &ev)
	if err != nil {
		if !errors.Is(err, ErrPoison) {
			t.Fatalf("error %q does not wrap ErrPoison", err)
		}
		if ev.Position != (Position{Kind: PosKafka, A: 4, B: 8}) || ev.Key != nil || ev.Before != nil || ev.After != nil {
			t.Fatalf("after an error the event holds %+v", ev)
		}
		return
	}
	checkEvent(t, &ev)
	first := eventString(&ev)
	var other Event
	_ = d.Decode(Message{Key: []byte(`{"id":1}`), Value: []byte(benchPayload)}, &other)
	if err := d.Decode(m, &ev); err != nil {
		t.Fatalf("second decode failed: %v", err)
	}
	if again := eventString(&ev); again != first {
		t.Fatalf("decoding again gave\n%s\nnot\n%s", again, first)
	}
}

func checkEvent(t *testing.T, ev *Event) {
	t.Helper()
	if ev.Kind > KindMessage {
		t.Fatalf("kind %v", ev.Kind)
	}
	if ev.Kind == KindChange {
		switch ev.Op {
		case OpCreate, OpUpdate, OpRead:
			if ev.After == nil {
				t.Fatalf("op %v without after", ev.Op)
			}
		case OpDelete:
			if ev.After != nil || ev.Before == nil && ev.Key == nil {
				t.Fatalf("delete with after %v, before %v, key %v", ev.After, ev.Before, ev.Key)
			}
		default:
			t.Fatalf("change with op %q", ev.Op)
		}
	} else if ev.Op != OpNone || ev.Before != nil || ev.After != nil {
		t.Fatalf("%v with op %q or rows", ev.Kind, ev.Op)
	}
	checkRow(t, "key", ev.Key)
	checkRow(t, "before", ev.Before)
	checkRow(t, "after", ev.After)
}

// checkRow checks that column names are unique and values are canonical JSON.
func checkRow(t *testing.T, what string, r Row) {
	t.Helper()
	seen := map[string]bool{}
	for _, c := range r {
		if seen[c.Name] {
			t.Fatalf("%s: column %q twice", what, c.Name)
		}
		seen[c.Name] = true
		if !json.Valid(c.Value) {
			t.Fatalf("%s: column %q = %q is not JSON", what, c.Name, c.Value)
		}
		again, err := Canonicalize(c.Value)
		if err != nil || !bytes.Equal(again, c.Value) {
			t.Fatalf("%s: column %q = %s is not canonical (%s, %v)", what, c.Name, c.Value, again, err)
		}
	}
}
