package main

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/concord-sync/concord/config"
	"github.com/concord-sync/concord/dlq"
	"github.com/concord-sync/concord/dlq/web"
	"github.com/concord-sync/concord/internal/sim"
	"github.com/concord-sync/concord/internal/world"
	"github.com/concord-sync/concord/pipeline"
	"github.com/concord-sync/concord/pipeline/state"
	"github.com/concord-sync/concord/resolver"
)

//go:embed demo.yaml
var demoConfig []byte

type demoOptions struct {
	duration time.Duration
	rate     float64
	skew     time.Duration
	http     string
	json     bool
	records  int
	seed     int64
	settle   time.Duration
	kafka    string
}

func newDemoCommand() *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run everything embedded: Kafka, Redis, a CRM and a billing system, and concord between them",
		Long: `Run concord with nothing installed but Go: an in-process Kafka broker speaking the real
protocol (franz-go's kfake) on 127.0.0.1, an in-process Redis (miniredis), and two
simulated systems, a CRM and a billing system with different column names and key columns,
that keep their own tables, edit records at --rate (some edits concurrent on purpose, with
clocks --skew apart), publish Debezium change events of every change (echoes of concord's
applies included; crm with full before images, billing with none), and consume their apply
topics as JDBC sinks would. concord syncs them both ways.

A progress line shows what happens. After --duration the systems stop editing, the sync
settles, and a summary is printed (one JSON object with --json) with diverged_records: the
records whose synced fields differ between the systems once fields held in the DLQ are set
aside. It must be 0.`,
		Example: "  concord demo --duration 20s --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := zap.NewNop()
			if !o.json {
				log = defaultLogger().WithOptions(zap.IncreaseLevel(zap.WarnLevel))
			}
			logRedisTo(log)
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return runDemo(ctx, o, log, cmd.ErrOrStderr(), func(sum *demoSummary) error {
				return printSummary(cmd.OutOrStdout(), sum, o.json)
			})
		},
	}
	f := cmd.Flags()
	f.DurationVar(&o.duration, "duration", 30*time.Second, "how long the systems make edits")
	f.Float64Var(&o.rate, "rate", 200, "edits per second, both systems together")
	f.DurationVar(&o.skew, "skew", 300*time.Millisecond, "how far billing's clock is ahead of crm's")
	f.StringVar(&o.http, "http", "127.0.0.1:0", `serve the review page, /healthz, /readyz and /metrics on this address ("" for none; port 0 picks a free one)`)
	f.BoolVar(&o.json, "json", false, "print the summary as one JSON object (and no progress line)")
	f.IntVar(&o.records, "records", 200, "how many records the systems share")
	f.Int64Var(&o.seed, "seed", 1, "seed of the simulated edits")
	f.DurationVar(&o.settle, "settle", 60*time.Second, "longest wait for the sync to settle after the edits stop")
	f.StringVar(&o.kafka, "kafka", "127.0.0.1:0", "where the embedded broker listens (127.0.0.1:PORT; port 0 picks a free one), printed at start for kcat and other clients")
	return cmd
}

// demoSummary is the demo's final report (DESIGN.md section 7).
type demoSummary struct {
	DurationSeconds float64          `json:"duration_seconds"`
	Edits           int64            `json:"edits"`
	Events          int64            `json:"events"`
	Decisions       map[string]int64 `json:"decisions"`
	Conflicts       int64            `json:"conflicts"`
	DLQEntries      int64            `json:"dlq_entries"`
	Echoes          int64            `json:"echoes"`
	Poison          int64            `json:"poison"`
	Records         int              `json:"records"`
	DivergedRecords int              `json:"diverged_records"`
	Diverged        []string         `json:"diverged,omitempty"`
	Settled         bool             `json:"settled"`
	// SinkRestarts and SinkRewrites: the demo restarts each sink task once while the
	// systems edit, and the restarted task writes again what it had not committed.
	SinkRestarts int64 `json:"sink_restarts"`
	SinkRewrites int64 `json:"sink_rewrites"`
}

const demoPartitions = 4

// demoKafkaPort is the port of --kafka, which must be on 127.0.0.1 (the embedded
// broker listens there only).
func demoKafkaPort(addr string) (int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("--kafka %s: %w", addr, err)
	}
	if host != "127.0.0.1" && host != "localhost" {
		return 0, fmt.Errorf("--kafka %s: the embedded broker listens on 127.0.0.1 only", addr)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return 0, fmt.Errorf("--kafka %s: not a port", addr)
	}
	return port, nil
}

// runDemo runs the demo and reports its summary while everything still runs. Without
// --json, with the review page served, it then keeps running (the systems no longer
// edit, the sinks and concord keep going) so DLQ entries can be resolved in the page,
// until interrupted.
func runDemo(ctx context.Context, o demoOptions, log *zap.Logger, progress io.Writer, report func(*demoSummary) error) error {
	cfg, err := config.Parse(demoConfig)
	if err != nil {
		return fmt.Errorf("demo configuration: %w", err)
	}
	inputs := []string{cfg.Systems["crm"].Topic, cfg.Systems["billing"].Topic}
	port, err := demoKafkaPort(o.kafka)
	if err != nil {
		return err
	}
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.SeedTopics(demoPartitions, inputs...),
		kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(demoPartitions))
	if err != nil {
		return fmt.Errorf("starting the embedded Kafka broker on %s: %w", o.kafka, err)
	}
	defer kc.Close()
	if !o.json {
		_, _ = fmt.Fprintf(progress, "kafka: %s  (e.g. kcat -b %s -C -t %s -f '%%k %%s\\n')\n",
			strings.Join(kc.ListenAddrs(), ","), kc.ListenAddrs()[0], cfg.Systems["billing"].Apply.Topic)
	}
	mr, err := miniredis.Run()
	if err != nil {
		return fmt.Errorf("starting the embedded Redis: %w", err)
	}
	defer mr.Close()
	cfg.Kafka.Brokers = kc.ListenAddrs()
	cfg.Redis.Addr = mr.Addr()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("demo configuration: %w", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer func() { _ = rdb.Close() }()

	res, err := resolver.New(cfg)
	if err != nil {
		return err
	}
	reg := newRegistry() // the collectors of run: Go, process, build info
	dlqStore := dlq.NewStore(rdb, cfg.Name)
	proc, err := pipeline.New(pipeline.Options{
		Config: cfg, Rules: pipeline.StaticRules{R: res},
		Store: state.NewRedis(rdb, cfg.Name), DLQ: dlqStore,
		Logger: log, Metrics: pipeline.NewMetrics(reg),
	})
	if err != nil {
		return err
	}
	reg.MustRegister(proc.ParityCollector())
	simulation, err := sim.New(demoSystems(cfg, o), log)
	if err != nil {
		return err
	}
	if o.http != "" {
		stop, err := serveDemoHTTP(o.http, cfg, rdb, proc, reg, log, progress)
		if err != nil {
			return err
		}
		defer stop()
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error { return proc.Run(gctx) })
	g.Go(func() error { return simulation.Run(gctx) })

	start := time.Now()
	settled := demoWait(gctx, o, simulation, reg, progress, start)
	if gctx.Err() != nil {
		cancel()
		if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		return ctx.Err()
	}
	sum, err := summarize(gctx, cfg, simulation, reg, dlqStore, time.Since(start), settled)
	if err == nil {
		err = report(sum)
	}
	if err == nil && !o.json && o.http != "" {
		_, _ = fmt.Fprintln(progress, "the review page stays up (the systems no longer edit); Ctrl-C to stop")
		<-gctx.Done()
	}
	cancel()
	if werr := g.Wait(); werr != nil && !errors.Is(werr, context.Canceled) && err == nil {
		err = werr
	}
	return err
}

// demoSystems describes the CRM (full before images, its clock on time, Debezium
// envelopes applied) and billing (no before images, a TOASTed notes column, an
// updated_at column, its clock --skew ahead and wandering up to another --skew, flat
// applies); both with typed columns (numeric of different scales, timestamptz,
// boolean) and change events that carry their Connect schemas. With the default
// 300ms skew and 500ms tolerance, concurrent pairs fall both inside the tolerance
// (review) and outside it (last-write-wins).
func demoSystems(cfg *config.Config, o demoOptions) sim.Config {
	crm, billing := cfg.Systems["crm"], cfg.Systems["billing"]
	return sim.Config{
		Brokers: cfg.Kafka.Brokers, Records: o.records, Rate: o.rate, Seed: o.seed,
		ConcurrentRatio: 0.05, PartitionByID: true,
		Systems: []sim.SystemSpec{
			{
				Name: "crm", Topic: crm.Topic, ApplyTopic: crm.Apply.Topic, ApplyFormat: crm.Apply.Format,
				KeyColumn: "id", FullBefore: true,
				Columns: map[string]string{"email": "email_address", "name": "full_name", "notes": "notes", "phone": "phone"},
				Owns:    []string{"email", "name", "since"}, Shared: []string{"notes", "phone", "credit", "renewed_at", "prefs"},
				Types: map[string]string{
					"credit": "numeric(12,4)", "renewed_at": world.PGTimestamptz, "active": world.PGBoolean,
					"since": world.PGDate, "prefs": world.PGJSONB,
				},
			},
			{
				Name: "billing", Topic: billing.Topic, ApplyTopic: billing.Apply.Topic, ApplyFormat: billing.Apply.Format,
				KeyColumn: "cust_id", TimestampColumn: "updated_at", Skew: o.skew, Drift: o.skew,
				Columns: map[string]string{"status": "payment_status", "plan": "plan", "notes": "notes", "phone": "phone"},
				Owns:    []string{"status", "plan", "active"}, Shared: []string{"notes", "phone", "credit", "renewed_at", "prefs"},
				Types: map[string]string{
					"credit": "numeric(12,2)", "renewed_at": world.PGTimestamptz, "active": world.PGBoolean,
					"since": world.PGDate, "prefs": world.PGJSONB,
				},
				// billing has no full before images: its large notes column is TOASTed,
				// sent as Debezium's placeholder when an update leaves it unchanged.
				Toasted: []string{"notes"},
			},
		},
	}
}

// demoWait shows progress while the systems edit, then stops the edits and waits for
// the sync to settle. It reports whether it settled.
func demoWait(ctx context.Context, o demoOptions, s *sim.Sim, reg *prometheus.Registry, progress io.Writer, start time.Time) bool {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	editing := true
	restarted := map[string]bool{}
	var settleStart time.Time
	for {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
		if !o.json {
			m := gather(reg)
			_, _ = fmt.Fprintf(progress, "\r%5.0fs  events %7d  applies %7d  echoes %7d  conflicts %5d  to review %4d   ",
				time.Since(start).Seconds(), m.sum("concord_events_total"), m.by("concord_decisions_total", "kind")["apply"],
				m.by("concord_decisions_total", "kind")["echo"], m.sum("concord_conflicts_total"), m.by("concord_conflicts_total", "rule")["review"])
		}
		// Each sink task restarts once while the systems edit (billing's at a third
		// of the run, crm's at two thirds), as a Connect worker restarting would.
		for i, system := range []string{"billing", "crm"} {
			at := o.duration * time.Duration(i+1) / 3
			if editing && !restarted[system] && time.Since(start) >= at {
				restarted[system] = s.RestartSink(system)
			}
		}
		if editing && time.Since(start) >= o.duration {
			s.StopEditing()
			editing, settleStart = false, time.Now()
			if !o.json {
				_, _ = fmt.Fprint(progress, "\n  edits stopped; letting the sync settle")
			}
		}
		if !editing && s.Quiet(2*time.Second) && caughtUp(s, reg) {
			if !o.json {
				_, _ = fmt.Fprintln(progress)
			}
			return true
		}
		if !editing && time.Since(settleStart) > o.settle {
			return false
		}
	}
}

// summarize compares the systems' tables and reads the figures operators see in the
// metrics and the DLQ.
func summarize(ctx context.Context, cfg *config.Config, s *sim.Sim, reg *prometheus.Registry, d *dlq.Store, took time.Duration, settled bool) (*demoSummary, error) {
	m := gather(reg)
	sum := &demoSummary{
		DurationSeconds: took.Round(time.Millisecond).Seconds(),
		Events:          m.sum("concord_events_total"),
		Decisions:       m.by("concord_decisions_total", "kind"),
		Conflicts:       m.sum("concord_conflicts_total"),
		Poison:          m.sum("concord_poison_total"),
		Settled:         settled,
	}
	sum.Echoes = sum.Decisions["echo"]
	for _, st := range s.Stats().Systems {
		sum.Edits += st.Edits
		sum.SinkRestarts += st.Restarts
		sum.SinkRewrites += st.Rewrites
	}
	entries, err := d.List(ctx, dlq.Filter{Status: dlq.StatusPending})
	if err != nil {
		return nil, fmt.Errorf("reading the DLQ: %w", err)
	}
	sum.DLQEntries = int64(len(entries))
	records := map[string]bool{}
	for _, name := range []string{"crm", "billing"} {
		for r := range s.Rows(name) {
			records[r] = true
		}
	}
	sum.Records = len(records)
	sum.Diverged = s.Diverged("crm", "billing", slices.Sorted(maps.Keys(cfg.Authority)), dlq.Held(entries))
	sum.DivergedRecords = len(sum.Diverged)
	return sum, nil
}

func printSummary(w io.Writer, s *demoSummary, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		return enc.Encode(s)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "concord demo: %.0fs, %d edits, %d change events\n", s.DurationSeconds, s.Edits, s.Events)
	kinds := slices.Sorted(maps.Keys(s.Decisions))
	for _, k := range kinds {
		fmt.Fprintf(&b, "  %-10s %8d\n", k, s.Decisions[k])
	}
	fmt.Fprintf(&b, "  conflicts %d, DLQ entries %d, echoes %d, poison %d\n", s.Conflicts, s.DLQEntries, s.Echoes, s.Poison)
	fmt.Fprintf(&b, "  sink restarts %d (applies written again: %d)\n", s.SinkRestarts, s.SinkRewrites)
	fmt.Fprintf(&b, "  records %d, diverged %d", s.Records, s.DivergedRecords)
	if !s.Settled {
		fmt.Fprint(&b, " (the sync did not settle within --settle)")
	}
	fmt.Fprintln(&b)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	if s.DivergedRecords > 0 {
		return fmt.Errorf("%d records diverged: %v", s.DivergedRecords, s.Diverged)
	}
	return nil
}

// serveDemoHTTP serves the review page (with a fresh sign-in, or the bearer token of
// CONCORD_HTTP_TOKEN), health and metrics, and prints where and how to sign in.
func serveDemoHTTP(addr string, cfg *config.Config, rdb redis.UniversalClient, proc *pipeline.Processor,
	reg *prometheus.Registry, log *zap.Logger, progress io.Writer,
) (func(), error) {
	store := dlq.NewStore(rdb, cfg.Name)
	w, err := pipeline.NewProducer(cfg.Kafka.Brokers, cfg.Kafka.MaxMessageBytes, nil, log)
	if err != nil {
		return nil, err
	}
	svc := dlq.NewService(store, sharedFields(cfg), func(ctx context.Context) error {
		return pipeline.DrainOutbox(ctx, cfg, store, w)
	})
	reg.MustRegister(dlq.NewCollector(svc))
	auth := web.Auth{Token: os.Getenv(config.EnvHTTPToken), Users: map[string]string{"demo": randomSecret()}}
	// The fresh secrets are printed for the demo's user; a token of the environment
	// is the operator's own and is never echoed.
	bearer := "the bearer token of " + config.EnvHTTPToken
	if auth.Token == "" {
		auth.Token = randomSecret()
		bearer = "Authorization: Bearer " + auth.Token
	}
	h, err := newReviewHandler(cfg, svc, auth, log)
	if err != nil {
		w.Close()
		return nil, err
	}
	mux := newMux(proc.Readiness, reg)
	mux.Handle(web.Prefix, h)
	srv, url, err := serveHTTP(addr, mux, h, log)
	if err != nil {
		w.Close()
		return nil, err
	}
	_, _ = fmt.Fprintf(progress, "review page: %s/review/  (user demo, password %s; or %s)\nmetrics: %s/metrics (the same sign-in)\n",
		url, auth.Users["demo"], bearer, url)
	return func() { shutdownHTTP(srv, log); w.Close() }, nil
}

// randomSecret is 16 random bytes in hex.
func randomSecret() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// caughtUp reports whether concord has read every change event and tombstone the
// systems published.
func caughtUp(s *sim.Sim, reg *prometheus.Registry) bool {
	var published int64
	for _, st := range s.Stats().Systems {
		published += st.Published + st.Tombstones
	}
	return gather(reg).sum("concord_events_total") >= published
}
