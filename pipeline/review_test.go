package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/concord-sync/concord/internal/testenv"

	"github.com/segmentio/kafka-go"

	"github.com/concord-sync/concord/dlq"
	"github.com/concord-sync/concord/pipeline"
)

// TestReviewResolvesThroughThePipeline: an ambiguous conflict waits in the DLQ; a
// reviewer resolves it per field; the decision reaches the record's partition and the
// pipeline applies the chosen value to every system that differs (rule review), the
// hold is released, and the audit trail has the decision.
func TestReviewResolvesThroughThePipeline(t *testing.T) {
	e := newEnv(t, 2)
	e.start("p1")
	const t0 = 1_700_000_000_000
	e.produceTo(crmTopic, 1, change("id", "r", "c", 1, t0, map[string]any{"notes": "crm", "phone": "1"}))
	readApplies(t, e.brokers, "contacts.apply.billing", 1)
	e.produceTo(billingTopic, 1, change("cust_id", "r", "c", 1, t0+100, map[string]any{"notes": "billing", "phone": "1", "updated_at": t0 + 100}))
	var entry *dlq.Entry
	testenv.Eventually(t, "the DLQ entry", func() bool {
		entries, err := e.dlq.List(context.Background(), dlq.Filter{Status: dlq.StatusPending})
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) == 1 {
			entry = entries[0]
		}
		return entry != nil
	})
	svc := dlq.NewService(e.dlq, []string{"notes", "phone"}, nil)
	// Two reviewers at once: exactly one decision is taken.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, reviewer := range []string{"ann", "bob"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = svc.Resolve(context.Background(), dlq.Resolution{
				EntryID: entry.ID, Rev: entry.Rev,
				Fields: map[string]string{"notes": "billing"}, Reviewer: reviewer,
			})
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, dlq.ErrDecided) && !errors.Is(err, dlq.ErrStale):
			t.Fatalf("resolve: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d of 2 concurrent resolutions succeeded, want 1 (%v)", won, errs)
	}
	decided, err := e.dlq.Get(context.Background(), entry.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := pipeline.DrainOutbox(context.Background(), e.cfg, e.dlq, e.producer); err != nil {
		t.Fatal(err)
	}
	// crm gets billing's value with rule review (and so does billing: our in-flight
	// apply of crm's value would overwrite it).
	target, want := "contacts.apply.crm", `"billing"`
	all := readAll(t, e.brokers, target, func(ms []kafka.Message) bool {
		for _, m := range ms {
			if header(m, "concord.rule") == "review" {
				return true
			}
		}
		return false
	})
	last := all[len(all)-1]
	if !strings.Contains(string(last.Value), want) || header(last, "concord.origin") != "review" {
		t.Errorf("review apply to %s = %s %v", target, last.Value, last.Headers)
	}
	audit, err := e.dlq.Audit(context.Background(), dlq.AuditFilter{Record: "r"})
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) == 0 || audit[0].Kind != "resolve" || audit[0].Reviewer != decided.DecidedBy ||
		string(audit[0].Values["notes"]) != want {
		b, _ := json.Marshal(audit)
		t.Errorf("audit trail = %s", b)
	}
	testenv.Eventually(t, "the hold to be released", func() bool {
		st, err := e.store.Get(context.Background(), 1, []string{"r"})
		return err == nil && st[0] != nil && st[0].Hold == nil
	})
}
