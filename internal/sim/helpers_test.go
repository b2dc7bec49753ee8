package sim

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zaptest"

	"github.com/concord-sync/concord/codecs"
	"github.com/concord-sync/concord/internal/testenv"
)

const (
	partitions = 3
	deadline   = testenv.Deadline
)

// newCluster starts an in-process kfake broker on 127.0.0.1 with the given topics
// and returns its addresses.
func newCluster(t *testing.T, topics ...string) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// startSim runs a Sim until the test ends and checks that Run returned nil.
func startSim(t *testing.T, cfg Config) *Sim {
	t.Helper()
	s, err := New(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(deadline):
			t.Error("Run did not return after its context was cancelled")
		}
	})
	return s
}

// await polls cond until it holds or the deadline passes.
func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// consume reads the first n records of topic, in partition order.
func consume(t *testing.T, brokers []string, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records of %s: %v", len(recs), n, topic, err)
		}
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
	}
	return recs
}

// produce writes records synchronously.
func produce(t *testing.T, brokers []string, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// event is a decoded change event.
type event struct {
	Before map[string]json.RawMessage `json:"before"`
	After  map[string]json.RawMessage `json:"after"`
	Source struct {
		Version, Connector, Name, Snapshot, DB, Schema, Table string
		TsMs                                                  int64 `json:"ts_ms"`
		TxID                                                  int64 `json:"txId"`
		LSN                                                   int64 `json:"lsn"`
	} `json:"source"`
	Op          string          `json:"op"`
	TsMs        int64           `json:"ts_ms"`
	Transaction json.RawMessage `json:"transaction"`
}

func decodeEvent(t *testing.T, r *kgo.Record) event {
	t.Helper()
	var ev event
	if err := json.Unmarshal(payloadOf(r.Value), &ev); err != nil {
		t.Fatalf("%s: %v", r.Value, err)
	}
	return ev
}

// payloadOf returns the payload of JsonConverter output with schemas.enable=true
// ({"schema":…,"payload":…}), as the sim's events are; anything else as it is.
func payloadOf(b []byte) []byte {
	var env map[string]json.RawMessage
	if json.Unmarshal(b, &env) != nil || len(env) != 2 || env["schema"] == nil || env["payload"] == nil {
		return b
	}
	return env["payload"]
}

// mirror copies from's change events to to's apply topic as apply events in to's
// format and column names: a one-way sync with no concord in between. It runs until
// the test ends; a failure to produce fails the test.
func mirror(t *testing.T, brokers []string, from, to SystemSpec) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(from.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DefaultProduceTopic(to.ApplyTopic),
		kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		failure error
	)
	fail := func(err error) { errOnce.Do(func() { failure = err }) }
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		cl.Close()
		if failure != nil {
			t.Errorf("mirror: %v", failure)
		}
	})
	fieldOf := newTable(from).fieldOf
	enc := codecs.ApplyEncoder{Format: to.ApplyFormat, Name: "mirror", Schema: true}
	wg.Go(func() {
		dec := codecs.NewDecoder(codecs.Options{})
		var ev codecs.Event
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) {
				if err := dec.Decode(codecs.Message{Topic: r.Topic, Key: r.Key, Value: r.Value}, &ev); err != nil {
					fail(err)
					return
				}
				if ev.Kind != codecs.KindChange {
					return
				}
				id, _ := ev.Key.Get(from.KeyColumn)
				a := codecs.Apply{Delete: ev.Op == codecs.OpDelete, Key: []codecs.TypedColumn{{Name: to.KeyColumn, Value: id}}}
				for _, c := range ev.After {
					if c.Name == from.KeyColumn || c.Name == from.TimestampColumn {
						continue
					}
					field := c.Name
					if f, ok := fieldOf[c.Name]; ok {
						field = f
					}
					a.Fields = append(a.Fields, codecs.TypedColumn{Name: to.column(field), Value: c.Value})
				}
				key, err := enc.AppendKey(nil, &a)
				if err != nil {
					fail(err)
					return
				}
				rec := &kgo.Record{Key: key}
				v, ok, err := enc.AppendValue(nil, &a)
				if err != nil {
					fail(err)
					return
				}
				if ok {
					rec.Value = v
				}
				cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
					if err != nil && !errors.Is(err, context.Canceled) {
						fail(err)
					}
				})
			})
		}
	})
}
