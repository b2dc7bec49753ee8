package codecs_test

import (
	"testing"

	"github.com/concord-sync/concord/codecs"
)

func TestApplyEncoder(t *testing.T) {
	balance := codecs.ColumnType{Type: codecs.TypeBytes, Name: codecs.NameDecimal, Scale: 2, Precision: 12}
	up := codecs.Apply{
		Key: []codecs.TypedColumn{{Name: "cust_id", Value: []byte(`"c-1"`)}},
		Fields: []codecs.TypedColumn{
			{Name: "notes", Value: []byte(`"hi \"there\""`)},
			{Name: "n", Value: []byte(`12.5`)},
			{Name: "ok", Value: []byte(`true`)},
			{Name: "x", Value: []byte(`null`)},
			{Name: "meta", Value: []byte(`{"a":1}`)},
			{Name: "balance", Value: []byte(`"12.3"`), Type: balance},
		},
		TsMs: 1700000000000,
	}
	del := codecs.Apply{Delete: true, Key: up.Key, TsMs: 1700000000000}
	const (
		keySchema   = `{"type":"struct","optional":false,"name":"crm.public.customers.Key","fields":[{"type":"string","optional":false,"field":"cust_id"}]}`
		rowFields   = `{"type":"string","optional":false,"field":"cust_id"},{"type":"string","optional":true,"field":"notes"},{"type":"double","optional":true,"field":"n"},{"type":"boolean","optional":true,"field":"ok"},{"type":"string","optional":true,"field":"x"},{"type":"string","optional":true,"field":"meta"},{"type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2","connect.decimal.precision":"12"},"field":"balance"}`
		rowPayload  = `{"cust_id":"c-1","notes":"hi \"there\"","n":12.5,"ok":true,"x":null,"meta":"{\"a\":1}","balance":"BM4="}`
		source      = `{"connector":"concord","name":"contacts","ts_ms":1700000000000,"schema":"public","table":"customers"}`
		sourceField = `{"type":"struct","optional":false,"name":"io.concord.Source","field":"source","fields":[{"type":"string","optional":false,"field":"connector"},{"type":"string","optional":false,"field":"name"},{"type":"int64","optional":false,"field":"ts_ms"},{"type":"string","optional":true,"field":"schema"},{"type":"string","optional":true,"field":"table"}]}`
		tail        = `,{"type":"string","optional":false,"field":"op"},{"type":"int64","optional":true,"field":"ts_ms"}]}`
	)
	dbz := codecs.ApplyEncoder{Name: "contacts", Schema: true, Table: "crm.public.customers"}
	flat := codecs.ApplyEncoder{Format: codecs.FormatFlat, Schema: true, Table: "crm.public.customers"}
	tests := []struct {
		name       string
		enc        codecs.ApplyEncoder
		a          codecs.Apply
		key, value string // value "" = tombstone
	}{
		{
			"debezium upsert", dbz, up,
			`{"schema":` + keySchema + `,"payload":{"cust_id":"c-1"}}`,
			`{"schema":{"type":"struct","optional":false,"name":"crm.public.customers.Envelope","fields":[` +
				`{"type":"struct","optional":true,"name":"crm.public.customers.Value","field":"before","fields":[` + rowFields + `]},` +
				`{"type":"struct","optional":true,"name":"crm.public.customers.Value","field":"after","fields":[` + rowFields + `]},` +
				sourceField + tail + `,"payload":{"before":null,"after":` + rowPayload + `,"source":` + source + `,"op":"u","ts_ms":1700000000000}}`,
		},
		{
			"debezium delete", dbz, del,
			`{"schema":` + keySchema + `,"payload":{"cust_id":"c-1"}}`,
			`{"schema":{"type":"struct","optional":false,"name":"crm.public.customers.Envelope","fields":[` +
				`{"type":"struct","optional":true,"name":"crm.public.customers.Value","field":"before","fields":[{"type":"string","optional":false,"field":"cust_id"}]},` +
				`{"type":"struct","optional":true,"name":"crm.public.customers.Value","field":"after","fields":[{"type":"string","optional":false,"field":"cust_id"}]},` +
				sourceField + tail + `,"payload":{"before":{"cust_id":"c-1"},"after":null,"source":` + source + `,"op":"d","ts_ms":1700000000000}}`,
		},
		{
			"debezium without schema",
			codecs.ApplyEncoder{Name: "contacts"},
			up, `{"cust_id":"c-1"}`,
			`{"before":null,"after":` + rowPayload + `,"source":{"connector":"concord","name":"contacts","ts_ms":1700000000000},"op":"u","ts_ms":1700000000000}`,
		},
		{
			"flat upsert", flat, up,
			`{"schema":` + keySchema + `,"payload":{"cust_id":"c-1"}}`,
			`{"schema":{"type":"struct","optional":false,"name":"crm.public.customers.Value","fields":[` + rowFields + `]},"payload":` + rowPayload + `}`,
		},
		{"flat delete is a tombstone", flat, del, `{"schema":` + keySchema + `,"payload":{"cust_id":"c-1"}}`, ""},
		{"flat without schema", codecs.ApplyEncoder{Format: codecs.FormatFlat}, up, `{"cust_id":"c-1"}`, rowPayload},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, err := tc.enc.AppendKey(nil, &tc.a)
			if err != nil || string(key) != tc.key {
				t.Errorf("key (err %v)\n got %s\nwant %s", err, key, tc.key)
			}
			value, ok, err := tc.enc.AppendValue(nil, &tc.a)
			if err != nil {
				t.Fatal(err)
			}
			if tc.value == "" {
				if ok {
					t.Errorf("a flat delete must be a tombstone, got %s", value)
				}
				return
			}
			if !ok || string(value) != tc.value {
				t.Errorf("value\n got %s\nwant %s", value, tc.value)
			}
		})
	}
}

// TestApplyEncoderRefusesLoss: a value its column cannot hold fails the encoding.
func TestApplyEncoderRefusesLoss(t *testing.T) {
	a := codecs.Apply{
		Key:    []codecs.TypedColumn{{Name: "id", Value: []byte(`1`)}},
		Fields: []codecs.TypedColumn{{Name: "balance", Value: []byte(`"12.345"`), Type: codecs.ColumnType{Type: codecs.TypeBytes, Name: codecs.NameDecimal, Scale: 2}}},
	}
	if _, _, err := (codecs.ApplyEncoder{Schema: true}).AppendValue(nil, &a); err == nil {
		t.Fatal("12.345 into a decimal of scale 2 was encoded")
	}
}
