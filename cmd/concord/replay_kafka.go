package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/concord-sync/concord/config"
	"github.com/concord-sync/concord/connect"
	"github.com/concord-sync/concord/pipeline"
	"github.com/concord-sync/concord/pipeline/replay"
	"github.com/concord-sync/concord/pipeline/state"
	"github.com/concord-sync/concord/resolver"
)

// fromKafkaFlags are replay's flags for reading the real topics.
type fromKafkaFlags struct {
	enabled      bool
	since, until string
	diff, asJSON bool
	apply        bool
	state        string
	statePrefix  string
}

func (f *fromKafkaFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.enabled, "from-kafka", false, "read the configured input topics instead of --input (own readers: no consumer group, nothing committed)")
	cmd.Flags().StringVar(&f.since, "since", "", "with --from-kafka: from this RFC 3339 time, duration back (24h) or topic:partition=offset,… (default: the topics' start)")
	cmd.Flags().StringVar(&f.until, "until", "now", "with --from-kafka: up to this RFC 3339 time or duration back, or now (what the topics hold at start)")
	cmd.Flags().BoolVar(&f.diff, "diff", false, "with --from-kafka: instead of the decisions, a summary of what differs from what happened (the audit and apply topics)")
	cmd.Flags().BoolVar(&f.asJSON, "json", false, "with --diff: one JSON object")
	cmd.Flags().StringVar(&f.state, "state", "memory", "with --from-kafka: where the replay keeps record states: memory, or redis (the configured Redis, under --state-prefix: for histories larger than memory)")
	cmd.Flags().StringVar(&f.statePrefix, "state-prefix", "", "with --state redis: the key prefix of the replay's states (default <name>-replay-<unix time>; never the running pipeline's <name>)")
	cmd.Flags().BoolVar(&f.apply, "apply", false, "with --from-kafka: produce the replay's apply events to the systems' apply topics, for the sinks to write (only this flag ever produces; the decisions are made without the history before --since)")
}

// run replays the window of the topics into in-memory state (nothing is produced)
// and prints the decisions, or the diff against what happened.
func (f *fromKafkaFlags) run(cmd *cobra.Command, cfg *config.Config, messages bool) error {
	now := time.Now()
	var w replay.Window
	var err error
	if f.since != "" {
		if w.Since, w.SinceOffsets, err = replay.ParseSince(f.since, now); err != nil {
			return err
		}
	}
	if w.Until, err = replay.ParseUntil(f.until, now); err != nil {
		return err
	}
	kc, err := connect.KafkaClients(cfg.Kafka, nil)
	if err != nil {
		return err
	}
	progress := cmd.ErrOrStderr()
	k := replay.Kafka{Brokers: cfg.Kafka.Brokers, Dialer: kc.Dialer, Window: w, Progress: progressBar(progress)}
	out := bufio.NewWriter(cmd.OutOrStdout())
	defer func() { _ = out.Flush() }()
	sink := io.Writer(out)
	if f.diff {
		sink = io.Discard
	}
	r, err := replay.New(cfg, sink)
	if err != nil {
		return err
	}
	r.Messages = messages
	switch f.state {
	case "memory":
	case "redis":
		prefix := f.statePrefix
		if prefix == "" {
			prefix = fmt.Sprintf("%s-replay-%d", cfg.Name, now.Unix())
		}
		if prefix == cfg.Name {
			return fmt.Errorf("--state-prefix %s is the running pipeline's: a replay keeps its states apart", prefix)
		}
		rdb, err := connect.Redis(cfg.Redis, nil)
		if err != nil {
			return err
		}
		defer func() { _ = rdb.Close() }()
		r.Store = state.NewRedis(rdb, prefix)
		_, _ = fmt.Fprintf(progress, "replay: record states in Redis under {%s:p<N>}:* (delete them when done)\n", prefix)
	default:
		return fmt.Errorf("--state %q: memory or redis", f.state)
	}
	collector := replay.NewCollector()
	var ap *applier
	switch {
	case f.diff && f.apply:
		return errors.New("--apply and --diff: choose one")
	case f.diff:
		r.Collect = collector.Collect
	case f.apply:
		w, err := pipeline.NewProducer(cfg.Kafka.Brokers, cfg.Kafka.MaxMessageBytes, kc.Producer, zap.NewNop())
		if err != nil {
			return err
		}
		defer w.Close()
		ap = &applier{w: w, ctx: cmd.Context()}
		r.Collect = ap.collect
	}
	if err := r.RunKafka(cmd.Context(), k); err != nil {
		return err
	}
	_, _ = fmt.Fprintln(progress)
	if ap != nil {
		if err := ap.flush(); err != nil {
			return fmt.Errorf("replay --apply: %d apply events produced before: %w", ap.produced, err)
		}
		_, err := fmt.Fprintf(out, "produced %d apply events to the apply topics\n", ap.produced)
		return err
	}
	if !f.diff {
		return out.Flush()
	}
	var applyTopics []string
	for _, name := range cfg.SystemNames() {
		applyTopics = append(applyTopics, cfg.Systems[name].Apply.Topic)
	}
	k.Progress = nil
	then, err := k.Happened(cmd.Context(), pipeline.AuditTopic(cfg), applyTopics)
	if err != nil {
		return err
	}
	d := replay.Compare(then, collector.Outcome)
	if f.asJSON {
		return writeJSON(out, d)
	}
	return printDiff(out, d)
}

func printDiff(w io.Writer, d *replay.Diff) error {
	pr := &printer{w: w}
	pr.printf("conflicts decided the other way: %d\n", len(d.ConflictsFlipped))
	for _, f := range d.ConflictsFlipped {
		pr.printf("  %s: %s then, %s now\n", f.Conflict, f.Then, f.Now)
	}
	pr.printf("conflicts sent to review then, decided by rule now: %d\n", len(d.ConflictsNowDecided))
	for _, f := range d.ConflictsNowDecided {
		pr.printf("  %s: %s now\n", f.Conflict, f.Now)
	}
	pr.printf("conflicts that would go to review now: %d\n", len(d.ReviewsNew))
	for _, f := range d.ReviewsNew {
		pr.printf("  %s: %s then\n", f.Conflict, f.Then)
	}
	pr.printf("applied values that would differ:\n")
	if len(d.AppliesDiffer) == 0 {
		pr.printf("  none\n")
	}
	for _, a := range d.AppliesDiffer {
		pr.printf("  %s %s: %d records, e.g.\n", a.Topic, a.Column, a.Records)
		for _, ex := range a.Examples {
			pr.printf("    %s\n", ex)
		}
	}
	return pr.err
}

// progressBar draws the replay's progress on a terminal line.
func progressBar(w io.Writer) func(replay.Progress) {
	isTerminal := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			isTerminal = true
		}
	}
	return func(p replay.Progress) {
		rate := float64(p.Events) / max(p.Elapsed.Seconds(), 0.001)
		eta := "?"
		if rate > 0 && p.Total >= p.Events {
			eta = (time.Duration(float64(p.Total-p.Events)/rate) * time.Second).Round(time.Second).String()
		}
		pct := 100.0
		if p.Total > 0 {
			pct = 100 * float64(p.Events) / float64(p.Total)
		}
		line := fmt.Sprintf("replay: %d/%d events (%.0f%%)  %d records  %.0f events/s  ETA %s", p.Events, p.Total, pct, p.Records, rate, eta)
		if isTerminal {
			_, _ = fmt.Fprintf(w, "\r%s   ", line)
		} else {
			_, _ = fmt.Fprintln(w, line)
		}
	}
}

// applier produces a replay's apply events, in batches, in the order decided.
type applier struct {
	w        *pipeline.Producer
	ctx      context.Context
	buf      []kafka.Message
	produced int
	err      error
}

func (a *applier) collect(_ *resolver.Decision, m *kafka.Message) {
	if m == nil || a.err != nil {
		return
	}
	a.buf = append(a.buf, *m)
	if len(a.buf) >= 500 {
		a.err = a.flush()
	}
}

func (a *applier) flush() error {
	if a.err != nil {
		return a.err
	}
	if len(a.buf) == 0 {
		return nil
	}
	if err := a.w.Produce(a.ctx, a.buf); err != nil {
		return err
	}
	a.produced += len(a.buf)
	a.buf = a.buf[:0]
	return nil
}
