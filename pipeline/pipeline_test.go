package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/concord-sync/concord/config"
	"github.com/concord-sync/concord/connect"
	"github.com/concord-sync/concord/dlq"
	"github.com/concord-sync/concord/internal/testenv"
	"github.com/concord-sync/concord/pipeline"
	"github.com/concord-sync/concord/pipeline/state"
	"github.com/concord-sync/concord/resolver"
)

const (
	crmTopic     = "crm.public.contacts"
	billingTopic = "billing.public.customers"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func testConfig(t *testing.T, brokers []string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
name: contacts
kafka: {brokers: [%q]}
systems:
  crm:
    topic: %s
    key: [id]
    fields: {email: email_address}
  billing:
    topic: %s
    key: [id]
    timestamp: updated_at
    fields: {id: cust_id, name: full_name}
    apply: {format: flat}
resolution:
  loop_guard: {max_applies: 1000000, window: 1m}
authority: {name: crm, email: crm, payment_status: billing, notes: shared, phone: shared}
`, brokers[0], crmTopic, billingTopic)))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

type env struct {
	t        *testing.T
	cfg      *config.Config
	brokers  []string
	store    state.Store
	rdb      redis.UniversalClient
	kafka    *connect.Kafka // TLS and SASL, or nil for plain TCP
	dlq      *dlq.Store
	writer   *kafka.Writer                // the tests' own, for the inputs
	producer *pipeline.Producer           // the pipeline's, for DrainOutbox
	metrics  map[string]*pipeline.Metrics // by processor name
}

func newEnv(t *testing.T, partitions int) *env {
	return newEnvOn(t, testenv.Kafka(t, partitions, crmTopic, billingTopic), testenv.Redis(t).Client(t), nil)
}

// newEnvOn is an env on the given brokers (reached through kc when not nil) and Redis.
func newEnvOn(t *testing.T, brokers []string, rdb redis.UniversalClient, kc *connect.Kafka) *env {
	e := &env{
		t: t, brokers: brokers, cfg: testConfig(t, brokers), metrics: map[string]*pipeline.Metrics{},
		store: state.NewRedis(rdb, "contacts"), rdb: rdb, kafka: kc, dlq: dlq.NewStore(rdb, "contacts"),
	}
	e.writer = &kafka.Writer{Addr: kafka.TCP(brokers...), Balancer: &kafka.Murmur2Balancer{}, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	if kc != nil {
		e.writer.Transport = kc.Transport
	}
	t.Cleanup(func() { _ = e.writer.Close() })
	var popts []kgo.Opt
	if kc != nil {
		popts = kc.Producer
	}
	var err error
	if e.producer, err = pipeline.NewProducer(brokers, 1<<20, popts, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.producer.Close)
	return e
}

// start runs a processor until the test ends or stop is called.
func (e *env) start(name string) (p *pipeline.Processor, stop func()) {
	e.t.Helper()
	return e.startWith(name, e.store)
}

// startWith runs a processor on the given store.
func (e *env) startWith(name string, store state.Store) (p *pipeline.Processor, stop func()) {
	e.t.Helper()
	return e.startOpts(name, store, nil)
}

// startOpts runs a processor on the given store, with options changed by opt.
func (e *env) startOpts(name string, store state.Store, opt func(*pipeline.Options)) (p *pipeline.Processor, stop func()) {
	e.t.Helper()
	res, err := resolver.New(e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.metrics[name] = pipeline.NewMetrics(prometheus.NewRegistry())
	opts := pipeline.Options{
		Config: e.cfg, Rules: pipeline.StaticRules{R: res}, Store: store, DLQ: e.dlq,
		Logger:         zaptest.NewLogger(e.t, zaptest.Level(zap.InfoLevel)).Named(name),
		Metrics:        e.metrics[name],
		SessionTimeout: 2 * time.Second, HeartbeatInterval: 200 * time.Millisecond,
		RebalanceTimeout: 2 * time.Second, JoinGroupBackoff: 200 * time.Millisecond,
	}
	if e.kafka != nil {
		opts.Dialer, opts.Transport, opts.Producer = e.kafka.Dialer, e.kafka.Transport, e.kafka.Producer
	}
	if opt != nil {
		opt(&opts)
	}
	p, err = pipeline.New(opts)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("processor %s: %v", name, err)
			}
		})
	}
	e.t.Cleanup(stop)
	return p, stop
}

// produce writes Debezium change events (schemaless) of a system.
func (e *env) produce(topic string, msgs ...kafka.Message) {
	e.t.Helper()
	for i := range msgs {
		msgs[i].Topic = topic
	}
	if err := e.writer.WriteMessages(context.Background(), msgs...); err != nil {
		e.t.Fatal(err)
	}
}

// produceTo writes messages to one partition of a topic, as a connector routing by
// record ID would.
func (e *env) produceTo(topic string, partition int, msgs ...kafka.Message) {
	e.t.Helper()
	w := &kafka.Writer{
		Addr: kafka.TCP(e.brokers...), BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll,
		Balancer: kafka.BalancerFunc(func(kafka.Message, ...int) int { return partition }),
	}
	defer func() { _ = w.Close() }()
	for i := range msgs {
		msgs[i].Topic = topic
	}
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		e.t.Fatal(err)
	}
}

func change(keyCol, id string, op string, lsn int64, tsMs int64, after map[string]any) kafka.Message {
	key, _ := json.Marshal(map[string]any{keyCol: id})
	var afterJSON any
	if after != nil {
		row := map[string]any{keyCol: id}
		for k, v := range after {
			row[k] = v
		}
		afterJSON = row
	}
	value, _ := json.Marshal(map[string]any{
		"before": nil, "after": afterJSON, "op": op, "ts_ms": tsMs,
		"source": map[string]any{"connector": "postgresql", "lsn": lsn, "ts_ms": tsMs},
	})
	return kafka.Message{Key: key, Value: value}
}

// readApplies reads n messages of a topic (all partitions) within the deadline.
func readApplies(t *testing.T, brokers []string, topic string, n int) []kafka.Message {
	t.Helper()
	return readAppliesWith(t, brokers, nil, topic, n)
}

// readAppliesWith is readApplies through a dialer (TLS, SASL); nil for plain TCP.
func readAppliesWith(t *testing.T, brokers []string, dialer *kafka.Dialer, topic string, n int) []kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: brokers, GroupID: "test-" + topic + fmt.Sprint(time.Now().UnixNano()), Topic: topic,
		MaxWait: 50 * time.Millisecond, StartOffset: kafka.FirstOffset, Dialer: dialer,
	})
	defer func() { _ = r.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Deadline)
	defer cancel()
	var out []kafka.Message
	for len(out) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("read %d of %d messages from %s: %v", len(out), n, topic, err)
		}
		out = append(out, m)
	}
	return out
}

func header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func TestSyncBothWays(t *testing.T) {
	e := newEnv(t, 2)
	e.start("p1")
	e.produce(crmTopic, change("id", "7", "c", 100, 1_700_000_000_000, map[string]any{"email_address": "a@x", "name": "Ann", "notes": "n0"}))
	got := readApplies(t, e.brokers, "contacts.apply.billing", 1)
	m := got[0]
	if string(payload(t, m.Key)) != `{"cust_id":"7"}` {
		t.Errorf("apply key = %s", m.Key)
	}
	var row map[string]any
	if err := json.Unmarshal(payload(t, m.Value), &row); err != nil {
		t.Fatal(err)
	}
	if row["email"] != "a@x" || row["full_name"] != "Ann" || row["notes"] != "n0" || row["cust_id"] != "7" {
		t.Errorf("flat apply value = %s", m.Value)
	}
	if header(m, "concord.origin") != "crm" || header(m, "concord.rule") != "sync" || len(header(m, "concord.event_id")) != 32 {
		t.Errorf("headers = %v", m.Headers)
	}
	// The apply's sync lag (produced minus the change's source commit time) and the
	// partition's consumer lag are measured.
	metrics := e.metrics["p1"]
	testenv.Eventually(t, "the sync lag of crm to billing", func() bool {
		var m dto.Metric
		h, ok := metrics.SyncLag.WithLabelValues("crm", "billing").(prometheus.Metric)
		return ok && h.Write(&m) == nil && m.GetHistogram().GetSampleCount() == 1
	})
	testenv.Eventually(t, "the consumer lag", func() bool { return testutil.CollectAndCount(metrics.ConsumerLag) >= 2 })
	// The batch's stages are timed.
	for _, stage := range []string{"decide", "write", "produce"} {
		var m dto.Metric
		h, ok := metrics.BatchStage.WithLabelValues(stage).(prometheus.Metric)
		if !ok || h.Write(&m) != nil || m.GetHistogram().GetSampleCount() == 0 || m.GetHistogram().GetSampleSum() <= 0 {
			t.Errorf("concord_batch_stage_seconds{stage=%q}: %v", stage, m.GetHistogram())
		}
	}
	// billing's echo produces nothing; billing's own change flows back to crm.
	e.produce(billingTopic,
		change("cust_id", "7", "c", 50, 1_700_000_001_000, map[string]any{"email": "a@x", "full_name": "Ann", "notes": "n0", "updated_at": 1_700_000_001_000}),
		change("cust_id", "7", "u", 51, 1_700_000_002_000, map[string]any{"email": "a@x", "full_name": "Ann", "notes": "n0", "payment_status": "paid", "updated_at": 1_700_000_002_000}),
	)
	back := readApplies(t, e.brokers, "contacts.apply.crm", 1)
	var env map[string]json.RawMessage
	if err := json.Unmarshal(payload(t, back[0].Value), &env); err != nil {
		t.Fatal(err)
	}
	if string(env["after"]) != `{"id":"7","payment_status":"paid"}` || string(env["op"]) != `"u"` {
		t.Errorf("debezium apply to crm = %s", back[0].Value)
	}
}

// payload returns the payload of a JsonConverter envelope ({"schema":…,"payload":…}),
// as the sinks read apply events.
func payload(t *testing.T, b []byte) json.RawMessage {
	t.Helper()
	var env struct {
		Schema  json.RawMessage `json:"schema"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(b, &env); err != nil || env.Schema == nil {
		t.Fatalf("not a JsonConverter schema envelope (%v): %s", err, b)
	}
	return env.Payload
}

// sumCounter adds up every series of a counter vector, or those whose labels include
// the given name=value pairs.
func sumCounter(c prometheus.Collector, labels ...string) float64 {
	ch := make(chan prometheus.Metric, 64)
	go func() { c.Collect(ch); close(ch) }()
	var total float64
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil || d.Counter == nil || !hasLabels(&d, labels) {
			continue
		}
		total += d.Counter.GetValue()
	}
	return total
}

func hasLabels(d *dto.Metric, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		found := false
		for _, l := range d.GetLabel() {
			found = found || l.GetName() == pairs[i] && l.GetValue() == pairs[i+1]
		}
		if !found {
			return false
		}
	}
	return true
}
