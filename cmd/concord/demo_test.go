package main

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestDemoJSON runs `concord demo --duration 20s --json` as a user would and checks the
// contract of DESIGN.md section 7: the systems end in sync (diverged_records 0) after
// real conflicts, DLQ entries and echoes.
func TestDemoJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about half a minute")
	}
	var out, errOut bytes.Buffer
	cmd := newRootCommand()
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs([]string{"demo", "--duration", "20s", "--json"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("demo: %v\n%s", err, errOut.String())
	}
	var sum map[string]any
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		t.Fatalf("summary is not one JSON object: %v\n%s", err, out.String())
	}
	for _, key := range []string{"events", "decisions", "conflicts", "dlq_entries", "echoes", "records", "diverged_records"} {
		if _, ok := sum[key]; !ok {
			t.Errorf("summary has no %q: %s", key, out.String())
		}
	}
	if sum["diverged_records"] != 0.0 {
		t.Errorf("diverged_records = %v: %s", sum["diverged_records"], out.String())
	}
	for _, key := range []string{"conflicts", "dlq_entries", "echoes", "events"} {
		if n, _ := sum[key].(float64); n <= 0 {
			t.Errorf("%s = %v, want more than 0: %s", key, sum[key], out.String())
		}
	}
	if n, _ := sum["sink_restarts"].(float64); n < 2 {
		t.Errorf("sink_restarts = %v, want both sinks restarted once: %s", sum["sink_restarts"], out.String())
	}
	if d, _ := sum["decisions"].(map[string]any); d["conflict"] == nil {
		t.Errorf("no conflict decided by rule (last-write-wins): %s", out.String())
	}
	t.Logf("summary: %s", out.String())
}
