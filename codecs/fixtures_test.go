package codecs

import (
	"cmp"
	"path/filepath"
	"strings"
	"testing"
)

// fixtureCase is what one shared Debezium fixture must decode to.
type fixtureCase struct {
	// kinds has one letter per message: c, u, d, r for a change with that op; T
	// tombstone, H heartbeat, B/E transaction begin/end, t truncate, m logical
	// message, P poison.
	kinds string
	// unwrapped is the same under Options{Unwrapped: true}; empty means as kinds.
	unwrapped string
	// check looks at the events (decoded with the default options, or with
	// Unwrapped when those make them poison).
	check func(t *testing.T, evs []Event)
	// key is the expected key row of a *.key.json fixture.
	key string
}

func pg(lsn uint64) Position { return Position{Kind: PosPostgres, A: lsn} }

func mysql(file, pos, row uint64) Position { return Position{Kind: PosMySQL, A: file, B: pos, C: row} }

const (
	anne          = `{"id":1004,"first_name":"Anne","last_name":"Kretchmar","email":"annek@noanswer.org"}`
	anneMarie     = `{"id":1004,"first_name":"Anne Marie","last_name":"Kretchmar","email":"annek@noanswer.org"}`
	pgDocAnne     = `{"id":1,"first_name":"Anne","last_name":"Kretchmar","email":"annek@noanswer.org"}`
	pgDocAnneM    = `{"id":1,"first_name":"Anne Marie","last_name":"Kretchmar","email":"annek@noanswer.org"}`
	hammer16      = `{"id":106,"name":"hammer","description":"16oz carpenter's hammer","weight":1.0}`
	hammer18      = `{"id":106,"name":"hammer","description":"18oz carpenter hammer","weight":1.0}`
	jacketPG      = `{"id":110,"name":"jacket","description":"water resistent white wind breaker","weight":0.2}`
	scooterBigPG  = `{"id":111,"name":"scooter","description":"Big 2-wheel scooter ","weight":5.17}`
	scooterReadPG = `{"id":101,"name":"scooter","description":"Small 2-wheel scooter","weight":3.14}`
	mysqlTxID     = "0e4d5dcd-a33b-11ea-80f1-02010a22a99e:10"
)

// one returns a check of the only event of a fixture.
func one(check func(t *testing.T, ev Event)) func(*testing.T, []Event) {
	return func(t *testing.T, evs []Event) { t.Helper(); check(t, evs[0]) }
}

func checkDBZTestCreate(t *testing.T, ev Event) {
	wantRow(t, "before", ev.Before, "nil")
	wantRow(t, "after", ev.After, anne)
	wantPosition(t, ev.Position, mysql(3, 154, 0))
	if ev.TsMs != 0 || ev.Snapshot || ev.Table != "customers" {
		t.Errorf("TsMs %d, Snapshot %v, Table %q; want 0, false, customers", ev.TsMs, ev.Snapshot, ev.Table)
	}
}

func checkPGFlinkUpdate(t *testing.T, ev Event) {
	wantRow(t, "before (REPLICA IDENTITY FULL)", ev.Before, hammer16)
	wantRow(t, "after", ev.After, hammer18)
	wantPosition(t, ev.Position, pg(34131104))
	if ev.TsMs != 1596010889629 || ev.TsNs != 1596010889629000000 || ev.Snapshot || ev.Table != "products" {
		t.Errorf("TsMs %d, TsNs %d, Snapshot %v, Table %q", ev.TsMs, ev.TsNs, ev.Snapshot, ev.Table)
	}
}

func checkPGFlinkRead(t *testing.T, ev Event) {
	wantRow(t, "after", ev.After, scooterReadPG)
	wantPosition(t, ev.Position, pg(34078720))
	if !ev.Snapshot || ev.TsMs != 1596001099434 {
		t.Errorf("Snapshot %v, TsMs %d; want true, 1596001099434", ev.Snapshot, ev.TsMs)
	}
}

func checkPGFlinkCreate(t *testing.T, ev Event) {
	wantRow(t, "before", ev.Before, "nil")
	wantRow(t, "after", ev.After, jacketPG)
	wantPosition(t, ev.Position, pg(34132560))
}

func checkPGFlinkDelete(t *testing.T, ev Event) {
	wantRow(t, "before", ev.Before, scooterBigPG)
	wantRow(t, "after", ev.After, "nil")
	wantPosition(t, ev.Position, pg(34133800))
}

func checkTxID(id string) func(*testing.T, []Event) {
	return one(func(t *testing.T, ev Event) {
		if ev.TxID != id {
			t.Errorf("TxID = %q, want %q", ev.TxID, id)
		}
	})
}

func checkEnriched(id string) func(*testing.T, []Event) {
	return one(func(t *testing.T, ev Event) {
		if ev.TxID != id {
			t.Errorf("TxID = %q, want %q", ev.TxID, id)
		}
		wantRow(t, "after", ev.After, `{"pk":"2","aa":"1"}`)
		// "source": {} gives no position: the Kafka fallback.
		wantPosition(t, ev.Position, Position{Kind: PosKafka, A: 3, B: 0})
		if ev.TsMs != 0 {
			t.Errorf("TsMs = %d, want 0: the envelope ts_ms is not the commit time", ev.TsMs)
		}
	})
}

// checkIncreasing checks that the positions of evs[from:] strictly increase.
func checkIncreasing(from int) func(*testing.T, []Event) {
	return func(t *testing.T, evs []Event) {
		for i := from + 1; i < len(evs); i++ {
			if c, ok := evs[i].Position.Compare(evs[i-1].Position); !ok || c <= 0 {
				t.Errorf("line %d: position %v does not follow %v", i+1, evs[i].Position, evs[i-1].Position)
			}
		}
	}
}

var fixtureCases = map[string]fixtureCase{
	"heartbeat_constructed.schema.json":         {kinds: "H"},
	"heartbeat_constructed.schemaless.json":     {kinds: "H"},
	"heartbeat_constructed.schema.key.json":     {key: `{"serverName":"dbserver1"}`},
	"heartbeat_constructed.schemaless.key.json": {key: `{"serverName":"dbserver1"}`},

	"mysql_dbztest_create.schema.json":     {kinds: "c", check: one(checkDBZTestCreate)},
	"mysql_dbztest_create.schemaless.json": {kinds: "c", check: one(checkDBZTestCreate)},
	"mysql_dbztest_update.schemaless.json": {kinds: "u", check: one(func(t *testing.T, ev Event) {
		wantColumn(t, ev.Before, "first_name", `"Anne-Marie"`)
		wantRow(t, "after", ev.After, anne)
	})},
	"mysql_doc_create.schema.json": {kinds: "c", check: one(func(t *testing.T, ev Event) {
		wantRow(t, "after", ev.After, anne)
		wantPosition(t, ev.Position, mysql(3, 154, 0))
	})},
	"mysql_doc_update.schema.json": {kinds: "u", check: one(func(t *testing.T, ev Event) {
		wantRow(t, "before", ev.Before, anne)
		wantRow(t, "after", ev.After, anneMarie)
		wantPosition(t, ev.Position, mysql(3, 484, 0))
		if ev.TsMs != 1465581029100 || ev.TsNs != 1465581029100000000 {
			t.Errorf("TsMs %d, TsNs %d", ev.TsMs, ev.TsNs)
		}
	})},
	"mysql_doc_delete.schema.json": {kinds: "d", check: one(func(t *testing.T, ev Event) {
		wantRow(t, "before", ev.Before, anneMarie)
		wantRow(t, "after", ev.After, "nil")
		wantPosition(t, ev.Position, mysql(3, 805, 0))
	})},
	"mysql_doc_delete.schema.tombstone": {kinds: "T"},
	"mysql_doc_truncate.schemaless.json": {kinds: "t", check: one(func(t *testing.T, ev Event) {
		wantPosition(t, ev.Position, mysql(3, 484, 0))
		if ev.Table != "customers" || ev.Before != nil || ev.After != nil {
			t.Errorf("Table %q, Before %v, After %v", ev.Table, ev.Before, ev.After)
		}
	})},
	"mysql_doc_customers_1001.key.json": {key: `{"id":1001}`},
	"mysql_engine301_read.schemaless.json": {kinds: "r", check: one(func(t *testing.T, ev Event) {
		wantRow(t, "after", ev.After, anne)
		wantPosition(t, ev.Position, mysql(3, 797, 0))
		if !ev.Snapshot || ev.TsMs != 1731327511000 || ev.TsNs != 1731327511000000000 {
			t.Errorf("Snapshot %v, TsMs %d, TsNs %d", ev.Snapshot, ev.TsMs, ev.TsNs)
		}
	})},
	"mysql_engine301_update.schemaless.json": {kinds: "u", check: one(func(t *testing.T, ev Event) {
		wantColumn(t, ev.Before, "first_name", `"Sally"`)
		wantColumn(t, ev.After, "first_name", `"Sarah"`)
		wantPosition(t, ev.Position, mysql(3, 1041, 0))
		if ev.TsNs != 1731327659000000000 {
			t.Errorf("TsNs = %d, want exactly 1731327659000000000", ev.TsNs)
		}
	})},
	"mysql_flink111_create.schema.json": {kinds: "c", check: one(func(t *testing.T, ev Event) {
		wantColumn(t, ev.After, "weight", "0.20000000298023224") // a FLOAT column: text kept exactly
		wantPosition(t, ev.Position, mysql(3, 1068, 0))
	})},
	"mysql_flink111_delete.schema.json": {kinds: "d", check: one(func(t *testing.T, ev Event) {
		wantColumn(t, ev.Before, "weight", "5.170000076293945")
		wantPosition(t, ev.Position, mysql(3, 2443, 0))
	})},
	"mysql_flink111_delete.schema.tombstone": {kinds: "T"},
	"mysql_flink111_snapshot.schema.json": {kinds: "c", check: one(func(t *testing.T, ev Event) {
		wantPosition(t, ev.Position, mysql(3, 154, 0))
		if !ev.Snapshot || ev.TsMs != 0 {
			t.Errorf("Snapshot %v, TsMs %d; want a snapshot row with ts_ms 0", ev.Snapshot, ev.TsMs)
		}
	})},
	"mysql_flink111_stream_tail.schema.jsonl": {kinds: "uuccuud", check: checkIncreasing(0)},
	"mysql_flink111_update.schema.json": {kinds: "u", check: one(func(t *testing.T, ev Event) {
		wantColumn(t, ev.After, "weight", "1.0")
		wantPosition(t, ev.Position, mysql(3, 362, 0))
	})},
	"mysql_tutorial_customers_1001.key.json":         {key: `{"id":1001}`},
	"mysql_tutorial_customers_1004.key.json":         {key: `{"id":1004}`},
	"mysql_tutorial_tombstone_legacy_rendering.json": {kinds: "T"},

	"pg_doc_create.schema.json": {kinds: "c", check: one(func(t *testing.T, ev Event) {
		wantRow(t, "after", ev.After, pgDocAnne)
		wantPosition(t, ev.Position, pg(24023128))
		if !ev.Snapshot || ev.TsNs != 1559033904863123000 || ev.Table != "customers" {
			t.Errorf("Snapshot %v (boolean true in the doc), TsNs %d (want exactly 1559033904863123000), Table %q",
				ev.Snapshot, ev.TsNs, ev.Table)
		}
	})},
	"pg_doc_create.schema.key.json": {key: `{"id":"1"}`},
	"pg_doc_update_default.schema.json": {kinds: "u", check: one(func(t *testing.T, ev Event) {
		wantRow(t, "before", ev.Before, `{"id":1}`)
		wantRow(t, "after", ev.After, pgDocAnneM)
		wantPosition(t, ev.Position, pg(24023128))
	})},
	"pg_doc_update_default.schema.key.json": {key: `{"id":"1"}`},
	"pg_doc_delete.schema.json": {kinds: "d", check: one(func(t *testing.T, ev Event) {
		wantRow(t, "before", ev.Before, `{"id":1}`)
		wantPosition(t, ev.Position, pg(46523128))
	})},
	"pg_doc_delete.schema.key.json":  {key: `{"id":"1"}`},
	"pg_doc_delete.schema.tombstone": {kinds: "T"},
	"pg_doc_truncate.schemaless.json": {kinds: "t", check: one(func(t *testing.T, ev Event) {
		wantPosition(t, ev.Position, pg(46523128))
		if ev.Table != "customers" || ev.Op != OpNone {
			t.Errorf("Table %q, Op %q", ev.Table, ev.Op)
		}
	})},
	"pg_doc_message_transactional.schemaless.json": {kinds: "m", check: one(func(t *testing.T, ev Event) {
		wantPosition(t, ev.Position, pg(46523128))
	})},
	"pg_examples214_create.schemaless.json": {kinds: "c", check: one(func(t *testing.T, ev Event) {
		wantRow(t, "after", ev.After, `{"id":1005,"first_name":"Bob","last_name":"Marley","email":"bob@marley.com"}`)
		wantPosition(t, ev.Position, pg(34466480))
		if ev.TsMs != 1733906311010 || ev.Snapshot || ev.TxID != "" {
			t.Errorf("TsMs %d, Snapshot %v, TxID %q", ev.TsMs, ev.Snapshot, ev.TxID)
		}
	})},
	"pg_flink121_create.schema.json":          {kinds: "c", check: one(checkPGFlinkCreate)},
	"pg_flink121_create.schemaless.json":      {kinds: "c", check: one(checkPGFlinkCreate)},
	"pg_flink121_delete_full.schema.json":     {kinds: "d", check: one(checkPGFlinkDelete)},
	"pg_flink121_delete_full.schemaless.json": {kinds: "d", check: one(checkPGFlinkDelete)},
	"pg_flink121_delete_full.tombstone":       {kinds: "T"},
	"pg_flink121_read.schema.json":            {kinds: "r", check: one(checkPGFlinkRead)},
	"pg_flink121_read.schemaless.json":        {kinds: "r", check: one(checkPGFlinkRead)},
	"pg_flink121_stream.schema.jsonl":         {kinds: "rrrrrrrrruuccuud", check: checkIncreasing(8)},
	"pg_flink121_stream.schemaless.jsonl":     {kinds: "rrrrrrrrruuccuud", check: checkIncreasing(8)},
	"pg_flink121_update_full.schema.json":     {kinds: "u", check: one(checkPGFlinkUpdate)},
	"pg_flink121_update_full.schemaless.json": {kinds: "u", check: one(checkPGFlinkUpdate)},
	"pg_pulsar100_update_default.schemaless.json": {kinds: "u", check: one(func(t *testing.T, ev Event) {
		wantRow(t, "before (REPLICA IDENTITY DEFAULT)", ev.Before, "nil")
		wantColumn(t, ev.After, "hash_firstname", `"maxim"`)
		wantPosition(t, ev.Position, pg(24419784))
	})},

	"txn_mysql_doc_begin.json":          {kinds: "B", check: checkTxID(mysqlTxID)},
	"txn_mysql_doc_end.json":            {kinds: "E", check: checkTxID(mysqlTxID)},
	"txn_mysql_doc_enriched_event.json": {kinds: "c", check: checkEnriched(mysqlTxID)},
	"txn_pg_doc_begin.json":             {kinds: "B", check: checkTxID("571:53195829")},
	"txn_pg_doc_end.json":               {kinds: "E", check: checkTxID("571:53195832")},
	"txn_pg_doc_enriched_event.json":    {kinds: "c", check: checkEnriched("571:53195832")},
	"txn_pg_risingwave_begin.json":      {kinds: "B", check: checkTxID("35352:3962948040")},
	"txn_pg_risingwave_end.json":        {kinds: "E", check: checkTxID("35352:3962950064")},

	"unwrap_dbztest_after_only.json": {kinds: "P", unwrapped: "u", check: one(func(t *testing.T, ev Event) {
		wantRow(t, "before", ev.Before, "nil")
		wantRow(t, "after", ev.After, anne)
		wantPosition(t, ev.Position, Position{Kind: PosKafka, A: 3, B: 0})
	})},
	"unwrap_doc_add_fields.json": {kinds: "P", unwrapped: "c", check: one(func(t *testing.T, ev Event) {
		wantRow(t, "after (metadata stripped)", ev.After, `{}`)
		wantPosition(t, ev.Position, pg(123456789))
		if ev.Table != "MY_TABLE" || ev.TsMs != 123456789 {
			t.Errorf("Table %q, TsMs %d", ev.Table, ev.TsMs)
		}
	})},
	"unwrap_doc_delete_rewrite.json": {kinds: "P", unwrapped: "d", check: one(func(t *testing.T, ev Event) {
		wantRow(t, "before", ev.Before, `{"pk":2,"cola":null}`)
		wantRow(t, "after", ev.After, "nil")
	})},
	"unwrap_doc_simple.json": {kinds: "P", unwrapped: "u", check: one(func(t *testing.T, ev Event) {
		wantRow(t, "after", ev.After, `{"field1":"newvalue1","field2":"newvalue2"}`)
	})},
}

// TestDebeziumFixtures decodes every shared fixture with both option sets.
func TestDebeziumFixtures(t *testing.T) {
	seen := map[string]bool{}
	for _, path := range fixtureFiles(t, debeziumDir) {
		name := filepath.Base(path)
		c, ok := fixtureCases[name]
		if !ok {
			t.Errorf("%s has no entry in fixtureCases: add one", name)
			continue
		}
		seen[name] = true
		t.Run(name, func(t *testing.T) { c.run(t, path) })
	}
	for name := range fixtureCases {
		if !seen[name] {
			t.Errorf("fixtureCases names %s, which is not in %s", name, debeziumDir)
		}
	}
}

func (c fixtureCase) run(t *testing.T, path string) {
	payloads := fixtureMessages(t, path)
	if isKeyFile(path) {
		runKeyFixture(t, payloads[0], c.key)
		return
	}
	def := decodeAll(t, Options{}, payloads, c.kinds)
	unw := decodeAll(t, Options{Unwrapped: true}, payloads, cmp.Or(c.unwrapped, c.kinds))
	if c.check == nil {
		return
	}
	if strings.Contains(c.kinds, "P") {
		c.check(t, unw)
	} else {
		c.check(t, def)
	}
}

// runKeyFixture decodes a key fixture on its own and as the key of a tombstone.
func runKeyFixture(t *testing.T, key []byte, want string) {
	t.Helper()
	d := NewDecoder(Options{})
	row, err := d.DecodeKey(key)
	if err != nil {
		t.Fatalf("DecodeKey: %v", err)
	}
	wantRow(t, "key", row, want)
	var ev Event
	if err := d.Decode(Message{Key: key}, &ev); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if ev.Kind != KindTombstone {
		t.Errorf("Kind = %v, want tombstone", ev.Kind)
	}
	wantRow(t, "tombstone key", ev.Key, want)
}

// decodeAll decodes the payloads in order with one decoder, as a consumer would,
// checks their kinds and returns copies of the events.
func decodeAll(t *testing.T, opts Options, payloads [][]byte, kinds string) []Event {
	t.Helper()
	if len(kinds) != len(payloads) {
		t.Fatalf("%d messages, but kinds %q", len(payloads), kinds)
	}
	d := NewDecoder(opts)
	evs := make([]Event, len(payloads))
	for i, p := range payloads {
		var ev Event
		err := d.Decode(Message{Topic: "t", Partition: 3, Offset: int64(i), Value: p}, &ev)
		if kinds[i] == 'P' {
			wantPoison(t, err, "no Debezium envelope", "envelope: unwrapped")
			continue
		}
		if err != nil {
			t.Fatalf("%+v, message %d: %v", opts, i+1, err)
		}
		if got := kindLetter(ev); got != kinds[i] {
			t.Errorf("%+v, message %d: got %c (%v %v), want %c", opts, i+1, got, ev.Kind, ev.Op, kinds[i])
		}
		evs[i] = ev.Clone()
	}
	return evs
}

func kindLetter(ev Event) byte {
	switch ev.Kind {
	case KindChange:
		return byte(ev.Op)
	case KindTombstone:
		return 'T'
	case KindHeartbeat:
		return 'H'
	case KindTxBegin:
		return 'B'
	case KindTxEnd:
		return 'E'
	case KindTruncate:
		return 't'
	case KindMessage:
		return 'm'
	}
	return '?'
}

// TestSchemaAndSchemalessAgree decodes the same PostgreSQL stream captured with and
// without JsonConverter schemas: the events must be identical.
func TestSchemaAndSchemalessAgree(t *testing.T) {
	fixtureFiles(t, debeziumDir) // skips when absent
	with := fixtureMessages(t, filepath.Join(debeziumDir, "pg_flink121_stream.schema.jsonl"))
	without := fixtureMessages(t, filepath.Join(debeziumDir, "pg_flink121_stream.schemaless.jsonl"))
	a := decodeAll(t, Options{}, with, "rrrrrrrrruuccuud")
	b := decodeAll(t, Options{}, without, "rrrrrrrrruuccuud")
	for i := range a {
		if rowJSON(a[i].Before) != rowJSON(b[i].Before) || rowJSON(a[i].After) != rowJSON(b[i].After) ||
			a[i].Position != b[i].Position || a[i].TsMs != b[i].TsMs || a[i].Snapshot != b[i].Snapshot {
			t.Errorf("line %d differs:\n%+v\n%+v", i+1, a[i], b[i])
		}
	}
}
