package codecs

import (
	"encoding/json"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLogicalTypes checks every Connect logical type against values worked out by
// hand (testdata/pg_logical_types.want.json).
func TestLogicalTypes(t *testing.T) {
	var want struct{ After map[string]string }
	if err := json.Unmarshal(readTestdata(t, "pg_logical_types.want.json"), &want); err != nil {
		t.Fatal(err)
	}
	ev := mustDecode(t, Options{}, Message{Value: readTestdata(t, "pg_logical_types.schema.json")})
	if ev.Kind != KindChange || ev.Op != OpUpdate {
		t.Fatalf("got %v %v, want change u", ev.Kind, ev.Op)
	}
	if len(ev.After) != len(want.After) {
		t.Errorf("after has %d columns, want %d: %s", len(ev.After), len(want.After), rowJSON(ev.After))
	}
	for name, v := range want.After {
		wantColumn(t, ev.After, name, v)
	}
	wantColumn(t, ev.Before, "price", `"12.34"`)
	wantColumn(t, ev.Before, "var_price", `"12.5"`)
	wantPosition(t, ev.Position, pg(22910504))
	if ev.TxID != "771:22910504" || ev.TsMs != 1718280000123 || ev.TsNs != 1718280000123456000 || ev.Table != "invoices" {
		t.Errorf("TxID %q, TsMs %d, TsNs %d, Table %q", ev.TxID, ev.TsMs, ev.TsNs, ev.Table)
	}
}

func TestUnwrappedWithSchema(t *testing.T) {
	ev := mustDecode(t, Options{Unwrapped: true}, Message{Value: readTestdata(t, "unwrapped_logical.schema.json")})
	if ev.Kind != KindChange || ev.Op != OpUpdate || ev.Before != nil {
		t.Fatalf("got %v %v before %s, want change u without before", ev.Kind, ev.Op, rowJSON(ev.Before))
	}
	wantRow(t, "after", ev.After, `{"id":7,"balance":"2","updated_at":"2023-11-14T22:13:20.000001Z"}`)
	wantPosition(t, ev.Position, pg(33554432))
	if ev.Table != "contacts" || ev.TsMs != 1700000000000 {
		t.Errorf("Table %q, TsMs %d", ev.Table, ev.TsMs)
	}
}

func TestGTIDPosition(t *testing.T) {
	ev := mustDecode(t, Options{}, Message{Value: readTestdata(t, "mysql_gtid.schemaless.json")})
	want := Position{Kind: PosGTID, A: fnv1aLower([]byte("3e11fa47-71ca-11e1-9e33-c80aa9429562")), B: 23, C: 1}
	wantPosition(t, ev.Position, want)
	for _, g := range []string{"3e11fa47-71ca-11e1-9e33-c80aa9429562:23", "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-23"} {
		server, n, ok := parseGTID([]byte(g))
		if !ok || server != want.A || n != 23 {
			t.Errorf("parseGTID(%q) = %x, %d, %v", g, server, n, ok)
		}
	}
	for _, g := range []string{"", "uuid", ":5", "uuid:x", "a:1,b:2", "uuid:1-"} {
		if _, _, ok := parseGTID([]byte(g)); ok {
			t.Errorf("parseGTID(%q) accepted", g)
		}
	}
}

func TestDecimalNumericFormat(t *testing.T) {
	ev := mustDecode(t, Options{}, Message{Value: readTestdata(t, "mysql_decimal_numeric.schema.json")})
	wantRow(t, "after", ev.After, `{"id":1,"price":"12.5","stock":"1000","rate":"0.0000001","delta":"-0.05"}`)
	wantPosition(t, ev.Position, mysql(12, 4711, 2))
	if ev.Op != OpRead || !ev.Snapshot {
		t.Errorf("Op %v, Snapshot %v; want r, true (snapshot \"last\")", ev.Op, ev.Snapshot)
	}
}

func TestDecimalKey(t *testing.T) {
	row, err := NewDecoder(Options{}).DecodeKey(readTestdata(t, "pg_decimal_key.schema.key.json"))
	if err != nil {
		t.Fatal(err)
	}
	wantRow(t, "key", row, `{"account":"1234.5","day":"2022-01-08"}`)
}

func TestDecodeKeyAndValue(t *testing.T) {
	d := NewDecoder(Options{})
	var ev Event
	m := Message{
		Key:   []byte(`{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}]},"payload":{"id":7}}`),
		Value: []byte(`{"op":"c","after":{"id":7,"name":"x"},"source":{"connector":"postgresql","lsn":"16/B374D848"}}`),
	}
	if err := d.Decode(m, &ev); err != nil {
		t.Fatal(err)
	}
	wantRow(t, "key", ev.Key, `{"id":7}`)
	wantRow(t, "after", ev.After, `{"id":7,"name":"x"}`)
	wantPosition(t, ev.Position, pg(0x16B374D848))
}

// TestDecoderReuse decodes different events with one decoder: each result must be
// what a fresh decoder gives.
func TestDecoderReuse(t *testing.T) {
	files := fixtureFiles(t, debeziumDir)
	d := NewDecoder(Options{Unwrapped: true})
	for range 2 {
		for _, path := range files {
			if !isKeyFile(path) {
				checkReuse(t, d, path)
			}
		}
	}
}

func checkReuse(t *testing.T, d *Decoder, path string) {
	t.Helper()
	for i, p := range fixtureMessages(t, path) {
		m := Message{Partition: 1, Offset: int64(i), Value: p}
		var got Event
		if err := d.Decode(m, &got); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		want := mustDecode(t, Options{Unwrapped: true}, m)
		if g, w := eventString(&got), eventString(&want); g != w {
			t.Errorf("%s line %d:\n got %s\nwant %s", path, i+1, g, w)
		}
	}
}

func eventString(ev *Event) string {
	var b strings.Builder
	b.WriteString(ev.Kind.String() + " " + ev.Op.String() + " " + ev.Position.String() + " " + ev.TxID + " " + ev.Table)
	for _, r := range []Row{ev.Key, ev.Before, ev.After} {
		b.WriteString(" " + rowJSON(r))
	}
	return b.String()
}

func TestTombstones(t *testing.T) {
	for _, value := range []string{"", "null", " null ", `{"schema":null,"payload":null}`, `{"payload":null,"schema":{"type":"struct"}}`} {
		ev, err := decodeValue(t, Options{}, []byte(value))
		if err != nil || ev.Kind != KindTombstone {
			t.Errorf("%q: %v, %v; want a tombstone", value, ev.Kind, err)
		}
		wantPosition(t, ev.Position, Position{Kind: PosKafka, A: 3, B: 99})
	}
}

func TestHeartbeatsAndMarkers(t *testing.T) {
	cases := []struct {
		value string
		opts  Options
		kind  Kind
	}{
		{`{"ts_ms":1}`, Options{}, KindHeartbeat},
		{`{"ts_ms":1}`, Options{Unwrapped: true}, KindHeartbeat},
		{`{"schema":{"name":"io.debezium.connector.common.Heartbeat"},"payload":{"ts_ms":1,"extra":2}}`, Options{}, KindHeartbeat},
		{`{"status":"END","id":"9","event_count":1,"data_collections":[]}`, Options{Unwrapped: true}, KindTxEnd},
		// An unwrapped row that merely has status and id columns is a row.
		{`{"id":"9","status":"END"}`, Options{Unwrapped: true}, KindChange},
	}
	for _, c := range cases {
		ev, err := decodeValue(t, c.opts, []byte(c.value))
		if err != nil || ev.Kind != c.kind {
			t.Errorf("%s %+v: %v, %v; want %v", c.value, c.opts, ev.Kind, err, c.kind)
		}
	}
}

func TestSourceFields(t *testing.T) {
	cases := []struct {
		source   string
		snapshot bool
		pos      Position
		tsMs     int64
		tsNs     int64
	}{
		{`{"connector":"postgresql","lsn":"123","ts_ms":"5"}`, false, pg(123), 5, 5e6},
		{`{"connector":"postgresql","lsn":"0/10","ts_us":7}`, false, pg(16), 0, 7000},
		{`{"connector":"postgresql","lsn":null}`, false, Position{Kind: PosKafka, A: 3, B: 99}, 0, 0},
		{`{"connector":"mysql","lsn":1,"file":"binlog.000010","pos":4,"snapshot":"incremental"}`, true, mysql(10, 4, 0), 0, 0},
		{`{"connector":"mysql","file":"no-suffix","pos":4,"gtid":"u:7","row":2}`, false, Position{Kind: PosGTID, A: fnv1aLower([]byte("u")), B: 7, C: 2}, 0, 0},
		{`{"snapshot":"false","ts_ms":9223372036854775807}`, false, Position{Kind: PosKafka, A: 3, B: 99}, 9223372036854775807, 0},
		{`{"snapshot":true,"ts_ns":-1}`, true, Position{Kind: PosKafka, A: 3, B: 99}, 0, -1},
		{`{"snapshot":""}`, false, Position{Kind: PosKafka, A: 3, B: 99}, 0, 0},
	}
	for _, c := range cases {
		ev, err := decodeValue(t, Options{}, []byte(`{"op":"c","after":{"a":1},"source":`+c.source+`}`))
		if err != nil {
			t.Errorf("%s: %v", c.source, err)
			continue
		}
		if ev.Snapshot != c.snapshot || ev.Position != c.pos || ev.TsMs != c.tsMs || ev.TsNs != c.tsNs {
			t.Errorf("%s: snapshot %v, position %v, ts_ms %d, ts_ns %d; want %v, %v, %d, %d",
				c.source, ev.Snapshot, ev.Position, ev.TsMs, ev.TsNs, c.snapshot, c.pos, c.tsMs, c.tsNs)
		}
	}
}

const decimalSchema = `{"type":"struct","fields":[{"type":"struct","field":"after","fields":[` +
	`{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"},"field":"d"},` +
	`{"type":"struct","name":"io.debezium.data.VariableScaleDecimal","field":"v"},` +
	`{"type":"int64","name":"io.debezium.time.MicroTimestamp","field":"ts"},` +
	`{"type":"string","name":"io.debezium.time.ZonedTimestamp","field":"z"},` +
	`{"type":"int32","name":"io.debezium.time.Date","field":"day"}]}]}`

func withSchema(after string) string {
	return `{"schema":` + decimalSchema + `,"payload":{"op":"c","after":` + after + `}}`
}

// TestPoison feeds broken messages: each must give an error that wraps ErrPoison
// and says what is wrong.
func TestPoison(t *testing.T) {
	cases := []struct {
		name      string
		opts      Options
		key       string
		value     string
		fragments []string
	}{
		{"truncated JSON", Options{}, "", `{"op":`, []string{"codecs: value: not JSON"}},
		{"blank", Options{}, "", `  `, []string{"not JSON"}},
		{"NaN", Options{}, "", `{"op":"c","after":{"a":NaN}}`, []string{`after: column "a": "NaN" is not a JSON number`}},
		{"nested bad number", Options{}, "", `{"op":"c","after":{"a":[1,{"b":1-2}]}}`, []string{`column "a": "1-2" is not a JSON number`}},
		{"numeric decimal", Options{}, "", withSchema(`{"d":1.}`), []string{`Decimal: "1." is not a JSON number`}},
		{"trailing garbage", Options{}, "", `{"op":"c","after":{}} x`, []string{"not JSON"}},
		{"trailing comma", Options{}, "", `{"op":"c","after":{"a":1,}}`, []string{"not JSON"}},
		{"array", Options{}, "", `[1]`, []string{"got an array, want an object"}},
		{"bad op", Options{}, "", `{"op":"x","after":{}}`, []string{`codecs: value: "op" is "x", want one of c, u, d, r, t, m`}},
		{"numeric op", Options{}, "", `{"op":1,"after":{}}`, []string{`"op" is a number, want a string`}},
		{"no envelope", Options{}, "", `{"id":1,"name":"x"}`, []string{`no Debezium envelope ("op" missing); if the connector uses ExtractNewRecordState set envelope: unwrapped`}},
		{"create without after", Options{}, "", `{"op":"c","before":null,"after":null}`, []string{`op c has no "after" image`}},
		{"read without after", Options{}, "", `{"op":"r"}`, []string{`op r has no "after" image`}},
		{"update with array after", Options{}, "", `{"op":"u","after":[1]}`, []string{`"after" is an array, want an object or null`}},
		{"delete with after", Options{}, "", `{"op":"d","before":{"a":1},"after":{"a":1}}`, []string{`op d has an "after" image`}},
		{"delete of nothing", Options{}, "", `{"op":"d","before":null,"after":null}`, []string{`neither a "before" image nor a message key`}},
		{"repeated column", Options{}, "", `{"op":"c","after":{"a":1,"a":2}}`, []string{`after: column "a" appears twice`}},
		{"source string", Options{}, "", `{"op":"c","after":{"a":1},"source":"pg"}`, []string{`"source" is a string, want an object`}},
		{"lsn text", Options{}, "", `{"op":"c","after":{"a":1},"source":{"connector":"postgresql","lsn":"x"}}`, []string{`"lsn"`, "not an integer"}},
		{"lsn negative", Options{}, "", `{"op":"c","after":{"a":1},"source":{"connector":"postgresql","lsn":-5}}`, []string{`"lsn"`}},
		{"lsn slash", Options{}, "", `{"op":"c","after":{"a":1},"source":{"connector":"postgresql","lsn":"1/G"}}`, []string{`is not an LSN`}},
		{"ts_ms fraction", Options{}, "", `{"op":"c","after":{"a":1},"source":{"ts_ms":1.5}}`, []string{`"ts_ms"`, "not an integer"}},
		{"ts_ms overflow", Options{}, "", `{"op":"c","after":{"a":1},"source":{"ts_ms":9223372036854775808}}`, []string{`overflows`}},
		{"pos bool", Options{}, "", `{"op":"c","after":{"a":1},"source":{"file":"b.1","pos":true}}`, []string{`"pos" is a boolean, want an integer`}},
		{"table number", Options{}, "", `{"op":"c","after":{"a":1},"source":{"table":1}}`, []string{`"table" is a number`}},
		{"transaction without id", Options{}, "", `{"op":"c","after":{"a":1},"transaction":{"total_order":1}}`, []string{`"transaction" has no "id" string`}},
		{"transaction string", Options{}, "", `{"op":"c","after":{"a":1},"transaction":"x"}`, []string{`"transaction" is a string`}},
		{"tx marker id", Options{}, "", `{"status":"BEGIN","id":5}`, []string{`no "id" string`}},
		{"tx schema status", Options{}, "", `{"schema":{"name":"io.debezium.connector.common.TransactionMetadataValue"},"payload":{"status":"MAYBE","id":"1"}}`, []string{`"status"`}},
		{"decimal base64", Options{}, "", withSchema(`{"d":"%%%"}`), []string{`after: column "d": Decimal: unscaled value "%%%" is not base64`}},
		{"decimal empty", Options{}, "", withSchema(`{"d":""}`), []string{`Decimal: unscaled value is empty`}},
		{"decimal bool", Options{}, "", withSchema(`{"d":true}`), []string{`Decimal: value is a boolean`}},
		{"decimal huge", Options{}, "", withSchema(`{"d":"` + strings.Repeat("AAAA", 2000) + `"}`), []string{`too large`}},
		{"numeric exponent", Options{}, "", withSchema(`{"d":1e99999}`), []string{`exponent`}},
		{"varscale missing value", Options{}, "", withSchema(`{"v":{"scale":2}}`), []string{`VariableScaleDecimal: value needs both`}},
		{"varscale scale", Options{}, "", withSchema(`{"v":{"scale":"x","value":"AA=="}}`), []string{`VariableScaleDecimal: "scale"`}},
		{"varscale range", Options{}, "", withSchema(`{"v":{"scale":99999999,"value":"AA=="}}`), []string{`out of range`}},
		{"varscale number", Options{}, "", withSchema(`{"v":1}`), []string{`VariableScaleDecimal: value is a number`}},
		{"micro string", Options{}, "", withSchema(`{"ts":"yesterday"}`), []string{`MicroTimestamp: value yesterday: not an integer`}},
		{"micro range", Options{}, "", withSchema(`{"ts":9223372036854775807}`), []string{`MicroTimestamp: year`}},
		{"zoned bad", Options{}, "", withSchema(`{"z":"2020-13-01T00:00:00Z"}`), []string{`ZonedTimestamp: value "2020-13-01T00:00:00Z" is not`}},
		{"zoned number", Options{}, "", withSchema(`{"z":1}`), []string{`ZonedTimestamp: value is a number`}},
		{"date range", Options{}, "", withSchema(`{"day":99999999}`), []string{`Date: 99999999 days`}},
		{"key scalar", Options{}, `42`, `{"op":"c","after":{"a":1}}`, []string{`codecs: key: got a number, want an object of key columns`}},
		{"key string", Options{}, `"42"`, `{"op":"c","after":{"a":1}}`, []string{`codecs: key: got a string`}},
		{"key empty object", Options{}, `{}`, `{"op":"c","after":{"a":1}}`, []string{`codecs: key: an object without columns`}},
		{"key payload array", Options{}, `{"schema":null,"payload":[1]}`, ``, []string{`codecs: key: got an array`}},
		{"key not JSON", Options{}, `id=1`, ``, []string{`codecs: key: not JSON`}},
		{"unwrapped op t", Options{Unwrapped: true}, "", `{"a":1,"__op":"t"}`, []string{`"__op" is "t", want one of c, u, d, r`}},
		{"unwrapped deleted", Options{Unwrapped: true}, "", `{"a":1,"__deleted":"maybe"}`, []string{`"__deleted" is "maybe", want true or false`}},
		{"unwrapped lsn", Options{Unwrapped: true}, "", `{"a":1,"__lsn":"x"}`, []string{`"lsn"`}},
		{"unwrapped scalar", Options{Unwrapped: true}, "", `"row"`, []string{`got a string, want an object`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var key []byte
			if c.key != "" {
				key = []byte(c.key)
			}
			var ev Event
			err := NewDecoder(c.opts).Decode(Message{Partition: 2, Offset: 5, Key: key, Value: []byte(c.value)}, &ev)
			wantPoison(t, err, c.fragments...)
			if ev.Kind != KindChange || ev.Key != nil || ev.After != nil || ev.TxID != "" {
				t.Errorf("after an error the event holds %+v, want only the Kafka position", ev)
			}
			wantPosition(t, ev.Position, Position{Kind: PosKafka, A: 2, B: 5})
		})
	}
}

func TestUnwrappedDeletes(t *testing.T) {
	for _, value := range []string{`{"a":1,"__deleted":true}`, `{"a":1,"__deleted":"true","__op":"u"}`, `{"a":1,"__op":"d"}`} {
		ev, err := decodeValue(t, Options{Unwrapped: true}, []byte(value))
		if err != nil || ev.Op != OpDelete || ev.After != nil || rowJSON(ev.Before) != `{"a":1}` {
			t.Errorf("%s: %v %v before %s after %s", value, err, ev.Op, rowJSON(ev.Before), rowJSON(ev.After))
		}
	}
	ev, err := decodeValue(t, Options{Unwrapped: true}, []byte(`{"a":1,"__deleted":false,"__op":"r","__ts_ms":5,"__source_ts_ms":6,"__file":"b.000002","__pos":9,"__source_row":1}`))
	if err != nil || ev.Op != OpRead || ev.TsMs != 6 || ev.Position != mysql(2, 9, 1) || rowJSON(ev.After) != `{"a":1}` {
		t.Errorf("got %v, %+v", err, ev)
	}
}

// TestSteadyStateAllocs guards the allocation budget of the hot path.
func TestSteadyStateAllocs(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("allocation counts are not meaningful under -race")
	}
	for _, c := range benchCases() {
		d := NewDecoder(c.opts)
		var ev Event
		allocs := testing.AllocsPerRun(200, func() {
			if err := d.Decode(c.msg, &ev); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > c.maxAllocs {
			t.Errorf("%s: %.1f allocations per event, want at most %.0f", c.name, allocs, c.maxAllocs)
		}
	}
}

// TestInternerBound feeds ever-new column names: the interner must stay bounded and
// the rows right.
func TestInternerBound(t *testing.T) {
	d := NewDecoder(Options{})
	for i := range maxInterned + 100 {
		name := "c" + strconv.Itoa(i)
		var ev Event
		err := d.Decode(Message{Value: []byte(`{"op":"c","after":{"id":1,"` + name + `":` + strconv.Itoa(i) + `}}`)}, &ev)
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"id":1,"` + name + `":` + strconv.Itoa(i) + `}`; rowJSON(ev.After) != want {
			t.Fatalf("got %s, want %s", rowJSON(ev.After), want)
		}
	}
	if n := len(d.names.index); n > maxInterned {
		t.Errorf("interner holds %d names, more than %d", n, maxInterned)
	}
}

// TestDecimalScalesCompareEqual: the same amount in a numeric(12,2) column of one
// system, a numeric(12,4) column of another (both BASE64 and NUMERIC decimal.format)
// and a VariableScaleDecimal gives the same canonical bytes, so identical snapshots
// agree and an apply written into a column of another scale is known when it echoes.
func TestDecimalScalesCompareEqual(t *testing.T) {
	scaled := func(scale, value string) string {
		return `{"schema":{"type":"struct","fields":[{"type":"struct","field":"after","fields":[` +
			`{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"` + scale + `"},"field":"d"}]}]},` +
			`"payload":{"op":"r","after":{"d":` + value + `}}}`
	}
	for _, msg := range []string{
		scaled("2", `"BNI="`),   // 1234 × 10^-2
		scaled("4", `"AeII"`),   // 123400 × 10^-4
		scaled("4", `12.3400`),  // NUMERIC format
		scaled("2", `1.234E+1`), // NUMERIC with an exponent
		withSchema(`{"v":{"scale":4,"value":"AeII"}}`),
	} {
		ev := mustDecode(t, Options{}, Message{Value: []byte(msg)})
		col := "d"
		if _, ok := ev.After.Get("v"); ok {
			col = "v"
		}
		wantColumn(t, ev.After, col, `"12.34"`)
	}
}

// TestEventStrings: the text forms the pipeline labels and names every event with,
// and what they cost.
func TestEventStrings(t *testing.T) {
	for op, want := range map[Op]string{OpNone: "", OpCreate: "c", OpUpdate: "u", OpDelete: "d", OpRead: "r", 't': "t", 0xe9: "é"} {
		if got := op.String(); got != want {
			t.Errorf("Op(%d) is %q, want %q", op, got, want)
		}
	}
	biggest := Position{Kind: PosGTID, A: math.MaxUint64, B: math.MaxUint64, C: math.MaxUint64}
	if got, want := biggest.String(), string(biggest.AppendText(nil)); got != want {
		t.Errorf("position %s, want %s", got, want)
	}
	if raceEnabled || testing.Short() {
		return
	}
	var s string
	if n := testing.AllocsPerRun(100, func() { s = biggest.String() }); n > 1 {
		t.Errorf("Position.String: %.0f allocations, want 1", n)
	}
	if n := testing.AllocsPerRun(100, func() { s = OpUpdate.String() }); n > 0 {
		t.Errorf("Op.String: %.0f allocations, want none", n)
	}
	_ = s
}
