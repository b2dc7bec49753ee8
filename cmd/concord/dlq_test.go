package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/concord-sync/concord/dlq"
	"github.com/concord-sync/concord/internal/testenv"
)

// TestDLQCommands drives the review CLI against a real Redis and Kafka: list, show,
// resolve (once only), dismiss, audit and patterns, and the decision reaching the
// review topic.
func TestDLQCommands(t *testing.T) {
	brokers := testenv.Kafka(t, 1, "crm.public.contacts", "billing.public.customers", "contacts.review", "contacts.audit")
	rs := testenv.Redis(t)
	store := dlq.NewStore(rs.Client(t), "contacts")
	cfgPath := filepath.Join(t.TempDir(), "concord.yaml")
	if err := os.WriteFile(cfgPath, fmt.Appendf(nil, `name: contacts
kafka: {brokers: [%q]}
redis: {addr: %q, db: %d}
systems:
  crm: {topic: crm.public.contacts, key: [id]}
  billing: {topic: billing.public.customers, key: [id]}
authority: {notes: shared, email: crm}
`, brokers[0], rs.Addr, rs.DB), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(-90 * time.Minute)
	entry := func(id, record string) dlq.Change {
		return dlq.Change{
			EntryID: id, Record: record, Reason: "clock_skew", Fields: []string{"notes"}, Cause: "c-" + id, At: now,
			Versions: []dlq.Version{
				{System: "crm", TsUs: 1, Values: map[string]json.RawMessage{"notes": json.RawMessage(`"called"`)}},
				{System: "billing", TsUs: 2, Values: map[string]json.RawMessage{"notes": json.RawMessage(`"disputed"`)}},
			},
		}
	}
	if err := store.Record(context.Background(), []dlq.Change{entry("e1", "42"), entry("e2", "43")}); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		t.Helper()
		var out bytes.Buffer
		cmd := newRootCommand()
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(append([]string{"dlq", "--config", cfgPath}, args...))
		err := cmd.Execute()
		return out.String(), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("concord dlq %v: %v\n%s", args, err, out)
		}
		return out
	}

	list := must("list")
	for _, want := range []string{"ID", "AGE", "e1", "1h 30m", "42", "notes", "clock_skew", "billing,crm", "pending_review"} {
		if !strings.Contains(list, want) {
			t.Errorf("list lacks %q:\n%s", want, list)
		}
	}
	var entries []dlq.Entry
	if err := json.Unmarshal([]byte(must("list", "--json")), &entries); err != nil || len(entries) != 2 {
		t.Errorf("list --json: %v, %d entries", err, len(entries))
	}
	if out := must("list", "--field", "email"); strings.Contains(out, "e1") {
		t.Errorf("list --field email shows an entry holding only notes:\n%s", out)
	}
	show := must("show", "e1")
	for _, want := range []string{"BILLING", "CRM", "disputed", "called", "<- differs"} {
		if !strings.Contains(show, want) {
			t.Errorf("show lacks %q:\n%s", want, show)
		}
	}

	if out := must("resolve", "e1", "--field", "notes=billing", "--reviewer", "ann"); !strings.Contains(out, "resolved e1") {
		t.Errorf("resolve: %s", out)
	}
	if _, err := run("resolve", "e1", "--pick", "crm", "--reviewer", "bob"); !errors.Is(err, dlq.ErrDecided) {
		t.Errorf("a second resolve: err = %v, want ErrDecided", err)
	}
	if _, err := run("resolve", "e2", "--pick", "erp"); !errors.Is(err, dlq.ErrInvalid) {
		t.Errorf("resolve with an unknown system: err = %v, want ErrInvalid", err)
	}
	if _, err := run("dismiss", "e2"); err == nil {
		t.Error("dismiss without --reason succeeded")
	}
	must("dismiss", "e2", "--reason", "duplicate record", "--reviewer", "bob")

	audit := must("audit", "--record", "42")
	for _, want := range []string{"resolve", "ann", "notes=billing", "notes=disputed"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit lacks %q:\n%s", want, audit)
		}
	}
	patterns := must("patterns")
	for _, want := range []string{"FIELDS THAT KEEP CONFLICTING", "notes", "SYSTEMS THAT KEEP LOSING", "crm"} {
		if !strings.Contains(patterns, want) {
			t.Errorf("patterns lack %q:\n%s", want, patterns)
		}
	}

	// Both decisions reached the review topic for the pipeline.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: "contacts.review", GroupID: "t", MaxWait: 50 * time.Millisecond})
	defer func() { _ = r.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var cmds []dlq.Command
	for len(cmds) < 2 {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("review topic after %d commands: %v", len(cmds), err)
		}
		var c dlq.Command
		if err := json.Unmarshal(m.Value, &c); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	if cmds[0].EntryID != "e1" || string(cmds[0].Values["notes"]) != `"disputed"` || cmds[0].Reviewer != "ann" ||
		cmds[1].EntryID != "e2" || !cmds[1].Dismiss {
		t.Errorf("review commands: %+v", cmds)
	}
}
