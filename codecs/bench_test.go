package codecs

import "testing"

// A 10-column row of a contacts table, as before and after images.
const (
	benchBefore = `{"id":1042,"email":"ada@example.com","name":"Ada Lovelace","phone":"+44 20 7946 0958","status":"active",` +
		`"balance":"BOI=","created_at":1718280000123456,"updated_at":1718280000123456,"birthday":17702,"notes":"likes \"engines\""}`
	benchAfter = `{"id":1042,"email":"ada@example.org","name":"Ada Lovelace","phone":"+44 20 7946 0958","status":"active",` +
		`"balance":"BNI=","created_at":1718280000123456,"updated_at":1718280099654321,"birthday":17702,"notes":"likes \"engines\""}`
	benchSource = `{"version":"2.7.3.Final","connector":"postgresql","name":"crm","ts_ms":1718280099654,"snapshot":"false",` +
		`"db":"crm","sequence":"[\"22910216\",\"22910504\"]","ts_us":1718280099654321,"ts_ns":1718280099654321000,` +
		`"schema":"public","table":"contacts","txId":771,"lsn":22910504,"xmin":null}`
	benchPayload = `{"before":` + benchBefore + `,"after":` + benchAfter + `,"source":` + benchSource +
		`,"transaction":null,"op":"u","ts_ms":1718280099700,"ts_us":1718280099700123,"ts_ns":1718280099700123456}`
	benchRowSchema = `{"type":"struct","optional":true,"name":"crm.public.contacts.Value","fields":[` +
		`{"type":"int64","optional":false,"field":"id"},{"type":"string","optional":false,"field":"email"},` +
		`{"type":"string","optional":true,"field":"name"},{"type":"string","optional":true,"field":"phone"},` +
		`{"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"active,closed"},"field":"status"},` +
		`{"type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2","connect.decimal.precision":"12"},"field":"balance"},` +
		`{"type":"int64","optional":true,"name":"io.debezium.time.MicroTimestamp","version":1,"field":"created_at"},` +
		`{"type":"int64","optional":true,"name":"io.debezium.time.MicroTimestamp","version":1,"field":"updated_at"},` +
		`{"type":"int32","optional":true,"name":"io.debezium.time.Date","version":1,"field":"birthday"},` +
		`{"type":"string","optional":true,"field":"notes"}],"field":"%s"}`
)

func benchSchema() string {
	row := func(field string) string {
		return benchRowSchema[:len(benchRowSchema)-len(`%s"}`)] + field + `"}`
	}
	return `{"type":"struct","optional":false,"name":"crm.public.contacts.Envelope","version":2,"fields":[` +
		row("before") + `,` + row("after") + `,` +
		`{"type":"struct","optional":false,"name":"io.debezium.connector.postgresql.Source","field":"source","fields":[` +
		`{"type":"string","optional":false,"field":"version"},{"type":"string","optional":false,"field":"connector"},` +
		`{"type":"string","optional":false,"field":"name"},{"type":"int64","optional":false,"field":"ts_ms"},` +
		`{"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"true,last,false,incremental"},"default":"false","field":"snapshot"},` +
		`{"type":"string","optional":false,"field":"db"},{"type":"string","optional":true,"field":"sequence"},` +
		`{"type":"int64","optional":true,"field":"ts_us"},{"type":"int64","optional":true,"field":"ts_ns"},` +
		`{"type":"string","optional":false,"field":"schema"},{"type":"string","optional":false,"field":"table"},` +
		`{"type":"int64","optional":true,"field":"txId"},{"type":"int64","optional":true,"field":"lsn"},{"type":"int64","optional":true,"field":"xmin"}]},` +
		`{"type":"struct","optional":true,"name":"event.block","version":1,"field":"transaction","fields":[` +
		`{"type":"string","optional":false,"field":"id"},{"type":"int64","optional":false,"field":"total_order"},{"type":"int64","optional":false,"field":"data_collection_order"}]},` +
		`{"type":"string","optional":false,"field":"op"},{"type":"int64","optional":true,"field":"ts_ms"},` +
		`{"type":"int64","optional":true,"field":"ts_us"},{"type":"int64","optional":true,"field":"ts_ns"}]}`
}

type benchCase struct {
	name      string
	opts      Options
	msg       Message
	maxAllocs float64
}

func benchCases() []benchCase {
	key := []byte(`{"id":1042}`)
	return []benchCase{
		{"update/schemaless", Options{}, Message{Partition: 1, Offset: 7, Key: key, Value: []byte(benchPayload)}, 3},
		{"update/schema", Options{}, Message{
			Partition: 1, Offset: 7,
			Key:   []byte(`{"schema":{"type":"struct","fields":[{"type":"int64","optional":false,"field":"id"}],"optional":false,"name":"crm.public.contacts.Key"},"payload":{"id":1042}}`),
			Value: []byte(`{"schema":` + benchSchema() + `,"payload":` + benchPayload + `}`),
		}, 3},
		{"unwrapped", Options{Unwrapped: true}, Message{Partition: 1, Offset: 7, Key: key, Value: []byte(
			benchAfter[:len(benchAfter)-1] + `,"__op":"u","__table":"contacts","__lsn":22910504,"__source_ts_ms":1718280099654,"__deleted":"false"}`)}, 3},
	}
}

func benchmarkDecode(b *testing.B, c benchCase) {
	d := NewDecoder(c.opts)
	var ev Event
	b.ReportAllocs()
	b.SetBytes(int64(len(c.msg.Key) + len(c.msg.Value)))
	for b.Loop() {
		if err := d.Decode(c.msg, &ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeUpdate decodes a schemaless 10-column update with full before image.
func BenchmarkDecodeUpdate(b *testing.B) { benchmarkDecode(b, benchCases()[0]) }

// BenchmarkDecodeUpdateSchema decodes the same update with JsonConverter schemas,
// so Decimal, MicroTimestamp and Date columns are converted.
func BenchmarkDecodeUpdateSchema(b *testing.B) { benchmarkDecode(b, benchCases()[1]) }

// BenchmarkDecodeUnwrapped decodes the after image flattened by ExtractNewRecordState.
func BenchmarkDecodeUnwrapped(b *testing.B) { benchmarkDecode(b, benchCases()[2]) }
