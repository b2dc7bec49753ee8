package main

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestBenchJSON runs a small `concord bench --json` and checks every figure DESIGN.md
// section 9 names is there and measured (not a timing assertion: the figures live in
// the README).
func TestBenchJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the pipeline and a benchmark")
	}
	var out bytes.Buffer
	cmd := newRootCommand()
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"bench", "--events", "3000", "--records", "500", "--latency-duration", "500ms", "--json"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(out.Bytes(), &raw); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, out.String())
	}
	res := map[string]float64{}
	for k, v := range raw {
		if f, ok := v.(float64); ok {
			res[k] = f
		}
	}
	for _, key := range []string{
		"events_per_second", "passthrough_events_per_second", "ratio", "p50_ms", "p99_ms",
		"state_bytes_per_record", "resolver_events_per_second", "resolver_allocs_per_event", "max_rss_bytes",
	} {
		if res[key] <= 0 {
			t.Errorf("%s = %v, want a measured figure: %s", key, raw[key], out.String())
		}
	}
	if res["p99_ms"] < res["p50_ms"] {
		t.Errorf("p99 %v below p50 %v", res["p99_ms"], res["p50_ms"])
	}
}
