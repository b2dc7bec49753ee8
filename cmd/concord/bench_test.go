package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/concord-sync/concord/internal/bench"
)

// TestBenchJSON runs a small `concord bench --json --compare FILE` and checks every
// figure DESIGN.md section 9 names is there and measured (not a timing assertion:
// the figures live in the README), that the comparison is in the object, and that
// nothing went to stderr (no progress bar off a terminal).
func TestBenchJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the pipeline and a benchmark")
	}
	baseline := filepath.Join(t.TempDir(), "before.json")
	if err := os.WriteFile(baseline, []byte(`{"events": 3000, "events_per_second": 1000, "p50_ms": 5, "redis": "miniredis", "records": 500, "partitions": 4}`), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	cmd := newRootCommand()
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs([]string{"bench", "--events", "3000", "--records", "500", "--latency-duration", "500ms", "--json", "--compare", baseline})
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
		"state_encoded_bytes_per_record", "state_keys_sampled", "resolver_events_per_second", "resolver_allocs_per_event", "max_rss_bytes",
	} {
		if res[key] <= 0 {
			t.Errorf("%s = %v, want a measured figure: %s", key, raw[key], out.String())
		}
	}
	if res["p99_ms"] < res["p50_ms"] {
		t.Errorf("p99 %v below p50 %v", res["p99_ms"], res["p50_ms"])
	}
	// miniredis has no MEMORY USAGE: the figure is 0 and a note says why.
	if v, ok := raw["state_bytes_per_record"].(float64); !ok || v != 0 {
		t.Errorf("state_bytes_per_record = %v on miniredis, want 0", v)
	}
	if !strings.Contains(out.String(), "not available on miniredis") {
		t.Errorf("no note that MEMORY USAGE is not available on miniredis: %s", out.String())
	}
	var cmp struct {
		Comparison *bench.Comparison `json:"comparison"`
	}
	if err := json.Unmarshal(out.Bytes(), &cmp); err != nil || cmp.Comparison == nil {
		t.Fatalf("no comparison in the object (%v): %s", err, out.String())
	}
	figs := map[string]bench.Change{}
	for _, c := range cmp.Comparison.Figures {
		figs[c.Figure] = c
	}
	if c, ok := figs["events_per_second"]; !ok || c.Before != 1000 || c.After != res["events_per_second"] || c.Better != "higher" {
		t.Errorf("events_per_second compared as %+v", c)
	}
	if c, ok := figs["p50_ms"]; !ok || c.Better != "lower" {
		t.Errorf("p50_ms compared as %+v", c)
	}
	if _, ok := figs["ratio"]; ok {
		t.Error("ratio compared though the baseline has none")
	}
	if errOut.Len() > 0 {
		t.Errorf("stderr off a terminal: %q", errOut.String())
	}
}

// sampleResult is a result with every figure of the standard run.
func sampleResult() *bench.Result {
	return &bench.Result{
		Events: 50_001, Seconds: 2.1, EventsPerSecond: 23_535.9, PassthroughEventsPerSecond: 136_015, Ratio: 0.173,
		LatencyRate: 2000, P50Ms: 10.2, P99Ms: 17.4, StateBytesPerRecord: 650, StateEncodedBytesPerRecord: 514.1, StateKeysSampled: 2000,
		ResolverEventsPerSecond: 176_987, ResolverAllocsPerEvent: 6, MaxRSSBytes: 365 << 20, Conflicts: 219, Batches: 104, BatchMs: 75.8,
		Redis: "127.0.0.1:6393", Partitions: 4, Records: 10_000,
	}
}

// TestBenchTable checks the table's columns line up: every value ends in the same
// column, every unit starts in the same column.
func TestBenchTable(t *testing.T) {
	table, err := bench.Table(sampleResult())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"50,001 events", "136,015", "events/s", "MEMORY USAGE of buckets / their 2,000 records", "0.17", "365.0"} {
		if !strings.Contains(table, want) {
			t.Errorf("no %q in\n%s", want, table)
		}
	}
	lines := strings.Split(table, "\n")
	var rows []string
	for i, l := range lines {
		if strings.HasPrefix(l, "figure") {
			rows = lines[i:]
			break
		}
	}
	if len(rows) < 10 {
		t.Fatalf("no table of figures in\n%s", table)
	}
	header := rows[0]
	valueEnd := strings.Index(header, "value") + len("value")
	unitStart := strings.Index(header, "unit")
	row := regexp.MustCompile(`^(.+?)\s{2,}([0-9][0-9,.]*)  (\S+)`)
	for _, l := range rows[1:] {
		if l == "" {
			break
		}
		m := row.FindStringSubmatchIndex(l)
		if m == nil {
			t.Errorf("row %q is not figure, value, unit", l)
			continue
		}
		if m[5] != valueEnd || m[6] != unitStart {
			t.Errorf("row %q: value ends at %d, unit starts at %d; the header's at %d and %d\n%s", l, m[5], m[6], valueEnd, unitStart, table)
		}
	}
	if strings.Contains(table, "soak") || strings.Contains(table, "used_memory") {
		t.Errorf("figures not measured are shown:\n%s", table)
	}
}

// TestBenchCompare checks the comparison's changes and verdicts and its table.
func TestBenchCompare(t *testing.T) {
	before := filepath.Join(t.TempDir(), "before.json")
	old := sampleResult()
	old.EventsPerSecond, old.P99Ms, old.Events = 20_000, 34.8, 40_000
	b, _ := json.Marshal(old)
	if err := os.WriteFile(before, b, 0o600); err != nil {
		t.Fatal(err)
	}
	bl, err := bench.LoadBaseline(before)
	if err != nil {
		t.Fatal(err)
	}
	res := sampleResult()
	c, err := bench.Compare(res, before, bl)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bench.Change{}
	for _, ch := range c.Figures {
		got[ch.Figure] = ch
	}
	tests := []struct {
		figure, verdict string
		percent         float64
	}{
		{"events_per_second", "better", 17.7}, // 20,000 -> 23,536, higher is better
		{"p99_ms", "better", -50},             // 34.8 -> 17.4, lower is better
		{"p50_ms", "same", 0},
	}
	for _, tc := range tests {
		ch, ok := got[tc.figure]
		if !ok {
			t.Errorf("%s not compared", tc.figure)
			continue
		}
		if ch.Verdict != tc.verdict || ch.Percent < tc.percent-0.1 || ch.Percent > tc.percent+0.1 {
			t.Errorf("%s: %+v, want %s at %+.1f%%", tc.figure, ch, tc.verdict, tc.percent)
		}
	}
	res.Comparison = c
	table, err := bench.Table(res)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"compared with " + before, "warning: events differ: 40,000 before, 50,001 now", "+17.7% (x1.18)", "better", "higher"} {
		if !strings.Contains(table, want) {
			t.Errorf("no %q in\n%s", want, table)
		}
	}
}

// TestBenchCompareBadFile checks that a missing, invalid or foreign --compare file
// stops the command before it runs, saying what to give instead.
func TestBenchCompareBadFile(t *testing.T) {
	dir := t.TempDir()
	invalid := filepath.Join(dir, "invalid.json")
	foreign := filepath.Join(dir, "foreign.json")
	_ = os.WriteFile(invalid, []byte(`{"events_per_second": 1`), 0o600)
	_ = os.WriteFile(foreign, []byte(`{"name": "not a bench result"}`), 0o600)
	for _, tc := range []struct{ file, want string }{
		{filepath.Join(dir, "missing.json"), "no such file"},
		{invalid, "not one JSON object"},
		{foreign, "has no events_per_second"},
	} {
		cmd := newRootCommand()
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		cmd.SetArgs([]string{"bench", "--events", "10", "--compare", tc.file})
		err := cmd.Execute()
		if !errors.Is(err, bench.ErrCompareFile) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "concord bench --json") {
			t.Errorf("--compare %s: %v, want ErrCompareFile saying %q", tc.file, err, tc.want)
		}
	}
}

func TestBenchIsTerminal(t *testing.T) {
	if isTerminal(&bytes.Buffer{}) {
		t.Error("a buffer taken for a terminal")
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	if isTerminal(f) {
		t.Error("a regular file taken for a terminal")
	}
}

// TestBenchCompareOldBaseline checks that a baseline from before MEMORY USAGE, whose
// state_bytes_per_record is the encoded length, is compared encoded to encoded.
func TestBenchCompareOldBaseline(t *testing.T) {
	before := filepath.Join(t.TempDir(), "before.json")
	if err := os.WriteFile(before, []byte(`{"events": 50001, "events_per_second": 20000, "state_bytes_per_record": 507}`), 0o600); err != nil {
		t.Fatal(err)
	}
	bl, err := bench.LoadBaseline(before)
	if err != nil {
		t.Fatal(err)
	}
	c, err := bench.Compare(sampleResult(), before, bl)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range c.Figures {
		switch ch.Figure {
		case "state_bytes_per_record":
			t.Errorf("MEMORY USAGE compared with an encoded length: %+v", ch)
		case "state_encoded_bytes_per_record":
			if ch.Before != 507 || ch.After != 514.1 {
				t.Errorf("encoded state compared as %+v", ch)
			}
		}
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "predates MEMORY USAGE") {
		t.Errorf("warnings %q, want one on the baseline's state_bytes_per_record", c.Warnings)
	}
}

func TestLatencyRateFlag(t *testing.T) {
	for in, want := range map[string]float64{"3000": 3000, "0.5x": -0.5, "1x": -1} {
		var v float64
		if err := (latencyRate{&v}).Set(in); err != nil || v != want {
			t.Errorf("--latency-rate %s = %v (%v), want %v", in, v, err, want)
		}
		if got := (latencyRate{&v}).String(); got != in {
			t.Errorf("--latency-rate %s prints as %q", in, got)
		}
	}
	for _, bad := range []string{"", "x", "-1", "0", "fast", "Infx"} {
		var v float64
		if err := (latencyRate{&v}).Set(bad); err == nil {
			t.Errorf("--latency-rate %q accepted as %v", bad, v)
		}
	}
}
