package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/concord-sync/concord/config"
	"github.com/concord-sync/concord/dlq"
	"github.com/concord-sync/concord/internal/testenv"
)

// TestDLQReevaluateAndBulk: after the authority map gives notes to billing,
// reevaluate resolves exactly the notes conflicts (reviewer config, the
// configuration's revision in the audit trail) and leaves the phone conflict and the
// loop; then a bulk resolve takes the phone entry. Decisions reach the review topic.
func TestDLQReevaluateAndBulk(t *testing.T) {
	brokers := testenv.Kafka(t, 1, "crm.public.contacts", "billing.public.customers", "contacts.review", "contacts.audit")
	rs := testenv.Redis(t)
	store := dlq.NewStore(rs.Client(t), "contacts")
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "concord.yaml")
	writeConfig := func(notes string) {
		t.Helper()
		if err := os.WriteFile(cfgPath, fmt.Appendf(nil, `name: contacts
kafka: {brokers: [%q]}
redis: {addr: %q, db: %d}
systems:
  crm: {topic: crm.public.contacts, key: [id]}
  billing: {topic: billing.public.customers, key: [id]}
authority: {notes: %s, phone: shared, email: crm}
`, brokers[0], rs.Addr, rs.DB, notes), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig("shared")
	at := time.Now().Add(-2 * time.Hour)
	conflict := func(id, record, reason, field string) dlq.Change {
		return dlq.Change{
			EntryID: id, Record: record, Reason: reason, Fields: []string{field}, Cause: "c-" + id, At: at,
			Versions: []dlq.Version{
				{System: "crm", TsUs: 1_000_000, Values: map[string]json.RawMessage{field: json.RawMessage(`"crm's"`)}},
				{System: "billing", TsUs: 1_200_000, Values: map[string]json.RawMessage{field: json.RawMessage(`"billing's"`)}},
			},
		}
	}
	if err := store.Record(context.Background(), []dlq.Change{
		conflict("n1", "1", "clock_skew", "notes"), conflict("n2", "2", "clock_skew", "notes"),
		conflict("p1", "3", "clock_skew", "phone"), conflict("l1", "4", "loop", "notes"),
	}); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		cmd := newRootCommand()
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(append([]string{"dlq", "--config", cfgPath}, args...))
		if err := cmd.Execute(); err != nil {
			t.Fatalf("concord dlq %v: %v\n%s", args, err, out.String())
		}
		return out.String()
	}
	pending := func() []string {
		t.Helper()
		entries, err := store.List(context.Background(), dlq.Filter{Status: dlq.StatusPending})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range entries {
			ids = append(ids, e.ID)
		}
		slices.Sort(ids)
		return ids
	}

	if out := run("reevaluate", "--dry-run"); !strings.Contains(out, "0 of 4 pending entries") {
		t.Errorf("under the old rules nothing is decided:\n%s", out)
	}
	writeConfig("billing")
	out := run("reevaluate", "--dry-run")
	for _, want := range []string{"would resolve n1 (record 1): notes=billing", "would resolve n2", "stays   p1", "stays   l1 (record 4): the rules do not decide it (loop)", "2 of 4"} {
		if !strings.Contains(out, want) {
			t.Errorf("reevaluate --dry-run lacks %q:\n%s", want, out)
		}
	}
	if got := pending(); len(got) != 4 {
		t.Fatalf("--dry-run decided something: pending %v", got)
	}
	out = run("reevaluate")
	if !strings.Contains(out, "2 decided, 2 skipped of 4 previewed") {
		t.Errorf("reevaluate:\n%s", out)
	}
	if got := pending(); !slices.Equal(got, []string{"l1", "p1"}) {
		t.Errorf("pending after reevaluate = %v, want l1 and p1", got)
	}
	rev, err := configRevision(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	audit, err := store.Audit(context.Background(), dlq.AuditFilter{Record: "1"})
	if err != nil || len(audit) == 0 {
		t.Fatalf("audit of record 1: %v %v", audit, err)
	}
	if a := audit[0]; a.Reviewer != dlq.ReviewerConfig || !strings.Contains(a.Reason, rev) || string(a.Values["notes"]) != `"billing's"` {
		t.Errorf("audit of the re-evaluation = %+v, want reviewer config, revision %s, billing's notes", a, rev)
	}

	out = run("resolve", "--all", "--field", "phone", "--pick", "crm", "--reviewer", "ann")
	if !strings.Contains(out, "resolved p1") || !strings.Contains(out, "1 decided, 0 skipped of 1 previewed (field phone)") {
		t.Errorf("resolve --all:\n%s", out)
	}
	if got := pending(); !slices.Equal(got, []string{"l1"}) {
		t.Errorf("pending after the bulk resolve = %v, want l1", got)
	}

	// Every decision reached the review topic for the pipeline.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: "contacts.review", GroupID: "t", MaxWait: 50 * time.Millisecond})
	defer func() { _ = r.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Deadline)
	defer cancel()
	var decided []string
	for len(decided) < 3 {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("review topic after %v: %v", decided, err)
		}
		var c dlq.Command
		if err := json.Unmarshal(m.Value, &c); err != nil {
			t.Fatal(err)
		}
		decided = append(decided, c.EntryID+":"+c.Reviewer)
	}
	slices.Sort(decided)
	if !slices.Equal(decided, []string{"n1:config", "n2:config", "p1:ann"}) {
		t.Errorf("review commands = %v", decided)
	}
}

// TestWhatIf: the review page's preview of an authority suggestion decides as the
// configuration with that change would, and refuses an owner that is not a system.
func TestWhatIf(t *testing.T) {
	cfg, err := config.Parse([]byte(`name: contacts
systems:
  crm: {topic: crm.public.contacts, key: [id]}
  billing: {topic: billing.public.customers, key: [id]}
authority: {notes: shared}
`))
	if err != nil {
		t.Fatal(err)
	}
	choose, err := whatIf(cfg, "notes", "billing")
	if err != nil {
		t.Fatal(err)
	}
	e := &dlq.Entry{ID: "e", Reason: "clock_skew", Reasons: []string{"clock_skew"}, Fields: []string{"notes"}, Versions: map[string]dlq.Version{
		"crm":     {System: "crm", TsUs: 1, Values: map[string]json.RawMessage{"notes": json.RawMessage(`"a"`)}},
		"billing": {System: "billing", TsUs: 2, Values: map[string]json.RawMessage{"notes": json.RawMessage(`"b"`)}},
	}}
	if r, why := choose(e); r == nil || r.Fields["notes"] != "billing" {
		t.Errorf("what-if notes: billing = %+v (%s)", r, why)
	}
	if cfg.Authority["notes"] != "shared" {
		t.Error("the what-if changed the running configuration")
	}
	if _, err := whatIf(cfg, "notes", "erp"); err == nil {
		t.Error("an owner that is no system was accepted")
	}
}
