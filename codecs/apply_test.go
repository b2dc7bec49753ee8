package codecs_test

import (
	"testing"

	"github.com/concord-sync/concord/codecs"
)

func TestApplyEncoder(t *testing.T) {
	up := codecs.Apply{
		Key:    codecs.Row{{Name: "cust_id", Value: []byte(`"c-1"`)}},
		Fields: codecs.Row{{Name: "notes", Value: []byte(`"hi \"there\""`)}, {Name: "n", Value: []byte(`12.5`)}, {Name: "ok", Value: []byte(`true`)}, {Name: "x", Value: []byte(`null`)}},
		TsMs:   1700000000000,
	}
	del := codecs.Apply{Delete: true, Key: up.Key, TsMs: 1700000000000}
	tests := []struct {
		name       string
		enc        codecs.ApplyEncoder
		a          codecs.Apply
		key, value string // value "" = tombstone
	}{
		{
			"debezium upsert",
			codecs.ApplyEncoder{Name: "contacts"},
			up, `{"cust_id":"c-1"}`,
			`{"before":null,"after":{"cust_id":"c-1","notes":"hi \"there\"","n":12.5,"ok":true,"x":null},"source":{"connector":"concord","name":"contacts","ts_ms":1700000000000},"op":"u","ts_ms":1700000000000}`,
		},
		{
			"debezium delete",
			codecs.ApplyEncoder{Name: "contacts"},
			del, `{"cust_id":"c-1"}`,
			`{"before":{"cust_id":"c-1"},"after":null,"source":{"connector":"concord","name":"contacts","ts_ms":1700000000000},"op":"d","ts_ms":1700000000000}`,
		},
		{
			"flat upsert",
			codecs.ApplyEncoder{Format: codecs.FormatFlat},
			up, `{"cust_id":"c-1"}`,
			`{"cust_id":"c-1","notes":"hi \"there\"","n":12.5,"ok":true,"x":null}`,
		},
		{"flat delete is a tombstone", codecs.ApplyEncoder{Format: codecs.FormatFlat}, del, `{"cust_id":"c-1"}`, ""},
		{
			"flat with schema",
			codecs.ApplyEncoder{Format: codecs.FormatFlat, Schema: true},
			up,
			`{"schema":{"type":"struct","optional":false,"fields":[{"field":"cust_id","type":"string","optional":false}]},"payload":{"cust_id":"c-1"}}`,
			`{"schema":{"type":"struct","optional":false,"fields":[{"field":"cust_id","type":"string","optional":false},{"field":"notes","type":"string","optional":true},{"field":"n","type":"double","optional":true},{"field":"ok","type":"boolean","optional":true},{"field":"x","type":"string","optional":true}]},"payload":{"cust_id":"c-1","notes":"hi \"there\"","n":12.5,"ok":true,"x":null}}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(tc.enc.AppendKey(nil, &tc.a)); got != tc.key {
				t.Errorf("key\n got %s\nwant %s", got, tc.key)
			}
			value, ok := tc.enc.AppendValue(nil, &tc.a)
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
