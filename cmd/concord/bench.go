package main

import (
	"fmt"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/spf13/cobra"

	"github.com/concord-sync/concord/internal/bench"
)

func newBenchCommand() *cobra.Command {
	var o bench.Options
	var asJSON bool
	var cpuProfile string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure throughput and latency of the real pipeline against a plain consume-and-produce pass",
		Long: `Run the real pipeline (kafka-go against an in-process Kafka broker, real Redis with --redis,
else miniredis) over generated Debezium events: CRM updates of three of a record's ten
fields, the billing system's echoes of concord's applies, and a share of concurrent edits
(--conflicts) that go to review. In the same run, a plain consume-and-produce pass over the
same events with the same client and batching, no state and no resolution.

It prints events/s of both and their ratio, the p50 and p99 latency from a message
consumed to its apply produced (measured at a steady rate, a quarter of the throughput up
to 2,000 events/s), the mean encoded state per record, the resolver's hot path alone
(decode, resolve, encode) in events/s and allocations per event, and the process's
maximum resident memory. --json prints one object.`,
		Example: "  concord bench --events 200000 --redis 127.0.0.1:6379 --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
			res, err := bench.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			var b strings.Builder
			fmt.Fprintf(&b, "concord bench: %d events, %d partitions, Redis %s, %d conflicts\n", res.Events, res.Partitions, res.Redis, res.Conflicts)
			fmt.Fprintf(&b, "  pipeline      %10.0f events/s   (%d batches of %.0f ms on average)\n", res.EventsPerSecond, res.Batches, res.BatchMs)
			fmt.Fprintf(&b, "  passthrough   %10.0f events/s   (pipeline/passthrough %.2f)\n", res.PassthroughEventsPerSecond, res.Ratio)
			fmt.Fprintf(&b, "  latency       p50 %.1f ms, p99 %.1f ms at %.0f events/s\n", res.P50Ms, res.P99Ms, res.LatencyRate)
			fmt.Fprintf(&b, "  state         %.0f bytes per record\n", res.StateBytesPerRecord)
			fmt.Fprintf(&b, "  resolver      %10.0f events/s, %.1f allocations per event\n", res.ResolverEventsPerSecond, res.ResolverAllocsPerEvent)
			fmt.Fprintf(&b, "  max RSS       %d MiB\n", res.MaxRSSBytes>>20)
			_, err = fmt.Fprint(cmd.OutOrStdout(), b.String())
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Events, "events", 100_000, "change events in the backlog")
	f.IntVar(&o.Records, "records", 10_000, "distinct records")
	f.Float64Var(&o.ConflictRatio, "conflicts", 0.01, "share of updates that meet a concurrent edit")
	f.IntVar(&o.Partitions, "partitions", 4, "input partitions")
	f.StringVar(&o.RedisAddr, "redis", "", "a real Redis (its database is flushed); miniredis when empty")
	f.DurationVar(&o.Latency, "latency-duration", 0, "how long the steady-rate latency phase runs (default 5s)")
	f.BoolVar(&asJSON, "json", false, "print one JSON object")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	return cmd
}
