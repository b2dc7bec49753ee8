package sim

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zaptest"

	"github.com/concord-sync/concord/codecs"
	"github.com/concord-sync/concord/internal/world"
)

func crmSpec() SystemSpec {
	return SystemSpec{
		Name: "crm", Topic: "crm.public.contacts", ApplyTopic: "contacts.apply.crm",
		KeyColumn: "id", Columns: map[string]string{"email": "email_address"},
		Owns: []string{"name", "email"}, Shared: []string{"notes"},
	}
}

func billingSpec() SystemSpec {
	return SystemSpec{
		Name: "billing", Topic: "billing.public.customers", ApplyTopic: "contacts.apply.billing",
		ApplyFormat: FormatFlat, KeyColumn: "cust_id", Columns: map[string]string{"name": "full_name"},
		TimestampColumn: "updated_at", FullBefore: true,
		Owns: []string{"payment_status"}, Shared: []string{"notes"},
	}
}

func TestValidate(t *testing.T) {
	ok := Config{Brokers: []string{"b:9092"}, Systems: []SystemSpec{crmSpec(), billingSpec()}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	tests := map[string]func(c *Config){
		"no brokers":     func(c *Config) { c.Brokers = nil },
		"no systems":     func(c *Config) { c.Systems = nil },
		"duplicate name": func(c *Config) { c.Systems[1].Name = "crm" },
		"bad format":     func(c *Config) { c.Systems[0].ApplyFormat = "avro" },
		"apply = topic":  func(c *Config) { c.Systems[0].ApplyTopic = c.Systems[0].Topic },
		"ratios over 1":  func(c *Config) { c.ConcurrentRatio, c.DeleteRatio = 0.7, 0.5 },
		"negative rate":  func(c *Config) { c.Rate = -1 },
		"field on key":   func(c *Config) { c.Systems[0].Columns["name"] = "id" },
		"field twice":    func(c *Config) { c.Systems[0].Shared = []string{"name"} },
		"ts is key":      func(c *Config) { c.Systems[1].TimestampColumn = "cust_id" },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			c := ok
			c.Systems = []SystemSpec{crmSpec(), billingSpec()}
			mutate(&c)
			err := c.Validate()
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("Validate = %v, want ErrConfig", err)
			}
			if _, err := New(c, zaptest.NewLogger(t)); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
}

// TestChangeEvents checks the change events of user edits: the Debezium shape,
// per-partition LSN order, tombstones after deletes, before images, the clock skew
// and the timestamp column, and that replaying the stream gives the table.
func TestChangeEvents(t *testing.T) {
	t.Parallel()
	for _, full := range []bool{false, true} {
		t.Run("full_before="+strconv.FormatBool(full), func(t *testing.T) {
			t.Parallel()
			spec := crmSpec()
			spec.FullBefore = full
			if full {
				spec.TimestampColumn, spec.Skew = "updated_at", 1500*time.Millisecond
			}
			brokers := newCluster(t, spec.Topic, spec.ApplyTopic)
			s := startSim(t, Config{Brokers: brokers, Systems: []SystemSpec{spec}, Records: 10, Rate: 4000, DeleteRatio: 0.2, Seed: 1})
			await(t, "300 edits", func() bool { return s.Stats().Systems["crm"].Edits >= 300 })
			s.StopEditing()
			await(t, "every change published", func() bool { return s.Quiet(0) })

			st := s.Stats().Systems["crm"]
			if st.Published != st.Edits || st.Tombstones != st.Deletes || st.Creates == 0 || st.Deletes == 0 {
				t.Fatalf("stats %+v: want Published = Edits, Tombstones = Deletes, some creates and deletes", st)
			}
			recs := consume(t, brokers, spec.Topic, int(st.Published+st.Tombstones))
			replayed := checkStream(t, spec, recs)
			if got := s.Rows("crm"); !reflect.DeepEqual(got, replayed) {
				t.Fatalf("Rows differ from the replayed stream:\n rows %v\n replayed %v", got, replayed)
			}
		})
	}
}

// checkStream checks a system's change stream and returns the table it describes,
// in canonical field names without key and timestamp columns.
func checkStream(t *testing.T, spec SystemSpec, recs []*kgo.Record) map[string]map[string]string {
	t.Helper()
	lastLSN := map[int32]int64{}
	after := map[string]map[string]json.RawMessage{} // key -> last after image
	deleted := map[string]bool{}                     // key -> last event was a delete
	for _, r := range recs {
		var key map[string]string
		if err := json.Unmarshal(payloadOf(r.Key), &key); err != nil || len(key) != 1 || key[spec.KeyColumn] == "" {
			t.Fatalf("key %s: want {%q: id}", r.Key, spec.KeyColumn)
		}
		id := key[spec.KeyColumn]
		if r.Value == nil {
			if !deleted[id] {
				t.Fatalf("tombstone of %s does not follow its delete", id)
			}
			deleted[id] = false
			continue
		}
		if deleted[id] {
			t.Fatalf("delete of %s is not followed by a tombstone", id)
		}
		ev := decodeEvent(t, r)
		src := ev.Source
		if src.Connector != "postgresql" || src.Name != spec.Name || src.DB != spec.Name || src.Snapshot != "false" ||
			src.Version != world.DebeziumVersion || src.Schema != "public" || src.Table != "contacts" || string(ev.Transaction) != "null" {
			t.Fatalf("source block %+v", src)
		}
		if src.LSN <= lastLSN[r.Partition] {
			t.Fatalf("partition %d: lsn %d after %d", r.Partition, src.LSN, lastLSN[r.Partition])
		}
		lastLSN[r.Partition] = src.LSN
		if skew := src.TsMs - ev.TsMs; skew != spec.Skew.Milliseconds() {
			t.Fatalf("source.ts_ms - ts_ms = %d, want the skew %d", skew, spec.Skew.Milliseconds())
		}
		prev, exists := after[id]
		switch ev.Op {
		case "c":
			if exists || ev.Before != nil {
				t.Fatalf("create of %s: exists %v, before %s", id, exists, ev.Before)
			}
		case "u", "d":
			if !exists {
				t.Fatalf("%s of missing record %s", ev.Op, id)
			}
			checkBefore(t, spec, ev, prev, id)
		default:
			t.Fatalf("op %q", ev.Op)
		}
		if ev.Op == "d" {
			delete(after, id)
			deleted[id] = true
			continue
		}
		if string(ev.After[spec.KeyColumn]) != strconv.Quote(id) {
			t.Fatalf("after image %v does not carry key %s", ev.After, id)
		}
		if tc := spec.TimestampColumn; tc != "" && string(ev.After[tc]) != strconv.FormatInt(src.TsMs, 10) {
			t.Fatalf("%s = %s, want source.ts_ms %d", tc, ev.After[tc], src.TsMs)
		}
		after[id] = ev.After
	}
	fieldOf := newTable(spec).fieldOf
	out := map[string]map[string]string{}
	for id, img := range after {
		out[id] = map[string]string{}
		for col, v := range img {
			if col == spec.KeyColumn || col == spec.TimestampColumn {
				continue
			}
			if f, ok := fieldOf[col]; ok {
				col = f
			}
			out[id][col] = string(v)
		}
	}
	return out
}

func checkBefore(t *testing.T, spec SystemSpec, ev event, prev map[string]json.RawMessage, id string) {
	t.Helper()
	var want map[string]json.RawMessage
	switch {
	case spec.FullBefore:
		want = prev
	case ev.Op == "d":
		want = map[string]json.RawMessage{spec.KeyColumn: json.RawMessage(strconv.Quote(id))}
	}
	if !reflect.DeepEqual(ev.Before, want) {
		t.Fatalf("%s of %s: before %v, want %v", ev.Op, id, ev.Before, want)
	}
}

// TestSinkWrites drives a system's sink with hand-made applies in each format.
func TestSinkWrites(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		format string
		schema bool
	}{{FormatFlat, true}, {FormatDebezium, true}} {
		t.Run(tc.format+"_schema="+strconv.FormatBool(tc.schema), func(t *testing.T) {
			t.Parallel()
			spec := billingSpec()
			spec.ApplyFormat = tc.format
			brokers := newCluster(t, spec.Topic, spec.ApplyTopic)
			s := startSim(t, Config{Brokers: brokers, Systems: []SystemSpec{spec}})
			enc := codecs.ApplyEncoder{Format: tc.format, Schema: tc.schema, Name: "test"}
			apply := func(id string, del bool, fields ...string) *kgo.Record {
				a := codecs.Apply{Delete: del, Key: []codecs.TypedColumn{{Name: "cust_id", Value: []byte(strconv.Quote(id))}}, TsMs: 1}
				for i := 0; i < len(fields); i += 2 {
					a.Fields = append(a.Fields, codecs.TypedColumn{Name: fields[i], Value: []byte(fields[i+1])})
				}
				key, err := enc.AppendKey(nil, &a)
				if err != nil {
					t.Fatal(err)
				}
				r := &kgo.Record{Topic: spec.ApplyTopic, Key: key}
				v, ok, err := enc.AppendValue(nil, &a)
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					r.Value = v
				}
				return r
			}
			produce(t, brokers,
				apply("r-1", false, "email", `"ann@example.com"`, "full_name", `"Ann"`),
				apply("r-1", false, "notes", `"n1"`),
				apply("r-1", false, "notes", `"n1"`), // unchanged: still an update event
				apply("r-2", true),                   // missing row: no event
				apply("r-3", false, "extra", "42"),   // a column billing does not know
				apply("r-1", true),
			)
			await(t, "6 applies consumed and 5 events published", func() bool {
				st := s.Stats().Systems["billing"]
				return st.Applies == 6 && st.Published == 5 && st.Tombstones == 1
			})
			st := s.Stats().Systems["billing"]
			if want := (SystemStats{Published: 5, Tombstones: 1, Applies: 6, SinkWrites: 5, SinkNoops: 1}); st != want {
				t.Fatalf("stats %+v, want %+v", st, want)
			}

			recs := consume(t, brokers, spec.Topic, 6)
			var ops []string
			var stamps []int64
			for _, r := range recs {
				if string(payloadOf(r.Key)) == `{"cust_id":"r-3"}` {
					if ev := decodeEvent(t, r); ev.Op != "c" || string(ev.After["extra"]) != "42" {
						t.Fatalf("r-3: %s", r.Value)
					}
					continue
				}
				if r.Value == nil {
					ops = append(ops, "tombstone")
					continue
				}
				ev := decodeEvent(t, r)
				ops = append(ops, ev.Op)
				if ev.Op != "d" {
					stamp, _ := strconv.ParseInt(string(ev.After["updated_at"]), 10, 64)
					stamps = append(stamps, stamp)
				}
				if ev.Op == "u" && string(ev.Before["email"]) != `"ann@example.com"` {
					t.Fatalf("update without the full before image: %s", r.Value)
				}
			}
			if want := []string{"c", "u", "u", "d", "tombstone"}; !reflect.DeepEqual(ops, want) {
				t.Fatalf("r-1 events %v, want %v", ops, want)
			}
			for i, stamp := range stamps {
				if stamp == 0 || (i > 0 && stamp < stamps[i-1]) {
					t.Fatalf("updated_at not bumped on every write: %v", stamps)
				}
			}

			// The sink inserted r-3 with only the column it was sent: every other
			// column of the table is NULL.
			want := map[string]map[string]string{"r-3": {"email": "null", "name": "null", "notes": "null", "payment_status": "null", "extra": "42"}}
			rows := s.Rows("billing")
			if !reflect.DeepEqual(rows, want) {
				t.Fatalf("Rows = %v, want %v", rows, want)
			}
			rows["r-3"]["extra"] = "43"
			if got := s.Rows("billing"); !reflect.DeepEqual(got, want) {
				t.Fatalf("Rows shares memory with the table: %v", got)
			}
			if s.Quiet(time.Hour) {
				t.Fatal("Quiet(1h) right after applies")
			}
			await(t, "quiet", func() bool { return s.Quiet(20 * time.Millisecond) })
		})
	}
}

// TestMirrorConverges has crm edit (creates, updates, deletes) while a test mirror turns
// its change events into billing's applies: billing's table must end equal to crm's.
func TestMirrorConverges(t *testing.T) {
	t.Parallel()
	for _, format := range []string{FormatFlat, FormatDebezium} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			crm, billing := crmSpec(), billingSpec()
			billing.ApplyFormat, billing.Owns, billing.Shared = format, nil, nil // billing only sinks
			brokers := newCluster(t, crm.Topic, crm.ApplyTopic, billing.Topic, billing.ApplyTopic)
			s := startSim(t, Config{
				Brokers: brokers, Systems: []SystemSpec{crm, billing},
				Records: 30, Rate: 3000, DeleteRatio: 0.1, Seed: 7,
			})
			mirror(t, brokers, crm, billing)
			await(t, "300 edits", func() bool { return s.Stats().Systems["crm"].Edits >= 300 })
			s.StopEditing()
			await(t, "billing equal to crm", func() bool {
				return s.Quiet(20*time.Millisecond) && maps.EqualFunc(s.Rows("crm"), s.Rows("billing"), maps.Equal)
			})
			st := s.Stats().Systems["billing"]
			if st.Edits != 0 || st.Rejected != 0 || st.SinkWrites+st.SinkNoops != st.Applies || st.Published != st.SinkWrites {
				t.Fatalf("billing stats %+v: every apply written, one event per write", st)
			}
			if crmSt := s.Stats().Systems["crm"]; st.Applies != crmSt.Published || st.Tombstones != crmSt.Deletes {
				t.Fatalf("billing %+v consumed something other than crm's %+v events", st, crmSt)
			}
		})
	}
}

// TestRunStops checks that Run returns promptly once cancelled, with its clients closed,
// and that a second Run is refused.
func TestRunStops(t *testing.T) {
	t.Parallel()
	spec := crmSpec()
	brokers := newCluster(t, spec.Topic, spec.ApplyTopic)
	s, err := New(Config{Brokers: brokers, Systems: []SystemSpec{spec}, Rate: 500}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	await(t, "an edit published", func() bool { return s.Stats().Systems["crm"].Published > 0 })
	if err := s.Run(ctx); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Run = %v, want ErrRunning", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(deadline):
		t.Fatal("Run did not return")
	}
}

// TestPartitionByID checks that with PartitionByID a record has one partition number in
// every system's topic although the key columns differ, which key-byte hashing breaks.
func TestPartitionByID(t *testing.T) {
	crm, billing := byRecordID{keyColumn: "id"}, byRecordID{keyColumn: "cust_id"}
	parts := []int{0, 1, 2, 3, 4, 5, 6, 7}
	differ := 0
	for i := range 100 {
		id := "r-" + strconv.Itoa(i)
		a := kafka.Message{Key: []byte(`{"id":"` + id + `"}`)}
		b := kafka.Message{Key: []byte(`{"cust_id":"` + id + `"}`)}
		if pa, pb := crm.Balance(a, parts...), billing.Balance(b, parts...); pa != pb {
			t.Fatalf("%s: partition %d in crm, %d in billing", id, pa, pb)
		}
		if (kafka.Murmur2Balancer{}).Balance(a, parts...) != (kafka.Murmur2Balancer{}).Balance(b, parts...) {
			differ++
		}
	}
	if differ == 0 {
		t.Fatal("key-byte hashing co-partitioned every record: the test shows nothing")
	}
}

// TestSinkFailsOnAnUnusableApply: an apply event the sink cannot write fails its task,
// as the real JDBC sink's does with errors.tolerance=none, instead of being skipped:
// what is no JSON, what has no Connect schema (JsonConverter with schemas.enable), a
// key without a schema (primary.key.mode=record_key), a value PostgreSQL refuses for
// a typed column.
func TestSinkFailsOnAnUnusableApply(t *testing.T) {
	t.Parallel()
	typed := codecs.ApplyEncoder{Format: FormatFlat, Schema: true}
	untypedBalance := codecs.Apply{
		Key:    []codecs.TypedColumn{{Name: "cust_id", Value: []byte(`"r-4"`)}},
		Fields: []codecs.TypedColumn{{Name: "balance", Value: []byte(`"12.5"`)}}, // a string, no Decimal
	}
	key, _ := typed.AppendKey(nil, &untypedBalance)
	value, _, _ := typed.AppendValue(nil, &untypedBalance)
	for name, rec := range map[string]*kgo.Record{
		"not json":                {Key: []byte(`{"cust_id":"r-4"}`), Value: []byte("not json")},
		"schemaless":              {Key: []byte(`{"cust_id":"r-4"}`), Value: []byte(`{"cust_id":"r-4","notes":"x"}`)},
		"a string into a numeric": {Key: key, Value: value},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			spec := billingSpec()
			spec.Types = map[string]string{"balance": "numeric(12,2)"}
			brokers := newCluster(t, spec.Topic, spec.ApplyTopic)
			s, err := New(Config{Brokers: brokers, Systems: []SystemSpec{spec}}, zaptest.NewLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx) }()
			rec.Topic = spec.ApplyTopic
			produce(t, brokers, rec)
			err = <-done
			if !errors.Is(err, ErrSinkFailed) {
				t.Fatalf("Run = %v, want ErrSinkFailed", err)
			}
			t.Logf("the sink failed: %v", err)
			if st := s.Stats().Systems["billing"]; st.Rejected != 1 || st.SinkWrites != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// TestSinkRestartRewrites: a restarted sink task resumes from its last offset commit
// and writes again what it wrote since (JDBC sinks are at-least-once), and the
// rewrites commit change events like any write.
func TestSinkRestartRewrites(t *testing.T) {
	t.Parallel()
	spec := billingSpec()
	brokers := newCluster(t, spec.Topic, spec.ApplyTopic)
	s := startSim(t, Config{Brokers: brokers, Systems: []SystemSpec{spec}, SinkCommitInterval: time.Hour})
	enc := codecs.ApplyEncoder{Format: spec.ApplyFormat, Schema: true, Name: "test"}
	var recs []*kgo.Record
	for i := range 5 {
		a := codecs.Apply{
			Key:    []codecs.TypedColumn{{Name: "cust_id", Value: []byte(`"r-1"`)}},
			Fields: []codecs.TypedColumn{{Name: "notes", Value: []byte(strconv.Quote("n" + strconv.Itoa(i)))}},
		}
		key, _ := enc.AppendKey(nil, &a)
		value, _, _ := enc.AppendValue(nil, &a)
		recs = append(recs, &kgo.Record{Topic: spec.ApplyTopic, Key: key, Value: value})
	}
	produce(t, brokers, recs...)
	await(t, "5 applies written", func() bool { return s.Stats().Systems["billing"].SinkWrites == 5 })
	if !s.RestartSink("billing") || s.RestartSink("nope") {
		t.Fatal("RestartSink: billing is known, nope is not")
	}
	await(t, "the 5 applies written again", func() bool {
		st := s.Stats().Systems["billing"]
		return st.Restarts == 1 && st.Rewrites == 5 && st.SinkWrites == 10
	})
	if got := s.Rows("billing")["r-1"]["notes"]; got != `"n4"` {
		t.Fatalf("notes = %s after the rewrites, want the last apply's", got)
	}
}
