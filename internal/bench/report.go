package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Which way a figure is better.
const (
	higherBetter = 1
	lowerBetter  = -1
	neither      = 0
)

// figure is one line of the table and of a comparison: a number of Result by its
// JSON name.
type figure struct {
	key    string
	label  string
	unit   string
	better int
	digits int // decimals shown
	note   func(*Result) string
}

// figures are the table's lines, in order. A figure a run did not measure (0 or
// absent) is left out.
var figures = []figure{
	{key: "events_per_second", label: "pipeline", unit: "events/s", better: higherBetter, note: func(r *Result) string {
		return fmt.Sprintf("%s events in %.1f s, %d batches of %.0f ms on average", thousands(float64(r.Events), 0), r.Seconds, r.Batches, r.BatchMs)
	}},
	{key: "passthrough_events_per_second", label: "passthrough", unit: "events/s", better: higherBetter, note: func(*Result) string {
		return "consume and produce only, same client and batching"
	}},
	{key: "ratio", label: "pipeline/passthrough", unit: "ratio", better: higherBetter, digits: 2},
	{key: "p50_ms", label: "latency p50", unit: "ms", better: lowerBetter, digits: 1, note: func(r *Result) string {
		return fmt.Sprintf("consumed to apply produced, at %s events/s", thousands(r.LatencyRate, 0))
	}},
	{key: "p99_ms", label: "latency p99", unit: "ms", better: lowerBetter, digits: 1},
	{key: "batch_decide_p99_ms", label: "  decide p99", unit: "ms/batch", better: lowerBetter, digits: 1, note: func(r *Result) string {
		return fmt.Sprintf("decode, states, resolve; mean %.2f ms (concord_batch_stage_seconds)", r.DecideMeanMs)
	}},
	{key: "batch_write_p99_ms", label: "  write p99", unit: "ms/batch", better: lowerBetter, digits: 1, note: func(r *Result) string {
		return fmt.Sprintf("DLQ and states to Redis; mean %.2f ms", r.WriteMeanMs)
	}},
	{key: "batch_produce_p99_ms", label: "  produce p99", unit: "ms/batch", better: lowerBetter, digits: 1, note: func(r *Result) string {
		return fmt.Sprintf("messages to Kafka; mean %.2f ms", r.ProduceMeanMs)
	}},
	{key: "state_bytes_per_record", label: "state in Redis", unit: "bytes/record", better: lowerBetter, note: func(r *Result) string {
		return fmt.Sprintf("MEMORY USAGE of buckets / their %s records", thousands(float64(r.StateKeysSampled), 0))
	}},
	{key: "state_encoded_bytes_per_record", label: "state encoded", unit: "bytes/record", better: lowerBetter, note: func(*Result) string {
		return "MarshalState length, mean"
	}},
	{key: "memory_used_bytes_per_record", label: "Redis used_memory", unit: "bytes/record", better: lowerBetter, note: func(r *Result) string {
		return fmt.Sprintf("INFO used_memory growth over %s records loaded", thousands(float64(r.MemoryRecords), 0))
	}},
	{key: "memory_usage_bytes_per_record", label: "state in Redis at N", unit: "bytes/record", better: lowerBetter, note: func(r *Result) string {
		return fmt.Sprintf("MEMORY USAGE of buckets / their %s records, of the %s", thousands(float64(r.MemoryKeysSampled), 0), thousands(float64(r.MemoryRecords), 0))
	}},
	{key: "resolver_events_per_second", label: "resolver hot path", unit: "events/s", better: higherBetter, note: func(*Result) string {
		return "decode, resolve, encode; no I/O"
	}},
	{key: "resolver_allocs_per_event", label: "resolver allocations", unit: "allocs/event", better: lowerBetter, digits: 1},
	{key: "process_allocs_per_event", label: "process allocations", unit: "allocs/event", better: lowerBetter, digits: 1, note: func(*Result) string {
		return "throughput phase, bench, broker and pipeline together"
	}},
	{key: "max_rss_bytes", label: "max RSS", unit: "MiB", better: lowerBetter, note: func(*Result) string {
		return "this process: bench, broker and pipeline together"
	}},
	{key: "soak_events_per_second", label: "soak", unit: "events/s", better: higherBetter, note: func(r *Result) string {
		rate := "as fast as it consumed"
		if r.SoakRate > 0 {
			rate = "produced at " + thousands(r.SoakRate, 0) + " events/s"
		}
		return fmt.Sprintf("%s events in %.0f s through concord run in a child process, %s", thousands(float64(r.SoakEvents), 0), r.SoakSeconds, rate)
	}},
	{key: "soak_heap_warm_bytes", label: "soak heap after warm-up", unit: "MiB", better: lowerBetter, note: func(*Result) string {
		return "heap in use, median of the samples from 10% to 20% of the events"
	}},
	{key: "soak_heap_end_bytes", label: "soak heap at the end", unit: "MiB", better: lowerBetter, note: func(*Result) string {
		return "median of the last 10% of the events"
	}},
	{key: "soak_heap_max_bytes", label: "soak heap max", unit: "MiB", better: lowerBetter, note: func(*Result) string {
		return "after warm-up"
	}},
	{key: "soak_heap_change_pct", label: "soak heap change", unit: "%", better: lowerBetter, digits: 1, note: func(*Result) string {
		return "end against warm-up; flat is within 10%"
	}},
	{key: "soak_heap_goal_warm_bytes", label: "soak heap goal after warm-up", unit: "MiB", better: lowerBetter, note: func(*Result) string {
		return "next_gc, set from the live heap at each GC: the steady view"
	}},
	{key: "soak_heap_goal_end_bytes", label: "soak heap goal at the end", unit: "MiB", better: lowerBetter},
	{key: "soak_heap_goal_max_bytes", label: "soak heap goal max", unit: "MiB", better: lowerBetter},
	{key: "soak_heap_goal_change_pct", label: "soak heap goal change", unit: "%", better: lowerBetter, digits: 1, note: func(*Result) string {
		return "end against warm-up"
	}},
	{key: "soak_rss_warm_bytes", label: "soak RSS after warm-up", unit: "MiB", better: lowerBetter},
	{key: "soak_rss_end_bytes", label: "soak RSS at the end", unit: "MiB", better: lowerBetter},
	{key: "soak_rss_max_bytes", label: "soak RSS max", unit: "MiB", better: lowerBetter},
	{key: "soak_bench_heap_max_bytes", label: "soak bench heap max", unit: "MiB", better: lowerBetter, note: func(*Result) string {
		return "this process (in-process broker, producer), set aside from concord's"
	}},
}

// isPct reports whether a figure is a percentage change itself (0 is a figure).
func isPct(key string) bool { return strings.HasSuffix(key, "_change_pct") }

// numbers returns the numeric fields of a result by their JSON names.
func numbers(v any) (map[string]float64, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for k, v := range raw {
		if f, ok := v.(float64); ok {
			out[k] = f
		}
	}
	return out, nil
}

// shown is how a figure's value is printed: bytes as MiB when the unit says so.
func (f *figure) shown(v float64) string {
	if f.unit == "MiB" {
		v /= 1 << 20
		return thousands(v, 1)
	}
	return thousands(v, f.digits)
}

// Table writes the result as aligned columns: figure, value, unit, notes; then the
// notes on what was not measured, then the comparison when there is one.
func Table(r *Result) (string, error) {
	nums, err := numbers(r)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "concord bench: %s events, %s records, %d partitions, Redis %s, %s conflicts\n\n",
		thousands(float64(r.Events), 0), thousands(float64(r.Records), 0), r.Partitions, r.Redis, thousands(float64(r.Conflicts), 0))
	t := table{right: []bool{false, true, false, false}}
	t.add("figure", "value", "unit", "notes")
	for _, f := range figures {
		v, ok := nums[f.key]
		if !ok || v == 0 && !isPct(f.key) {
			continue
		}
		note := ""
		if f.note != nil {
			note = f.note(r)
		}
		t.add(f.label, f.shown(v), f.unit, note)
	}
	t.write(&b)
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	if r.Comparison != nil {
		b.WriteString("\n")
		b.WriteString(r.Comparison.Table())
	}
	return b.String(), nil
}

// table is rows of cells printed in aligned columns, two spaces apart, numbers
// aligned on the right.
type table struct {
	right []bool
	rows  [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(b *strings.Builder) {
	width := make([]int, len(t.right))
	for _, row := range t.rows {
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	for _, row := range t.rows {
		var line strings.Builder
		for i, c := range row {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i > 0 {
				line.WriteString("  ")
			}
			if t.right[i] {
				line.WriteString(pad + c)
			} else {
				line.WriteString(c + pad)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
}

// Comparison is a result set against an earlier one (concord bench --compare).
type Comparison struct {
	File    string   `json:"file"`
	Figures []Change `json:"figures"`
	// Warnings name what differs between the two runs' set-ups (events, records,
	// partitions, Redis), which makes the figures less comparable.
	Warnings []string `json:"warnings,omitempty"`
}

// Baseline is an earlier `concord bench --json` output: its numbers by JSON name and
// its Redis.
type Baseline struct {
	Numbers map[string]float64
	Redis   string
}

// Change is one figure before and after. Ratio is after/before; Better is
// "higher" or "lower" (the direction that is an improvement) and Verdict "better",
// "worse" or "same" (within 1%), "" for a figure with no better direction.
type Change struct {
	Figure  string  `json:"figure"` // the JSON name of the figure
	Label   string  `json:"label"`
	Unit    string  `json:"unit"`
	Before  float64 `json:"before"`
	After   float64 `json:"after"`
	Ratio   float64 `json:"ratio"`
	Percent float64 `json:"change_pct"`
	Better  string  `json:"better"`
	Verdict string  `json:"verdict"`
}

// ErrCompareFile is returned when --compare's file cannot serve as a baseline.
var ErrCompareFile = errors.New("bench: cannot compare")

// LoadBaseline reads an earlier `concord bench --json` output.
func LoadBaseline(path string) (*Baseline, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %w (give the file an earlier `concord bench --json` wrote)", ErrCompareFile, path, err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%w: %s is not one JSON object: %w (give the output of `concord bench --json`)", ErrCompareFile, path, err)
	}
	bl := &Baseline{Numbers: map[string]float64{}}
	bl.Redis, _ = raw["redis"].(string)
	for k, v := range raw {
		if f, ok := v.(float64); ok {
			bl.Numbers[k] = f
		}
	}
	if _, ok := bl.Numbers["events_per_second"]; !ok {
		return nil, fmt.Errorf("%w: %s has no events_per_second: not the output of `concord bench --json`", ErrCompareFile, path)
	}
	return bl, nil
}

// Compare sets the result against a baseline (LoadBaseline) read from file: every
// figure of the table both runs measured.
func Compare(r *Result, file string, bl *Baseline) (*Comparison, error) {
	after, err := numbers(r)
	if err != nil {
		return nil, err
	}
	before := bl.Numbers
	c := &Comparison{File: file, Figures: []Change{}}
	if v, ok := before["state_bytes_per_record"]; ok {
		if _, ok := before["state_encoded_bytes_per_record"]; !ok {
			// Before MEMORY USAGE, state_bytes_per_record was the encoded length.
			before = maps.Clone(before)
			before["state_encoded_bytes_per_record"] = v
			delete(before, "state_bytes_per_record")
			c.Warnings = append(c.Warnings, "the baseline's state_bytes_per_record is the encoded length (it predates MEMORY USAGE): compared with state_encoded_bytes_per_record")
		}
	}
	for _, k := range []string{"events", "records", "partitions"} {
		if b, ok := before[k]; ok && b != after[k] {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s differ: %s before, %s now", k, thousands(b, 0), thousands(after[k], 0)))
		}
	}
	if bl.Redis != "" && (bl.Redis == "miniredis") != (r.Redis == "miniredis") {
		c.Warnings = append(c.Warnings, fmt.Sprintf("Redis differs: %s before, %s now", bl.Redis, r.Redis))
	}
	for _, f := range figures {
		b, okb := before[f.key]
		a, oka := after[f.key]
		measured := b != 0 && a != 0 || isPct(f.key)
		if !okb || !oka || !measured {
			continue
		}
		ch := Change{Figure: f.key, Label: f.label, Unit: f.unit, Before: b, After: a}
		if b != 0 {
			ch.Ratio, ch.Percent = a/b, 100*(a-b)/math.Abs(b)
		}
		if isPct(f.key) { // a percentage already: the change is in points
			ch.Ratio, ch.Percent = 0, a-b
		}
		ch.Better, ch.Verdict = verdict(f.better, b, a)
		c.Figures = append(c.Figures, ch)
	}
	return c, nil
}

func verdict(better int, before, after float64) (string, string) {
	dir := map[int]string{higherBetter: "higher", lowerBetter: "lower"}[better]
	if better == neither {
		return "", ""
	}
	if math.Abs(after-before) <= 0.01*math.Abs(before) {
		return dir, "same"
	}
	if (after > before) == (better == higherBetter) {
		return dir, "better"
	}
	return dir, "worse"
}

// Table writes the comparison as aligned columns.
func (c *Comparison) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "compared with %s (on a shared machine only runs made at the same time compare well)\n", c.File)
	for _, w := range c.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	b.WriteString("\n")
	t := table{right: []bool{false, true, true, true, false, false}}
	t.add("figure", "before", "after", "change", "verdict", "better is")
	figs := map[string]figure{}
	for _, f := range figures {
		figs[f.key] = f
	}
	for _, ch := range c.Figures {
		f := figs[ch.Figure]
		change := fmt.Sprintf("%+.1f%%", ch.Percent)
		if ch.Ratio != 0 {
			change += fmt.Sprintf(" (x%.2f)", ch.Ratio)
		} else if isPct(ch.Figure) {
			change = fmt.Sprintf("%+.1f points", ch.Percent)
		}
		t.add(ch.Label, f.shown(ch.Before)+" "+ch.Unit, f.shown(ch.After)+" "+ch.Unit, change, ch.Verdict, ch.Better)
	}
	t.write(&b)
	return b.String()
}

// thousands formats v with the given decimals and commas between thousands.
func thousands(v float64, digits int) string {
	s := strconv.FormatFloat(v, 'f', digits, 64)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	out := b.String()
	if frac != "" {
		out += "." + frac
	}
	if neg {
		out = "-" + out
	}
	return out
}
