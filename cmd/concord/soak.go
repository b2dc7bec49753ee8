package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/concord-sync/concord/internal/faults"
)

type soakOptions struct {
	duration   time.Duration
	faultRate  float64
	instances  int
	seed       int64
	json       bool
	dir        string
	binary     string
	checkEvery time.Duration
	session    time.Duration
	records    int
	rate       float64
	faults     []string
}

func newSoakCommand() *cobra.Command {
	var o soakOptions
	cmd := &cobra.Command{
		Use:   "soak [--duration D] [--fault-rate R] [--instances N] [--seed S] [--json]",
		Short: "Run concord for a while under injected faults and check that nothing was lost",
		Long: `Run the fault suite's mix for --duration: concord run as --instances child processes
(this binary, or --concord) in one consumer group, against an in-process Kafka broker
(kfake) and a real redis-server with AOF (needs redis-server on PATH), with the strict
simulated CRM and billing systems editing; faults at --fault-rate per minute, one at a
time: SIGKILL at random moments and inside batches, Redis stopped and restarted, broker
errors and cut connections, SIGSTOP freezes longer than the session timeout, joins and
leaves, sink restarts.

Every --check-every and at the end the edits pause, the sync settles, and the suite
checks: records diverged outside the DLQ; every user edit final in every system, or
superseded by a later edit, or lost to a recorded conflict decision (anything else is a
lost edit); no event id produced with two contents; the recovery time of each fault.

A progress line goes to stderr; the final table (one JSON object with --json) to stdout.
The exit status is 1 when an edit was lost, records diverged, an event id had two
contents or a fault was never recovered from. Logs, configurations and Redis's directory
stay in --dir.`,
		Example: "  concord soak --duration 30m --fault-rate 4 --instances 3",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return runSoak(ctx, o, cmd)
		},
	}
	f := cmd.Flags()
	f.DurationVar(&o.duration, "duration", 10*time.Minute, "how long the systems edit and faults are injected")
	f.Float64Var(&o.faultRate, "fault-rate", 4, "faults per minute, one at a time (0 for none)")
	f.IntVar(&o.instances, "instances", 3, "concord instances in the consumer group")
	f.Int64Var(&o.seed, "seed", 1, "seed of the edits and of every choice of fault, victim and timing")
	f.BoolVar(&o.json, "json", false, "print the result as one JSON object")
	f.StringVar(&o.dir, "dir", "", "directory for the logs, configurations and Redis's data (default: a new temporary one)")
	f.StringVar(&o.binary, "concord", "", "concord binary to run (default: this one), e.g. an older build to compare")
	f.DurationVar(&o.checkEvery, "check-every", 2*time.Minute, "pause the edits and check this often (an edit overwritten by a later one is superseded, so a loss shows only in the last edit of a field before a check)")
	f.DurationVar(&o.session, "session-timeout", 3*time.Second, "kafka.session_timeout of the instances (heartbeat a third of it); 0 leaves it out of their configuration, for builds from before it existed")
	f.IntVar(&o.records, "records", 1000, "records the systems share (more records: more edits are a field's last one at a check)")
	f.Float64Var(&o.rate, "rate", 40, "edit actions per second, both systems together")
	f.StringSliceVar(&o.faults, "faults", nil, fmt.Sprintf("draw only these fault kinds, equally likely (default: all the group's size allows): %v", faults.Kinds()))
	return cmd
}

func runSoak(ctx context.Context, o soakOptions, cmd *cobra.Command) error {
	bin := o.binary
	if bin == "" {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding this binary to run as concord run (or give --concord): %w", err)
		}
		bin = self
	}
	dir := o.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "concord-soak-")
		if err != nil {
			return err
		}
		dir = d
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	logPath := filepath.Join(dir, "soak.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer func() { _ = logFile.Close() }()
	stderr := cmd.ErrOrStderr()
	_, _ = fmt.Fprintf(stderr, "concord soak: %s, %.1f faults/min, %d instances, seed %d; logs in %s\n", o.duration, o.faultRate, o.instances, o.seed, dir)
	session, heartbeat := o.session, o.session/3
	if session == 0 {
		session = -1
	}
	opts := faults.Options{
		Binary: bin, Dir: dir, Seed: o.seed, Records: o.records, Rate: o.rate,
		SessionTimeout: session, HeartbeatInterval: heartbeat, Log: logFile,
	}
	so := faults.SoakOptions{
		Duration: o.duration, FaultRate: o.faultRate, Instances: o.instances, CheckEvery: o.checkEvery,
		Faults: kinds(o.faults),
		Progress: func(p faults.Progress) {
			_, _ = fmt.Fprintf(stderr, "\r%6.0fs  events %8d  faults %4d  kills %4d  checks %d  lost %d  diverged %d   ",
				p.Elapsed.Seconds(), p.Events, p.Faults, p.Kills, p.Checks, p.Lost, p.Diverged)
		},
	}
	r, err := faults.Soak(ctx, opts, so)
	_, _ = fmt.Fprintln(stderr)
	if err != nil {
		return fmt.Errorf("%w (logs in %s)", err, dir)
	}
	out := cmd.OutOrStdout()
	if o.json {
		if err := json.NewEncoder(out).Encode(r); err != nil {
			return err
		}
	} else {
		results := []*faults.Result{r}
		if err := faults.WriteTable(out, results); err != nil {
			return err
		}
		_, _ = fmt.Fprintln(out)
		if err := faults.WriteRecoveries(out, results); err != nil {
			return err
		}
		_, _ = fmt.Fprintln(out)
		faults.WriteDLQ(out, results)
		faults.WriteProblems(out, results)
	}
	if r.Failed() {
		return errors.New(strings.Join(r.Problems(), "; "))
	}
	return nil
}

func kinds(names []string) []faults.Kind {
	var out []faults.Kind
	for _, n := range names {
		out = append(out, faults.Kind(strings.TrimSpace(n)))
	}
	return out
}
