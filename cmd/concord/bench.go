package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/concord-sync/concord/internal/bench"
)

func newBenchCommand() *cobra.Command {
	var o bench.Options
	var asJSON bool
	var cpuProfile, compare string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure throughput and latency of the real pipeline against a plain consume-and-produce pass",
		Long: `Run the real pipeline (kafka-go against an in-process Kafka broker, real Redis with --redis,
else miniredis) over generated Debezium events: CRM updates of three of a record's ten
fields, the billing system's echoes of concord's applies, and a share of concurrent edits
(--conflicts) that go to review. In the same run, a plain consume-and-produce pass over the
same events with the same client and batching, no state and no resolution.

It prints a table of events/s of both and their ratio, the p50 and p99 latency from a
message consumed to its apply produced (measured at a steady rate, a quarter of the
throughput up to 2,000 events/s), the state per record as Redis counts it (MEMORY USAGE,
mean of 2,000 state keys; not available on miniredis) and encoded, the resolver's hot
path alone (decode, resolve, encode) in events/s and allocations per event, and the
process's maximum resident memory. --json prints one object instead.

--memory-records N loads N records of the run's states (copies under new ids, written
through the state store) into the flushed Redis and reports used_memory's growth per
record and their mean MEMORY USAGE. --soak-events N streams N more events through
concord run in a child process, with the broker trimmed behind its commits, and reports
the child's heap and RSS after warm-up, at the end and at most. --compare FILE sets the
figures against an earlier --json output. On a terminal a progress bar goes to stderr.`,
		Example: `  concord bench --events 200000 --redis 127.0.0.1:6379 --json > before.json
  concord bench --events 200000 --redis 127.0.0.1:6379 --compare before.json
  concord bench --events 50000 --redis 127.0.0.1:6379 --memory-records 1000000
  concord bench --events 50000 --redis 127.0.0.1:6379 --soak-events 10000000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var baseline *bench.Baseline
			if compare != "" {
				var err error
				if baseline, err = bench.LoadBaseline(compare); err != nil {
					return err
				}
			}
			if o.Soak.Events > 0 && o.Soak.Binary == "" {
				self, err := os.Executable()
				if err != nil {
					return fmt.Errorf("finding this binary to run as concord run in the soak (or give --concord): %w", err)
				}
				o.Soak.Binary = self
			}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer func() { _ = f.Close() }()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			var bar *bench.Bar
			if !asJSON && isTerminal(cmd.ErrOrStderr()) {
				bar = bench.NewBar(cmd.ErrOrStderr())
				o.Progress = bar.Update
			}
			res, err := bench.Run(cmd.Context(), o)
			if bar != nil {
				bar.Clear()
			}
			return printBench(cmd.OutOrStdout(), res, err, compare, baseline, asJSON)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Events, "events", 100_000, "change events in the backlog")
	f.IntVar(&o.Records, "records", 10_000, "distinct records")
	f.Float64Var(&o.ConflictRatio, "conflicts", 0.01, "share of updates that meet a concurrent edit")
	f.IntVar(&o.Partitions, "partitions", 4, "input partitions")
	f.StringVar(&o.RedisAddr, "redis", "", "a real Redis (its database is flushed); miniredis when empty")
	f.DurationVar(&o.Latency, "latency-duration", 0, "how long the steady-rate latency phase runs (default 5s)")
	f.Var(latencyRate{&o.LatencyRate}, "latency-rate", "the latency phase's rate: events/s, or a share of the measured throughput such as 0.5x (default a quarter of it, at most 2,000 events/s)")
	f.IntVar(&o.MemoryRecords, "memory-records", 0, "load this many records of the run's states into the flushed Redis and measure its memory per record (needs --redis)")
	f.IntVar(&o.Soak.Events, "soak-events", 0, "stream this many events through concord run in a child process and sample its heap and RSS")
	f.Float64Var(&o.Soak.Rate, "soak-rate", 0, "produce the soak's events at this steady rate, events/s (default: as fast as concord consumes them)")
	f.StringVar(&o.Soak.Binary, "concord", "", "the concord binary the soak runs (default: this one)")
	f.StringVar(&o.Soak.Dir, "soak-dir", "", "keep the soak's configuration and concord run's log here (default: a temporary directory, removed)")
	f.StringVar(&compare, "compare", "", "an earlier `concord bench --json` output to set the figures against")
	f.BoolVar(&asJSON, "json", false, "print one JSON object")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	return cmd
}

// printBench writes the result as a table or one JSON object, with the comparison
// against baseline (read from file) when there is one.
func printBench(w io.Writer, res *bench.Result, err error, file string, baseline *bench.Baseline, asJSON bool) error {
	if err != nil {
		return err
	}
	if baseline != nil {
		if res.Comparison, err = bench.Compare(res, file, baseline); err != nil {
			return err
		}
	}
	if asJSON {
		return writeJSON(w, res)
	}
	table, err := bench.Table(res)
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, table)
	return err
}

// isTerminal reports whether w is a character device (a terminal), for the progress bar.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// latencyRate is --latency-rate: "3000" (events/s) or "0.5x" (of the measured
// throughput, stored negative: see bench.Options.LatencyRate).
type latencyRate struct{ v *float64 }

func (r latencyRate) String() string {
	switch {
	case r.v == nil || *r.v == 0:
		return ""
	case *r.v < 0:
		return strconv.FormatFloat(-*r.v, 'g', -1, 64) + "x"
	}
	return strconv.FormatFloat(*r.v, 'g', -1, 64)
}

func (r latencyRate) Set(s string) error {
	share, isShare := strings.CutSuffix(s, "x")
	v, err := strconv.ParseFloat(share, 64)
	if err != nil || v <= 0 || math.IsInf(v, 0) {
		return fmt.Errorf("want events/s (3000) or a share of the measured throughput (0.5x), not %q", s)
	}
	if isShare {
		v = -v
	}
	*r.v = v
	return nil
}

func (latencyRate) Type() string { return "rate" }
