package pipeline_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
)

// billingWithSchema is billing's create of record id with a Connect schema, as
// Debezium's PostgreSQL connector writes it through JsonConverter with schemas
// enabled: here billing's phone column is a numeric(12,2) (a Decimal of scale 2).
func billingWithSchema(id, phoneBase64 string, lsn, tsMs int64) kafka.Message {
	key := `{"schema":{"type":"struct","optional":false,"name":"billing.public.customers.Key","fields":[{"type":"string","optional":false,"field":"cust_id"}]},"payload":{"cust_id":"` + id + `"}}`
	row := `{"type":"struct","optional":true,"name":"billing.public.customers.Value","field":"%s","fields":[` +
		`{"type":"string","optional":false,"field":"cust_id"},` +
		`{"type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2","connect.decimal.precision":"12"},"field":"phone"},` +
		`{"type":"int64","optional":true,"field":"updated_at"}]}`
	value := `{"schema":{"type":"struct","optional":false,"name":"billing.public.customers.Envelope","fields":[` +
		fmt.Sprintf(row, "before") + `,` + fmt.Sprintf(row, "after") + `,` +
		`{"type":"struct","optional":false,"name":"io.debezium.connector.postgresql.Source","field":"source","fields":[{"type":"string","optional":false,"field":"connector"},{"type":"int64","optional":false,"field":"ts_ms"},{"type":"int64","optional":true,"field":"lsn"}]},` +
		`{"type":"string","optional":false,"field":"op"},{"type":"int64","optional":true,"field":"ts_ms"}]},` +
		`"payload":{"before":null,"after":{"cust_id":"` + id + `","phone":"` + phoneBase64 + `","updated_at":` + strconv.FormatInt(tsMs, 10) + `},` +
		`"source":{"connector":"postgresql","ts_ms":` + strconv.FormatInt(tsMs, 10) + `,"lsn":` + strconv.FormatInt(lsn, 10) + `},"op":"c","ts_ms":` + strconv.FormatInt(tsMs, 10) + `}}`
	return kafka.Message{Key: []byte(key), Value: []byte(value)}
}

// TestAppliesTypedAsTheTargetsColumns: concord learns billing's column types from
// the schemas of billing's own events, types its applies to billing accordingly (a
// Decimal at billing's scale, not crm's text), and still knows them after a restart,
// before billing has sent anything again.
func TestAppliesTypedAsTheTargetsColumns(t *testing.T) {
	e := newEnv(t, 1)
	_, stop := e.start("p1")
	e.produce(billingTopic, billingWithSchema("9", "AJY=", 10, 1_700_000_000_000)) // 1.50
	toCrm := readApplies(t, e.brokers, "contacts.apply.crm", 1)
	if got := string(payload(t, toCrm[0].Value)); !strings.Contains(got, `"phone":"1.5"`) {
		t.Fatalf("create to crm (a text column there): %s", got)
	}
	e.produce(crmTopic,
		change("id", "9", "c", 100, 1_700_000_001_000, map[string]any{"phone": "1.5"}), // the echo
		change("id", "9", "u", 101, 1_700_000_002_000, map[string]any{"phone": "2.25"}),
	)
	toBilling := readApplies(t, e.brokers, "contacts.apply.billing", 1)
	checkDecimalPhone(t, toBilling[0], "AOE=") // 225
	stop()

	e.start("p2")
	e.produce(crmTopic, change("id", "9", "u", 102, 1_700_000_003_000, map[string]any{"phone": "3.5"}))
	toBilling = readApplies(t, e.brokers, "contacts.apply.billing", 2)
	checkDecimalPhone(t, toBilling[1], "AV4=") // 350
}

func checkDecimalPhone(t *testing.T, m kafka.Message, want string) {
	t.Helper()
	var v struct {
		Schema struct {
			Fields []struct {
				Field      string            `json:"field"`
				Type       string            `json:"type"`
				Name       string            `json:"name"`
				Parameters map[string]string `json:"parameters"`
			} `json:"fields"`
		} `json:"schema"`
		Payload map[string]json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(m.Value, &v); err != nil {
		t.Fatal(err)
	}
	for _, f := range v.Schema.Fields {
		if f.Field == "phone" && (f.Type != "bytes" || f.Name != "org.apache.kafka.connect.data.Decimal" || f.Parameters["scale"] != "2") {
			t.Errorf("phone's schema is %+v, want billing's Decimal of scale 2", f)
		}
	}
	if got := string(v.Payload["phone"]); got != `"`+want+`"` {
		t.Errorf("phone = %s, want %q: %s", got, want, m.Value)
	}
}
