package dlq_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/concord-sync/concord/dlq"
	"github.com/concord-sync/concord/internal/testenv"
)

// TestBulkSkipsWhatChangedSinceThePreview: a bulk decision acts on the revisions its
// preview saw. An entry that got a later change after the preview, one decided by
// someone else meanwhile, and one the choice does not cover are skipped and
// reported; the others are decided, each with its own audit line.
func TestBulkSkipsWhatChangedSinceThePreview(t *testing.T) {
	store := dlq.NewStore(testenv.Redis(t).Client(t), "contacts")
	svc := dlq.NewService(store, []string{"notes"}, nil)
	ctx := context.Background()
	at := time.Now()
	entry := func(id, record string, systems ...string) dlq.Change {
		c := dlq.Change{EntryID: id, Record: record, Reason: "clock_skew", Fields: []string{"notes"}, Cause: "c-" + id, At: at}
		for i, s := range systems {
			c.Versions = append(c.Versions, dlq.Version{System: s, TsUs: int64(i + 1), Values: map[string]json.RawMessage{"notes": json.RawMessage(`"` + s + `"`)}})
		}
		return c
	}
	if err := store.Record(ctx, []dlq.Change{
		entry("a", "1", "crm", "billing"), entry("b", "2", "crm", "billing"),
		entry("c", "3", "crm", "billing"), entry("d", "4", "crm", "erp"),
	}); err != nil {
		t.Fatal(err)
	}
	preview, err := svc.Preview(ctx, dlq.Filter{Field: "notes"})
	if err != nil || len(preview) != 4 {
		t.Fatalf("preview = %v, %v", preview, err)
	}
	// After the preview: b gets a later change, c is decided by a reviewer.
	later := dlq.Change{
		EntryID: "b", Record: "2", Reason: "attached", Fields: []string{"notes"}, Cause: "later", At: at.Add(time.Second),
		Versions: []dlq.Version{{System: "crm", TsUs: 9, Values: map[string]json.RawMessage{"notes": json.RawMessage(`"newer"`)}}},
	}
	if err := store.Record(ctx, []dlq.Change{later}); err != nil {
		t.Fatal(err)
	}
	c, err := svc.Get(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Resolve(ctx, dlq.Resolution{EntryID: "c", Rev: c.Rev, Pick: "crm", Reviewer: "ann"}); err != nil {
		t.Fatal(err)
	}
	res, err := svc.ResolveAll(ctx, preview, func(*dlq.Entry) (*dlq.Resolution, string) {
		return &dlq.Resolution{Pick: "billing", Reviewer: "bob", Note: "bulk: field notes"}, ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Decided) != 1 || res.Decided[0] != "a" {
		t.Errorf("decided %v, want only a", res.Decided)
	}
	why := map[string]string{}
	for _, s := range res.Skipped {
		why[s.EntryID] = s.Why
	}
	for id, want := range map[string]string{"b": "changed since the preview", "c": "decided meanwhile", "d": "no version of \"billing\""} {
		if !strings.Contains(why[id], want) {
			t.Errorf("%s skipped with %q, want %q", id, why[id], want)
		}
	}
	b, err := svc.Get(ctx, "b")
	if err != nil || b.Status != dlq.StatusPending {
		t.Errorf("b after the bulk decision: %+v, %v; want still pending", b, err)
	}
	audit, err := store.Audit(ctx, dlq.AuditFilter{Record: "1"})
	if err != nil || len(audit) != 1 || audit[0].Reviewer != "bob" || audit[0].Reason != "bulk: field notes" {
		t.Errorf("audit of a = %+v, %v", audit, err)
	}
}
