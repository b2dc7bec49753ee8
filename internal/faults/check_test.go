package faults

import (
	"testing"
	"time"

	"github.com/concord-sync/concord/dlq"
	"github.com/concord-sync/concord/internal/sim"
)

// TestEditOutcomes holds the checker's classification of edits against small
// worlds: what every system shows, later edits, DLQ holds and the audit trail.
func TestEditOutcomes(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	set := func(seq int64, system, value string, ms int) sim.Edit {
		return sim.Edit{Seq: seq, System: system, Record: "r-1", Field: "notes", Value: value, At: at(ms)}
	}
	del := func(seq int64, system string, ms int) sim.Edit {
		return sim.Edit{Seq: seq, System: system, Record: "r-1", Delete: true, At: at(ms)}
	}
	both := func(crm, billing string) map[string]map[string]map[string]string {
		rows := map[string]map[string]map[string]string{"crm": {}, "billing": {}}
		if crm != "" {
			rows["crm"]["r-1"] = map[string]string{"notes": crm}
		}
		if billing != "" {
			rows["billing"]["r-1"] = map[string]string{"notes": billing}
		}
		return rows
	}
	lww := dlq.AuditEntry{Kind: "conflict", Record: "r-1", Fields: []string{"notes"}, Winner: "billing", Losers: []string{"crm"}, Rule: "lww", At: at(50)}
	for _, tc := range []struct {
		name  string
		edits []sim.Edit
		rows  map[string]map[string]map[string]string
		held  map[string]map[string]bool
		audit []dlq.AuditEntry
		want  []string // outcome of each edit
	}{
		{"final everywhere", []sim.Edit{set(1, "crm", `"a"`, 0)}, both(`"a"`, `"a"`), nil, nil, []string{outcomeFinal}},
		{"final in one system only", []sim.Edit{set(1, "crm", `"a"`, 0)}, both(`"a"`, `"old"`), nil, nil, []string{outcomeLost}},
		{"overwritten without a decision", []sim.Edit{set(1, "crm", `"a"`, 0)}, both(`"old"`, `"old"`), nil, nil, []string{outcomeLost}},
		{"a later edit supersedes", []sim.Edit{set(1, "crm", `"a"`, 0), set(2, "billing", `"b"`, 10)}, both(`"b"`, `"b"`), nil, nil, []string{outcomeSuperseded, outcomeFinal}},
		{
			"lost to a recorded last-write-wins",
			[]sim.Edit{set(1, "billing", `"b"`, 0), set(2, "crm", `"a"`, 1)},
			both(`"b"`, `"b"`), nil,
			[]dlq.AuditEntry{lww},
			[]string{outcomeSuperseded, outcomeDecided},
		},
		{
			"a decision made before the edit does not cover it",
			[]sim.Edit{set(1, "billing", `"b"`, 0), set(2, "crm", `"a"`, 100)},
			both(`"b"`, `"b"`), nil,
			[]dlq.AuditEntry{lww},
			[]string{outcomeSuperseded, outcomeLost},
		},
		{
			"the decision's winner must be what every system holds",
			[]sim.Edit{set(1, "billing", `"b"`, 0), set(2, "crm", `"a"`, 1)},
			both(`"a"`, `"b"`), nil,
			[]dlq.AuditEntry{lww},
			[]string{outcomeSuperseded, outcomeLost},
		},
		{
			"a decision the edit's system won does not cover it",
			[]sim.Edit{set(1, "billing", `"b"`, 0), set(2, "crm", `"a"`, 1)},
			both(`"b"`, `"b"`), nil,
			[]dlq.AuditEntry{{Kind: "conflict", Record: "r-1", Fields: []string{"notes"}, Winner: "crm", At: at(50)}},
			[]string{outcomeSuperseded, outcomeLost},
		},
		{
			"a decision on another field does not cover it",
			[]sim.Edit{set(1, "billing", `"b"`, 0), set(2, "crm", `"a"`, 1)},
			both(`"b"`, `"b"`), nil,
			[]dlq.AuditEntry{{Kind: "conflict", Record: "r-1", Fields: []string{"phone"}, Winner: "billing", At: at(50)}},
			[]string{outcomeSuperseded, outcomeLost},
		},
		{"held in the DLQ", []sim.Edit{set(1, "crm", `"a"`, 0)}, both(`"a"`, `"old"`), map[string]map[string]bool{"r-1": {"notes": true}}, nil, []string{outcomeHeld}},
		{"record held whole", []sim.Edit{set(1, "crm", `"a"`, 0)}, both(`"a"`, `"old"`), map[string]map[string]bool{"r-1": {"*": true}}, nil, []string{outcomeHeld}},
		{"a delete everywhere", []sim.Edit{set(1, "crm", `"a"`, 0), del(2, "billing", 10)}, both("", ""), nil, nil, []string{outcomeSuperseded, outcomeFinal}},
		{"a delete undone", []sim.Edit{set(1, "crm", `"a"`, 0), del(2, "billing", 10)}, both(`"a"`, ""), nil, nil, []string{outcomeSuperseded, outcomeLost}},
		{"an edit after a delete re-creates", []sim.Edit{del(1, "billing", 0), set(2, "crm", `"a"`, 10)}, both(`"a"`, `"a"`), nil, nil, []string{outcomeSuperseded, outcomeFinal}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newEditCheck(tc.edits, tc.rows, tc.held, tc.audit)
			for i, e := range tc.edits {
				if got := c.outcome(e); got != tc.want[i] {
					t.Errorf("edit %d (%s %s %s): %s, want %s", e.Seq, e.System, e.Field, e.Value, got, tc.want[i])
				}
			}
		})
	}
}

// TestWatcherHelpers: the record of an apply's key in both formats, and its
// payload without the schema.
func TestWatcherHelpers(t *testing.T) {
	for key, want := range map[string]string{
		`{"schema":{"type":"struct"},"payload":{"id":"r-7"}}`: "r-7",
		`{"cust_id":"r-8"}`: "r-8",
	} {
		if got := recordOf([]byte(key)); got != want {
			t.Errorf("recordOf(%s) = %q, want %q", key, got, want)
		}
	}
	if got := payload([]byte(`{"schema":{"type":"struct"},"payload":{"a": 1}}`)); got != `{"a":1}` {
		t.Errorf("payload = %s", got)
	}
	if got := payload(nil); got != "null (tombstone)" {
		t.Errorf("payload(nil) = %s", got)
	}
}
