package faults

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTable writes one line per result: the guarantees (lost edits, diverged
// records, event ids with two contents), the faults and the recovery from them, and
// the volume.
func WriteTable(w io.Writer, results []*Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	_, _ = fmt.Fprintln(tw, "scenario\tinst\tlost\tdiverged\t2-content ids\tkills\tfaults\trecovery p50\tmax\tunrecovered\tfenced\tevents\tedits\tapplies\tcopies\tfinal/superseded/decided/held\tDLQ\tsettled\t")
	for _, r := range results {
		_, _ = fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%d\t%.0f\t%d\t%d\t%d\t%d\t%d/%d/%d/%d\t%d\t%v\t\n",
			r.Scenario, r.Instances, r.Lost, len(r.Diverged), len(r.TwoContents), r.Kills, len(r.Faults),
			seconds(r.RecoveryP50), seconds(r.RecoveryMax), r.Unrecovered, r.Fenced, r.Events, r.Edits, r.Applies, r.Copies,
			r.Outcomes[outcomeFinal], r.Outcomes[outcomeSuperseded], r.Outcomes[outcomeDecided], r.Outcomes[outcomeHeld],
			r.DLQPending, r.Settled)
	}
	return tw.Flush()
}

// WriteRecoveries writes the recovery times by fault kind over every result.
func WriteRecoveries(w io.Writer, results []*Result) error {
	by := map[Kind][]time.Duration{}
	count := map[Kind]int{}
	unrecovered := map[Kind]int{}
	for _, r := range results {
		for _, f := range r.Faults {
			count[f.Kind]++
			switch {
			case !f.Measured:
			case !f.Recovered:
				unrecovered[f.Kind]++
			default:
				by[f.Kind] = append(by[f.Kind], f.Recovery)
			}
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	_, _ = fmt.Fprintln(tw, "fault\tcount\trecovery p50\tmax\tunrecovered\t")
	for _, k := range slices.Sorted(maps.Keys(count)) {
		p50, top := "-", "-"
		if len(by[k]) > 0 {
			p50, top = seconds(percentile(by[k], 0.5)), seconds(percentile(by[k], 1))
		}
		_, _ = fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t\n", k, count[k], p50, top, unrecovered[k])
	}
	return tw.Flush()
}

// WriteDLQ writes the pending DLQ entries by reason: the fields the checks set aside.
func WriteDLQ(w io.Writer, results []*Result) {
	for _, r := range results {
		var parts []string
		for _, reason := range slices.Sorted(maps.Keys(r.DLQReasons)) {
			parts = append(parts, fmt.Sprintf("%s %d", reason, r.DLQReasons[reason]))
		}
		_, _ = fmt.Fprintf(w, "%s: %d pending DLQ entries (%s); %d edits set aside as held\n", r.Scenario, r.DLQPending, strings.Join(parts, ", "), r.Outcomes[outcomeHeld])
	}
}

// WriteProblems writes what failed and an example of each: the history of the first
// lost edit and the messages of the first event id with two contents.
func WriteProblems(w io.Writer, results []*Result) {
	for _, r := range results {
		problems := r.Problems()
		if len(problems) == 0 {
			continue
		}
		_, _ = fmt.Fprintf(w, "%s: %s\n", r.Scenario, strings.Join(problems, "; "))
		if len(r.LostEdits) > 0 {
			_, _ = fmt.Fprint(w, indent(r.LostEdits[0].History))
			for _, l := range r.LostEdits[1:min(len(r.LostEdits), 20)] {
				what := l.Edit.Field + " = " + l.Edit.Value
				if l.Edit.Delete {
					what = "delete"
				}
				_, _ = fmt.Fprintf(w, "  also lost: %s %s %s at %s (final %v)\n", l.Edit.System, l.Edit.Record, what, clock(l.Edit.At), l.Final)
			}
		}
		if r.TwoContentExample != "" {
			_, _ = fmt.Fprint(w, indent(r.TwoContentExample))
		}
	}
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ") + "\n"
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }
