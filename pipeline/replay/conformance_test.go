package replay_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/concord-sync/concord/config"
	"github.com/concord-sync/concord/internal/world"
	"github.com/concord-sync/concord/pipeline/replay"
)

var update = flag.Bool("update", false, "rewrite the golden files from the current output")

// fixtureDir holds the shared Debezium fixtures (see its SOURCES.md), relative to
// this package's directory.
var fixtureDir = filepath.Join("..", "..", "..", "shared", "testdata", "debezium")

// setup describes a two-system configuration: "inventory", the system the fixtures
// come from, and "mirror", a copy of the same table whose columns are named
// differently. Both key the record on the same canonical field.
type setup struct {
	topic     string // inventory's input topic
	key       string // canonical key field
	mirror    string // mirror's fields: canonical name -> column (YAML flow map)
	authority string // YAML flow map; empty means unmapped_fields: shared
	unwrapped bool   // inventory's values went through ExtractNewRecordState
	// defaultApplyTimeout keeps apply_timeout at its default (15m). Otherwise it is
	// set far beyond any gap in the fixtures: mirror never echoes an apply in these
	// one-system replays, and fixture timestamps jump by hours (from 0 in some
	// Debezium examples), so with the default many applies would end up unconfirmed.
	defaultApplyTimeout bool
}

var (
	products = setup{
		topic: "dbserver1.inventory.products", key: "id",
		mirror:    "{name: product_name}",
		authority: "{name: shared, description: shared, weight: shared}",
	}
	customers = setup{
		topic: "dbserver1.inventory.customers", key: "id",
		mirror:    "{first_name: given_name, email: email_address}",
		authority: "{first_name: shared, last_name: shared, email: shared}",
	}
	// users is the table of the Pulsar example, synced with unmapped_fields: shared.
	users = setup{topic: "foobar.public.users", key: "id", mirror: "{hash_firstname: first_name_hash}"}
	// txnTable is the s1.a table of the transaction metadata examples.
	txnTable = setup{topic: "dbserver1.s1.a", key: "pk", mirror: "{aa: bb}", authority: "{aa: shared}"}
	// flat is the table of the event-flattening examples (keyed on pk).
	flat = setup{topic: "dbserver1.inventory.my_table", key: "pk", mirror: "{field1: field_one}", unwrapped: true}
)

func (s setup) withUnwrapped() setup { s.unwrapped = true; return s }

func (s setup) withDefaultApplyTimeout() setup { s.defaultApplyTimeout = true; return s }

func (s setup) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: conformance\nkafka: {brokers: [localhost:9092]}\nredis: {addr: localhost:6379}\n")
	fmt.Fprintf(&b, "systems:\n  inventory:\n    topic: %s\n    key: [%s]\n", s.topic, s.key)
	if s.unwrapped {
		b.WriteString("    envelope: unwrapped\n")
	}
	fmt.Fprintf(&b, "  mirror:\n    topic: mirror.%s\n    key: [%s]\n    fields: %s\n", s.topic, s.key, s.mirror)
	var resolution []string
	if !s.defaultApplyTimeout {
		resolution = append(resolution, "apply_timeout: 1000000h")
	}
	if s.authority == "" {
		resolution = append(resolution, "unmapped_fields: shared")
	} else {
		fmt.Fprintf(&b, "authority: %s\n", s.authority)
	}
	if len(resolution) > 0 {
		fmt.Fprintf(&b, "resolution: {%s}\n", strings.Join(resolution, ", "))
	}
	return b.String()
}

func (s setup) config(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(s.yaml()))
	if err != nil {
		t.Fatalf("config.Parse:\n%s\n%v", s.yaml(), err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate:\n%s\n%v", s.yaml(), err)
	}
	return cfg
}

// conformanceCase replays fixture messages of system inventory, in order, and lists
// every decision expected, summarised by summary.
//
// An input is a fixture file name (every message of a .jsonl file), "file:N" (line N
// of a .jsonl file), optionally followed by " key:K" where K is a *.key.json fixture
// or literal JSON: the message key.
type conformanceCase struct {
	name  string
	setup setup
	in    []string
	want  []string
	// twice replays the input a second time with the same offsets: every message
	// of the second pass must be a duplicate of its record.
	twice bool
	// poison is a fragment that the error of every poison decision must contain.
	poison string
}

// Applies as the decision summary writes them; the fields are in mirror's columns.
const (
	jacket110  = `{"description":"water resistent white wind breaker","product_name":"jacket","weight":0.2}`
	scooter111 = `{"description":"Big 2-wheel scooter ","product_name":"scooter","weight":5.18}`
	anne1004   = `{"email_address":"annek@noanswer.org","given_name":"Anne","last_name":"Kretchmar"}`
	anne1      = anne1004
	noEnvelope = "no Debezium envelope"
)

var conformanceCases = []conformanceCase{
	// PostgreSQL, REPLICA IDENTITY FULL (Debezium 1.2.1).
	{
		name: "pg snapshot read", setup: products,
		in:   []string{"pg_flink121_read.schema.json"},
		want: []string{`apply 101 inventory>mirror upsert sync {"description":"Small 2-wheel scooter","product_name":"scooter","weight":3.14}`},
	},
	{
		name: "pg snapshot read schemaless", setup: products,
		in:   []string{"pg_flink121_read.schemaless.json"},
		want: []string{`apply 101 inventory>mirror upsert sync {"description":"Small 2-wheel scooter","product_name":"scooter","weight":3.14}`},
	},
	{
		name: "pg create", setup: products,
		in:   []string{"pg_flink121_create.schema.json"},
		want: []string{`apply 110 inventory>mirror upsert sync ` + jacket110},
	},
	{
		name: "pg create schemaless", setup: products,
		in:   []string{"pg_flink121_create.schemaless.json"},
		want: []string{`apply 110 inventory>mirror upsert sync ` + jacket110},
	},
	{
		name: "pg update with full before image after a snapshot read", setup: products,
		in: []string{"pg_flink121_stream.schema.jsonl:6", "pg_flink121_update_full.schema.json"},
		want: []string{
			`apply 106 inventory>mirror upsert sync {"description":"16oz carpenter's hammer","product_name":"hammer","weight":1.0}`,
			`apply 106 inventory>mirror upsert sync {"description":"18oz carpenter hammer"}`,
		},
	},
	{
		name: "pg update with full before image after a snapshot read schemaless", setup: products,
		in: []string{"pg_flink121_stream.schemaless.jsonl:6", "pg_flink121_update_full.schemaless.json"},
		want: []string{
			`apply 106 inventory>mirror upsert sync {"description":"16oz carpenter's hammer","product_name":"hammer","weight":1.0}`,
			`apply 106 inventory>mirror upsert sync {"description":"18oz carpenter hammer"}`,
		},
	},
	{
		name: "pg delete after create, then its tombstone", setup: products,
		in: []string{"pg_flink121_stream.schema.jsonl:13", "pg_flink121_delete_full.schema.json", `pg_flink121_delete_full.tombstone key:{"id":111}`},
		want: []string{
			`apply 111 inventory>mirror upsert sync ` + scooter111,
			`apply 111 inventory>mirror delete sync`,
			`ignored inventory tombstone`,
		},
	},
	{
		name: "pg delete after create schemaless", setup: products,
		in: []string{"pg_flink121_stream.schemaless.jsonl:13", "pg_flink121_delete_full.schemaless.json"},
		want: []string{
			`apply 111 inventory>mirror upsert sync ` + scooter111,
			`apply 111 inventory>mirror delete sync`,
		},
	},
	{
		name: "pg stream", setup: products, twice: true,
		in:   []string{"pg_flink121_stream.schema.jsonl"},
		want: pgStream,
	},
	{
		name: "pg stream schemaless", setup: products, twice: true,
		in:   []string{"pg_flink121_stream.schemaless.jsonl"},
		want: pgStream,
	},
	{
		// With the default apply_timeout, the applies of the snapshot rows 106 and
		// 107, never seen back from mirror, are unconfirmed when their updates come
		// 2.7 hours later: each goes to review and mirror is sent the whole row again.
		name: "pg stream, applies never confirmed", setup: products.withDefaultApplyTimeout(),
		in: []string{"pg_flink121_stream.schemaless.jsonl"},
		want: slices.Concat(pgStream[:9], []string{
			`dlq 106 inventory apply_unconfirmed ["name","description","weight"]`,
			`apply 106 inventory>mirror upsert sync {"description":"18oz carpenter hammer","product_name":"hammer","weight":1.0}`,
			`dlq 107 inventory apply_unconfirmed ["name","description","weight"]`,
			`apply 107 inventory>mirror upsert sync {"description":"box of assorted rocks","product_name":"rocks","weight":5.1}`,
		}, pgStream[11:]),
	},
	{
		// Default REPLICA IDENTITY: no before image, and a record mirror does not
		// have yet, so mirror gets it whole.
		name: "pg update without before image", setup: users,
		in:   []string{"pg_pulsar100_update_default.schemaless.json"},
		want: []string{`apply 1 inventory>mirror upsert sync {"first_name_hash":"maxim","gender":"male","hash_lastname":"292113d30a3ccee0e19733dd7f88b258"}`},
	},
	{
		name: "pg create Debezium 2.1", setup: customers,
		in:   []string{"pg_examples214_create.schemaless.json"},
		want: []string{`apply 1005 inventory>mirror upsert sync {"email_address":"bob@marley.com","given_name":"Bob","last_name":"Marley"}`},
	},

	// PostgreSQL documentation examples (keys in the doc's own, non-JsonConverter shape).
	{
		name: "pg doc create", setup: customers,
		in:   []string{"pg_doc_create.schema.json key:pg_doc_create.schema.key.json"},
		want: []string{`apply 1 inventory>mirror upsert sync ` + anne1},
	},
	{
		// The doc's update carries the create's lsn (24023128): at the same position
		// as an event already processed, it is a duplicate.
		name: "pg doc update at the create's position", setup: customers,
		in: []string{"pg_doc_create.schema.json key:pg_doc_create.schema.key.json", "pg_doc_update_default.schema.json key:pg_doc_update_default.schema.key.json"},
		want: []string{
			`apply 1 inventory>mirror upsert sync ` + anne1,
			`duplicate 1 inventory`,
		},
	},
	{
		// before holds only the key (DEFAULT identity): every column of a record new
		// to concord is changed. Then the delete (before = key only) is propagated.
		name: "pg doc update then delete then tombstone", setup: customers,
		in: []string{
			"pg_doc_update_default.schema.json key:pg_doc_update_default.schema.key.json",
			"pg_doc_delete.schema.json key:pg_doc_delete.schema.key.json",
			"pg_doc_delete.schema.tombstone key:pg_doc_delete.schema.key.json",
		},
		want: []string{
			`apply 1 inventory>mirror upsert sync {"email_address":"annek@noanswer.org","given_name":"Anne Marie","last_name":"Kretchmar"}`,
			`apply 1 inventory>mirror delete sync`,
			`ignored inventory tombstone`,
		},
	},
	{
		name: "pg truncate", setup: customers,
		in:   []string{"pg_doc_truncate.schemaless.json"},
		want: []string{`ignored inventory truncate`},
	},
	{
		name: "pg logical decoding message", setup: customers,
		in:   []string{"pg_doc_message_transactional.schemaless.json"},
		want: []string{`ignored inventory message`},
	},

	// MySQL (Debezium 1.1.1 real capture, binlog positions).
	{
		// Debezium 1.1 snapshot rows have op c.
		name: "mysql snapshot row", setup: products,
		in:   []string{"mysql_flink111_snapshot.schema.json"},
		want: []string{`apply 101 inventory>mirror upsert sync {"description":"Small 2-wheel scooter","product_name":"scooter","weight":3.140000104904175}`},
	},
	{
		name: "mysql create", setup: products,
		in:   []string{"mysql_flink111_create.schema.json"},
		want: []string{`apply 110 inventory>mirror upsert sync {"description":"water resistent white wind breaker","product_name":"jacket","weight":0.20000000298023224}`},
	},
	{
		// An update of a record mirror does not have: mirror gets the whole row.
		name: "mysql update of an unknown record", setup: products,
		in:   []string{"mysql_flink111_update.schema.json"},
		want: []string{`apply 106 inventory>mirror upsert sync {"description":"18oz carpenter hammer","product_name":"hammer","weight":1.0}`},
	},
	{
		name: "mysql delete after create, then its tombstone", setup: products,
		in: []string{"mysql_flink111_stream_tail.schema.jsonl:4", "mysql_flink111_delete.schema.json", `mysql_flink111_delete.schema.tombstone key:{"id":111}`},
		want: []string{
			`apply 111 inventory>mirror upsert sync {"description":"Big 2-wheel scooter ","product_name":"scooter","weight":5.179999828338623}`,
			`apply 111 inventory>mirror delete sync`,
			`ignored inventory tombstone`,
		},
	},
	{
		name: "mysql stream", setup: products, twice: true,
		in:   []string{"mysql_flink111_stream_tail.schema.jsonl"},
		want: mysqlStream,
	},

	// MySQL documentation examples and Debezium's own serde fixtures.
	{
		name: "mysql doc create, update, delete, tombstone", setup: customers,
		in: []string{
			"mysql_doc_create.schema.json key:mysql_tutorial_customers_1004.key.json",
			"mysql_doc_update.schema.json key:mysql_tutorial_customers_1004.key.json",
			"mysql_doc_delete.schema.json key:mysql_tutorial_customers_1004.key.json",
			"mysql_doc_delete.schema.tombstone key:mysql_tutorial_customers_1004.key.json",
		},
		want: []string{
			`apply 1004 inventory>mirror upsert sync ` + anne1004,
			`apply 1004 inventory>mirror upsert sync {"given_name":"Anne Marie"}`,
			`apply 1004 inventory>mirror delete sync`,
			`ignored inventory tombstone`,
		},
	},
	{
		name: "mysql truncate", setup: customers,
		in:   []string{"mysql_doc_truncate.schemaless.json"},
		want: []string{`ignored inventory truncate`},
	},
	{
		name: "mysql serde create", setup: customers,
		in:   []string{"mysql_dbztest_create.schema.json"},
		want: []string{`apply 1004 inventory>mirror upsert sync ` + anne1004},
	},
	{
		// The serde update fixture reuses the create's binlog position: a duplicate.
		name: "mysql serde create then update at the same position", setup: customers,
		in:   []string{"mysql_dbztest_create.schemaless.json", "mysql_dbztest_update.schemaless.json"},
		want: []string{`apply 1004 inventory>mirror upsert sync ` + anne1004, `duplicate 1004 inventory`},
	},
	{
		name: "mysql serde update alone", setup: customers,
		in:   []string{"mysql_dbztest_update.schemaless.json"},
		want: []string{`apply 1004 inventory>mirror upsert sync ` + anne1004},
	},
	{
		name: "mysql engine snapshot read", setup: customers,
		in:   []string{"mysql_engine301_read.schemaless.json"},
		want: []string{`apply 1004 inventory>mirror upsert sync ` + anne1004},
	},
	{
		name: "mysql engine update with doc key", setup: customers,
		in:   []string{"mysql_engine301_update.schemaless.json key:mysql_doc_customers_1001.key.json"},
		want: []string{`apply 1001 inventory>mirror upsert sync {"email_address":"sally.thomas@acme.com","given_name":"Sarah","last_name":"Thomas"}`},
	},
	{
		name: "mysql engine update with tutorial key", setup: customers,
		in:   []string{"mysql_engine301_update.schemaless.json key:mysql_tutorial_customers_1001.key.json"},
		want: []string{`apply 1001 inventory>mirror upsert sync {"email_address":"sally.thomas@acme.com","given_name":"Sarah","last_name":"Thomas"}`},
	},
	{
		name: "legacy tombstone rendering", setup: customers,
		in:   []string{"mysql_tutorial_tombstone_legacy_rendering.json key:mysql_tutorial_customers_1004.key.json"},
		want: []string{`ignored inventory tombstone`},
	},

	// Heartbeats and transaction metadata: acknowledged, no output.
	{
		name: "heartbeat", setup: customers,
		in:   []string{"heartbeat_constructed.schema.json key:heartbeat_constructed.schema.key.json"},
		want: []string{`ignored inventory heartbeat`},
	},
	{
		name: "heartbeat schemaless", setup: customers,
		in:   []string{"heartbeat_constructed.schemaless.json key:heartbeat_constructed.schemaless.key.json"},
		want: []string{`ignored inventory heartbeat`},
	},
	{
		name: "pg transaction", setup: txnTable,
		in: []string{"txn_pg_doc_begin.json", "txn_pg_doc_enriched_event.json", "txn_pg_doc_end.json"},
		want: []string{
			`ignored inventory transaction_begin`,
			`apply 2 inventory>mirror upsert sync {"bb":"1"}`,
			`ignored inventory transaction_end`,
		},
	},
	{
		name: "mysql transaction", setup: txnTable,
		in: []string{"txn_mysql_doc_begin.json", "txn_mysql_doc_enriched_event.json", "txn_mysql_doc_end.json"},
		want: []string{
			`ignored inventory transaction_begin`,
			`apply 2 inventory>mirror upsert sync {"bb":"1"}`,
			`ignored inventory transaction_end`,
		},
	},
	{
		name: "pg transaction markers from embedded Debezium", setup: txnTable,
		in:   []string{"txn_pg_risingwave_begin.json", "txn_pg_risingwave_end.json"},
		want: []string{`ignored inventory transaction_begin`, `ignored inventory transaction_end`},
	},

	// ExtractNewRecordState output: poison unless the system says envelope: unwrapped.
	{
		name: "unwrapped rows under the debezium envelope", setup: customers, poison: noEnvelope,
		in: []string{
			"unwrap_dbztest_after_only.json", "unwrap_doc_simple.json",
			"unwrap_doc_add_fields.json", "unwrap_doc_delete_rewrite.json",
		},
		want: []string{`poison inventory`, `poison inventory`, `poison inventory`, `poison inventory`},
	},
	{
		name: "unwrapped row", setup: customers.withUnwrapped(),
		in:   []string{"unwrap_dbztest_after_only.json"},
		want: []string{`apply 1004 inventory>mirror upsert sync ` + anne1004},
	},
	{
		// The flattened row has no key column: the record comes from the message key.
		// The rewritten delete (__deleted) of the same record is then propagated.
		name: "unwrapped row, then its rewritten delete", setup: flat,
		in: []string{`unwrap_doc_simple.json key:{"pk":2}`, `unwrap_doc_delete_rewrite.json key:{"pk":2}`},
		want: []string{
			`apply 2 inventory>mirror upsert sync {"field2":"newvalue2","field_one":"newvalue1"}`,
			`apply 2 inventory>mirror delete sync`,
		},
	},
	{
		// Only metadata columns: a create of a record nobody else has still creates
		// it (with its key only) in the other system.
		name: "unwrapped row of metadata only", setup: flat,
		in:   []string{`unwrap_doc_add_fields.json key:{"pk":3}`},
		want: []string{`apply 3 inventory>mirror upsert sync`},
	},
}

// pgStream is what the PostgreSQL capture decides: nine snapshot rows created in
// mirror, then u(106), u(107), c(110), c(111), u(110), u(111), d(111), each update
// carrying only the columns its full before image shows changed.
var pgStream = []string{
	`apply 101 inventory>mirror upsert sync {"description":"Small 2-wheel scooter","product_name":"scooter","weight":3.14}`,
	`apply 102 inventory>mirror upsert sync {"description":"12V car battery","product_name":"car battery","weight":8.1}`,
	`apply 103 inventory>mirror upsert sync {"description":"12-pack of drill bits with sizes ranging from #40 to #3","product_name":"12-pack drill bits","weight":0.8}`,
	`apply 104 inventory>mirror upsert sync {"description":"12oz carpenter's hammer","product_name":"hammer","weight":0.75}`,
	`apply 105 inventory>mirror upsert sync {"description":"14oz carpenter's hammer","product_name":"hammer","weight":0.875}`,
	`apply 106 inventory>mirror upsert sync {"description":"16oz carpenter's hammer","product_name":"hammer","weight":1.0}`,
	`apply 107 inventory>mirror upsert sync {"description":"box of assorted rocks","product_name":"rocks","weight":5.3}`,
	`apply 108 inventory>mirror upsert sync {"description":"water resistent black wind breaker","product_name":"jacket","weight":0.1}`,
	`apply 109 inventory>mirror upsert sync {"description":"24 inch spare tire","product_name":"spare tire","weight":22.2}`,
	`apply 106 inventory>mirror upsert sync {"description":"18oz carpenter hammer"}`,
	`apply 107 inventory>mirror upsert sync {"weight":5.1}`,
	`apply 110 inventory>mirror upsert sync ` + jacket110,
	`apply 111 inventory>mirror upsert sync ` + scooter111,
	`apply 110 inventory>mirror upsert sync {"description":"new water resistent white wind breaker","weight":0.5}`,
	`apply 111 inventory>mirror upsert sync {"weight":5.17}`,
	`apply 111 inventory>mirror delete sync`,
}

// mysqlStream is what the MySQL streaming tail decides: the first two updates touch
// records mirror does not have (it gets them whole), then c, c, u, u, d as for PostgreSQL.
var mysqlStream = []string{
	`apply 106 inventory>mirror upsert sync {"description":"18oz carpenter hammer","product_name":"hammer","weight":1.0}`,
	`apply 107 inventory>mirror upsert sync {"description":"box of assorted rocks","product_name":"rocks","weight":5.099999904632568}`,
	`apply 110 inventory>mirror upsert sync {"description":"water resistent white wind breaker","product_name":"jacket","weight":0.20000000298023224}`,
	`apply 111 inventory>mirror upsert sync {"description":"Big 2-wheel scooter ","product_name":"scooter","weight":5.179999828338623}`,
	`apply 110 inventory>mirror upsert sync {"description":"new water resistent white wind breaker","weight":0.5}`,
	`apply 111 inventory>mirror upsert sync {"weight":5.170000076293945}`,
	`apply 111 inventory>mirror delete sync`,
}

// TestConformance replays every shared Debezium fixture through the resolver and
// checks each decision.
func TestConformance(t *testing.T) {
	files := fixtureFiles(t)
	used := map[string]bool{}
	for _, c := range conformanceCases {
		t.Run(c.name, func(t *testing.T) {
			input := c.input(t, used)
			got := replayAll(t, c.setup.config(t), input)
			c.check(t, got)
			if c.twice {
				checkSecondPass(t, c.setup.config(t), input, got)
			}
		})
	}
	for _, f := range files {
		if !used[f] {
			t.Errorf("fixture %s is used by no conformance case: add one", f)
		}
	}
}

func (c conformanceCase) check(t *testing.T, got []decision) {
	t.Helper()
	summaries := make([]string, len(got))
	for i, d := range got {
		summaries[i] = d.summary()
		d.checkShape(t, c.poison)
	}
	if !slices.Equal(summaries, c.want) {
		t.Errorf("decisions:\n%s\nwant:\n%s", strings.Join(summaries, "\n"), strings.Join(c.want, "\n"))
	}
}

// checkSecondPass replays the input twice in one run: the first pass must decide as
// before and every message of the second must be a duplicate of its record.
func checkSecondPass(t *testing.T, cfg *config.Config, input []string, first []decision) {
	t.Helper()
	if len(first) != len(input) {
		t.Fatalf("want one decision per message in the first pass, got %d for %d messages", len(first), len(input))
	}
	got := replayAll(t, cfg, append(slices.Clone(input), input...))
	if len(got) != 2*len(input) {
		t.Fatalf("two passes of %d messages gave %d decisions, want %d", len(input), len(got), 2*len(input))
	}
	for i, d := range got[:len(input)] {
		if d.summary() != first[i].summary() {
			t.Errorf("first pass, message %d: %s, want %s", i+1, d.summary(), first[i].summary())
		}
	}
	for i, d := range got[len(input):] {
		if want := "duplicate " + first[i].Record + " inventory"; d.summary() != want {
			t.Errorf("second pass, message %d: %s, want %s", i+1, d.summary(), want)
		}
	}
}

// input builds the replay lines of the case, marking the fixtures it reads as used.
func (c conformanceCase) input(t *testing.T, used map[string]bool) []string {
	t.Helper()
	var lines []string
	for _, ref := range c.in {
		value, keyRef, _ := strings.Cut(ref, " key:")
		file, lineNo := value, 0
		if f, n, ok := strings.Cut(value, ".jsonl:"); ok {
			file = f + ".jsonl"
			if _, err := fmt.Sscan(n, &lineNo); err != nil {
				t.Fatalf("bad reference %q", ref)
			}
		}
		used[file] = true
		key := []byte("null")
		switch {
		case keyRef == "":
		case strings.HasSuffix(keyRef, ".key.json"):
			used[keyRef] = true
			key = fixtureMessages(t, keyRef)[0]
		default:
			key = []byte(keyRef)
		}
		values := fixtureMessages(t, file)
		if lineNo > 0 {
			values = values[lineNo-1 : lineNo]
		}
		for _, v := range values {
			lines = append(lines, replayLine(t, "inventory", int64(len(lines)), key, v))
		}
	}
	return lines
}

// replayLine wraps a message as a replay input line (DESIGN.md section 8); a nil
// value is a tombstone.
func replayLine(t *testing.T, system string, offset int64, key, value []byte) string {
	t.Helper()
	if value == nil {
		value = []byte("null")
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"system":%q,"partition":0,"offset":%d,"key":`, system, offset)
	compact(t, &b, key)
	b.WriteString(`,"value":`)
	compact(t, &b, value)
	b.WriteByte('}')
	return b.String()
}

// compact appends a fixture's JSON on one line, numbers and strings kept as they are.
func compact(t *testing.T, b *bytes.Buffer, fixture []byte) {
	t.Helper()
	if err := json.Compact(b, fixture); err != nil {
		t.Fatalf("fixture is not JSON: %v", err)
	}
}

// decision is one output line of replay.
type decision struct {
	Kind    string          `json:"kind"`
	Record  string          `json:"record"`
	System  string          `json:"system"`
	Target  string          `json:"target"`
	Op      string          `json:"op"`
	Fields  json.RawMessage `json:"fields"`
	Field   string          `json:"field"`
	Winner  string          `json:"winner"`
	Origin  string          `json:"origin"`
	Rule    string          `json:"rule"`
	Reason  string          `json:"reason"`
	EventID string          `json:"event_id"`
	Error   string          `json:"error"`
	// DLQ entries.
	EntryID  string          `json:"entry_id"`
	Versions json.RawMessage `json:"versions"`
	Base     json.RawMessage `json:"base"`
}

// summary renders a decision the way conformance cases list them.
func (d decision) summary() string {
	switch d.Kind {
	case "apply":
		s := fmt.Sprintf("apply %s %s>%s %s %s", d.Record, d.System, d.Target, d.Op, d.Rule)
		if d.Origin != d.System {
			s += " origin=" + d.Origin
		}
		if f := sortedJSON(d.Fields); f != "{}" && f != "" {
			s += " " + f
		}
		return s
	case "ignored":
		return "ignored " + d.System + " " + d.Reason
	case "poison":
		return "poison " + d.System
	case "duplicate", "echo":
		return d.Kind + " " + d.Record + " " + d.System
	case "skip":
		return fmt.Sprintf("skip %s %s %s %s", d.Record, d.System, d.Field, d.Reason)
	case "conflict":
		return fmt.Sprintf("conflict %s %s %s winner=%s %s", d.Record, d.System, d.Rule, d.Winner, d.Fields)
	default:
		return fmt.Sprintf("%s %s %s %s %s", d.Kind, d.Record, d.System, d.Reason, d.Fields)
	}
}

var eventID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// checkShape checks what every decision of its kind must carry.
func (d decision) checkShape(t *testing.T, poisonFragment string) {
	t.Helper()
	switch d.Kind {
	case "apply":
		if !eventID.MatchString(d.EventID) || d.Target == d.System || d.Record == "" {
			t.Errorf("apply needs a 32-hex event_id, a record and another system as target: %+v", d)
		}
		if d.Op == "delete" && sortedJSON(d.Fields) != "{}" && len(d.Fields) > 0 {
			t.Errorf("a delete apply carries fields %s", d.Fields)
		}
	case "poison":
		if d.Error == "" || !strings.Contains(d.Error, poisonFragment) {
			t.Errorf("poison error %q, want one containing %q", d.Error, poisonFragment)
		}
	}
}

// sortedJSON re-encodes a JSON object with sorted keys; other JSON is returned as is.
func sortedJSON(raw json.RawMessage) string {
	var m map[string]json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &m) != nil {
		return string(raw)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return string(raw)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// replayAll runs the lines through a new replayer and returns its decisions. It runs
// them twice, in two replayers, to check that the output is deterministic.
func replayAll(t *testing.T, cfg *config.Config, lines []string) []decision {
	t.Helper()
	out := runReplay(t, cfg, lines)
	if again := runReplay(t, cfg, lines); !bytes.Equal(out, again) {
		t.Errorf("replay is not deterministic:\n%s\nthen:\n%s", out, again)
	}
	var ds []decision
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	for dec.More() {
		var d decision
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("output line %d: %v\n%s", len(ds)+1, err, out)
		}
		ds = append(ds, d)
	}
	return ds
}

func runReplay(t *testing.T, cfg *config.Config, lines []string) []byte {
	t.Helper()
	var buf bytes.Buffer
	r, err := replay.New(cfg, &buf)
	if err != nil {
		t.Fatalf("replay.New: %v", err)
	}
	if err := r.Run(strings.NewReader(strings.Join(lines, "\n") + "\n")); err != nil {
		t.Fatalf("Run: %v\ninput:\n%s", err, strings.Join(lines, "\n"))
	}
	return buf.Bytes()
}

// fixtureFiles lists the fixture files (SOURCES.md aside), skipping the test when the
// shared fixtures are absent.
func fixtureFiles(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(fixtureDir)
	if errors.Is(err, os.ErrNotExist) {
		t.Logf("shared Debezium fixtures not found at %s (expected beside the repository)", fixtureDir)
		t.Skip("no fixtures")
	}
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		if !e.IsDir() && !strings.HasSuffix(e.Name(), ".md") {
			files = append(files, e.Name())
		}
	}
	return files
}

// fixtureMessages reads a fixture as the payloads it stands for: one per line of a
// .jsonl file, one nil payload for a .tombstone file, the whole content of a .json file.
func fixtureMessages(t *testing.T, name string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case strings.HasSuffix(name, ".tombstone"):
		if len(b) != 0 {
			t.Fatalf("%s: a tombstone fixture must be empty", name)
		}
		return [][]byte{nil}
	case strings.HasSuffix(name, ".jsonl"):
		var msgs [][]byte
		for line := range bytes.Lines(b) {
			if line = bytes.TrimSpace(line); len(line) > 0 {
				msgs = append(msgs, line)
			}
		}
		return msgs
	default:
		return [][]byte{b}
	}
}

// TestGolden replays the shipped example exactly as `concord replay --config
// testdata/config/example.yaml --input testdata/replay/example.jsonl` does (and with
// --messages) and compares the output with testdata/replay/example.golden.jsonl (and
// example.messages.golden.jsonl). Run with -update to rewrite them.
func TestGolden(t *testing.T) {
	for _, c := range []struct {
		messages bool
		golden   string
	}{
		{false, "../../testdata/replay/example.golden.jsonl"},
		{true, "../../testdata/replay/example.messages.golden.jsonl"},
	} {
		got := replayExample(t, c.messages)
		if *update {
			if err := os.WriteFile(c.golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(c.golden)
		if err != nil {
			t.Fatalf("%v (run go test -run TestGolden -update to create it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("replay output differs from %s (if the change is intended, rerun with -update and review the diff):\ngot:\n%s\nwant:\n%s",
				c.golden, got, want)
		}
	}
}

func replayExample(t *testing.T, messages bool) []byte {
	t.Helper()
	cfg, err := config.Load("../../testdata/config/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open("../../testdata/replay/example.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = in.Close() }()
	var got bytes.Buffer
	r, err := replay.New(cfg, &got)
	if err != nil {
		t.Fatal(err)
	}
	r.Messages = messages
	if err := r.Run(in); err != nil {
		t.Fatal(err)
	}
	return got.Bytes()
}

// TestMessagesAreWhatTheSinksRead: with --messages every apply line is a message the
// target's JDBC sink reads as the decision says (world.DecodeApply models the sink's
// record_key reading), and the lines match the decisions one for one: an apply
// message per apply decision, an audit message per conflict, review entry and
// authority skip, a poison message per poison decision.
func TestMessagesAreWhatTheSinksRead(t *testing.T) {
	cfg, err := config.Load("../../testdata/config/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var decisions []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(replayExample(t, false)), []byte("\n")) {
		var d map[string]any
		if err := json.Unmarshal(line, &d); err != nil {
			t.Fatal(err)
		}
		decisions = append(decisions, d)
	}
	var want []string
	for _, d := range decisions {
		switch {
		case d["kind"] == "apply":
			target, _ := d["target"].(string)
			want = append(want, cfg.Systems[target].Apply.Topic)
		case d["kind"] == "conflict", d["kind"] == "dlq" && d["reason"] != "apply_unconfirmed" && d["reason"] != "loop",
			d["kind"] == "skip" && d["reason"] == "not_authoritative":
			want = append(want, "contacts.audit")
		case d["kind"] == "poison":
			want = append(want, "contacts.poison")
		}
	}
	var got []string
	for _, line := range bytes.Split(bytes.TrimSpace(replayExample(t, true)), []byte("\n")) {
		var m replay.MessageLine
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatal(err)
		}
		got = append(got, m.Topic)
		for name, s := range cfg.Systems {
			if m.Topic != s.Apply.Topic {
				continue
			}
			value := []byte(m.Value)
			if string(value) == "null" {
				value = nil
			}
			if _, err := world.DecodeApply(s.Apply.Format, s.Column(s.Key[0]), m.Key, value); err != nil {
				t.Errorf("the apply to %s is not what its sink reads: %v\n%s", name, err, line)
			}
			if m.Headers["concord.event_id"] == "" || m.Headers["concord.origin"] == "" {
				t.Errorf("apply without concord headers: %s", line)
			}
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("message topics %q, want %q (one per decision that produces one)", got, want)
	}
}
