package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/concord-sync/concord/config"
	"github.com/concord-sync/concord/dlq"
	"github.com/concord-sync/concord/dlq/web"
	"github.com/concord-sync/concord/internal/browsertest"
	"github.com/concord-sync/concord/internal/testenv"
	"github.com/concord-sync/concord/pipeline"
	"github.com/concord-sync/concord/pipeline/state"
	"github.com/concord-sync/concord/resolver"
)

const xss = `<script>alert(1)</script>`

// TestReviewInBrowser is the whole review loop in a real browser: two systems change a
// record within the clock-skew tolerance, the conflict waits in the DLQ, a reviewer
// signs in, opens the entry (an outside system's <script> value shows as text),
// resolves it per field, and the chosen values go out on Kafka as review applies to
// the systems that differ, with the decision in the audit trail.
func TestReviewInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a browser")
	}
	brokers := testenv.Kafka(t, 1, "crm.public.contacts", "billing.public.customers")
	rdb := testenv.Redis(t).Client(t)
	cfg, err := config.Parse(fmt.Appendf(nil, `name: contacts
kafka: {brokers: [%q]}
systems:
  crm: {topic: crm.public.contacts, key: [id]}
  billing: {topic: billing.public.customers, key: [id], timestamp: updated_at, fields: {id: cust_id}}
authority: {notes: shared, phone: shared}
`, brokers[0]))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	res, err := resolver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	store := dlq.NewStore(rdb, cfg.Name)
	proc, err := pipeline.New(pipeline.Options{
		Config: cfg, Rules: pipeline.StaticRules{R: res}, Store: state.NewRedis(rdb, cfg.Name), DLQ: store,
		Logger: zaptest.NewLogger(t), Metrics: pipeline.NewMetrics(prometheus.NewRegistry()),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- proc.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("processor: %v", err)
		}
	}()

	w, err := pipeline.NewProducer(brokers, 1<<20, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	produce := func(topic, key, value string) {
		t.Helper()
		if err := w.Produce(context.Background(), []kafka.Message{{Topic: topic, Key: []byte(key), Value: []byte(value)}}); err != nil {
			t.Fatal(err)
		}
	}
	const t0 = 1_700_000_000_000
	produce("crm.public.contacts", `{"id":"7"}`, fmt.Sprintf(`{"op":"c","after":{"id":"7","notes":%q,"phone":"1"},"source":{"connector":"postgresql","lsn":1,"ts_ms":%d}}`, xss, t0))
	// crm's create is decided first (its apply to billing is out) so the outcome below
	// does not depend on which topic the processor reads first.
	firstApply(t, brokers, "contacts.apply.billing")
	produce("billing.public.customers", `{"cust_id":"7"}`, fmt.Sprintf(`{"op":"c","after":{"cust_id":"7","notes":"billing","phone":"2","updated_at":%d},"source":{"connector":"postgresql","lsn":1,"ts_ms":%d}}`, t0+100, t0+100))
	var entry *dlq.Entry
	testenv.Eventually(t, "the conflict in the DLQ", func() bool {
		es, err := store.List(context.Background(), dlq.Filter{Status: dlq.StatusPending})
		if err == nil && len(es) == 1 && len(es[0].Fields) == 2 {
			entry = es[0]
		}
		return entry != nil
	})

	svc := dlq.NewService(store, []string{"notes", "phone"}, func(ctx context.Context) error {
		return pipeline.DrainOutbox(ctx, cfg, store, w)
	})
	h, err := newReviewHandler(cfg, svc, web.Auth{Users: map[string]string{"ann": "s3cret"}}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(web.Prefix, h)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	bctx, stop := browsertest.New(t)
	defer stop()
	err = chromedp.Do(bctx,
		browsertest.BasicAuth("ann", "s3cret"),
		chromedp.Navigate(srv.URL+"/review/"),
		chromedp.WaitVisible(chromedp.CSS("table.queue")),
		chromedp.Click(chromedp.CSS(`a.record[href="/review/entry/`+entry.ID+`"]`)),
		chromedp.WaitVisible(chromedp.ID("per-field")),
	)
	if err != nil {
		t.Fatalf("opening the entry: %v", err)
	}
	shown, err := chromedp.Run(bctx, chromedp.TextContent(chromedp.CSS(`tr[data-field="notes"] td[data-system="crm"] .str`)))
	if err != nil || strings.TrimSpace(shown) != xss {
		t.Errorf("crm's notes show as %q (%v), want the text %q", shown, err, xss)
	}
	err = chromedp.Do(bctx,
		chromedp.Click(chromedp.CSS(`input[name="field.notes"][value="billing"]`)),
		chromedp.Click(chromedp.CSS(`input[name="field.phone"][value="crm"]`)),
		chromedp.Click(chromedp.ID("apply-fields")),
		chromedp.WaitVisible(chromedp.ID("flash")),
	)
	if err != nil {
		t.Fatalf("resolving per field: %v", err)
	}

	// crm gets billing's notes. Billing gets its own notes back (our in-flight create
	// carrying crm's notes would overwrite them) and needs nothing for phone: that
	// create carries crm's phone already.
	toCrm := reviewApply(t, brokers, "contacts.apply.crm")
	if !strings.Contains(string(toCrm.Value), `"notes":"billing"`) {
		t.Errorf("review apply to crm: %s", toCrm.Value)
	}
	toBilling := reviewApply(t, brokers, "contacts.apply.billing")
	if !strings.Contains(string(toBilling.Value), `"notes":"billing"`) || strings.Contains(string(toBilling.Value), "phone") {
		t.Errorf("review apply to billing: %s", toBilling.Value)
	}
	audit, err := svc.Audit(context.Background(), dlq.AuditFilter{Record: "7"})
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) == 0 || audit[0].Kind != "resolve" || audit[0].Reviewer != "ann" ||
		string(audit[0].Values["notes"]) != `"billing"` || string(audit[0].Values["phone"]) != `"1"` {
		t.Errorf("audit trail: %+v", audit)
	}
}

// reviewApply reads a topic until an apply with rule review arrives.
func reviewApply(t *testing.T, brokers []string, topic string) kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, GroupID: "check-" + topic, MaxWait: 50 * time.Millisecond})
	defer func() { _ = r.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Deadline)
	defer cancel()
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("no review apply on %s: %v", topic, err)
		}
		for _, h := range m.Headers {
			if h.Key == pipeline.HeaderRule && string(h.Value) == "review" {
				return m
			}
		}
	}
}

// firstApply waits for the first message of a topic.
func firstApply(t *testing.T, brokers []string, topic string) {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, GroupID: "first-" + topic, MaxWait: 50 * time.Millisecond})
	defer func() { _ = r.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Deadline)
	defer cancel()
	if _, err := r.FetchMessage(ctx); err != nil {
		t.Fatalf("no apply on %s: %v", topic, err)
	}
}
