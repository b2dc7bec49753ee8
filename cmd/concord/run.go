package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/concord-sync/concord/config"
	"github.com/concord-sync/concord/dlq"
	"github.com/concord-sync/concord/dlq/web"
	"github.com/concord-sync/concord/pipeline"
	"github.com/concord-sync/concord/pipeline/state"
	"github.com/concord-sync/concord/resolver"
)

func newRunCommand() *cobra.Command {
	var cfgPath, httpAddr, logLevel string
	cmd := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Run the processor: consume every system's change events and keep them in sync",
		Long: `Run the processor: join the consumer group named by the configuration's name, consume
every system's Debezium topic, resolve changes with the record state kept in Redis,
produce apply events to <name>.apply.<system> (or the configured topics), send
undecodable messages to <name>.poison and ambiguous conflicts to the DLQ in Redis.

Several processes with the same configuration split the partitions between them and take
over when one stops. SIGTERM or SIGINT finishes the batch in progress, commits it and
leaves the group. The authority map and the resolution settings reload when the file
changes or on SIGHUP (an invalid file keeps the running configuration). --http serves
/healthz, /readyz, /metrics and the review page (/review/).

Logs are JSON on a non-terminal stderr and readable text on a terminal (log.format), at
log.level (info); --log-level overrides it.`,
		Example: "  concord run --config concord.yaml --http 127.0.0.1:8080",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
			}
			if logLevel == "" {
				logLevel = cfg.Log.Level
			}
			log, err := newLogger(logLevel, cfg.Log.Format)
			if err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			logRedisTo(log)
			defer func() { _ = log.Sync() }()
			log.Info("concord starting", zap.String("version", currentBuild().String()))
			for _, w := range cfg.Warnings() {
				log.Warn(w)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return run(ctx, cfgPath, cfg, httpAddr, log)
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "configuration file (YAML)")
	cmd.Flags().StringVar(&httpAddr, "http", "", "address for /healthz, /readyz and /metrics, e.g. 127.0.0.1:8080 (none when empty)")
	cmd.Flags().StringVar(&logLevel, "log-level", "", "debug, info, warn or error (overrides log.level)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// run runs a processor against the configured Kafka and Redis until ctx is done.
func run(ctx context.Context, cfgPath string, cfg *config.Config, httpAddr string, log *zap.Logger) error {
	rdb, kc, err := clients(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() { _ = rdb.Close() }()
	res, err := resolver.New(cfg)
	if err != nil {
		return err
	}
	store := dlq.NewStore(rdb, cfg.Name)
	w, err := pipeline.NewProducer(cfg.Kafka.Brokers, cfg.Kafka.MaxMessageBytes, kc.Producer, log)
	if err != nil {
		return err
	}
	defer w.Close()
	svc := dlq.NewService(store, sharedFields(cfg), func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, flushTimeout)
		defer cancel()
		return pipeline.DrainOutbox(ctx, cfg, store, w)
	})
	states := state.NewRedis(rdb, cfg.Name)
	if advice, err := states.ListpackAdvice(ctx); err != nil {
		log.Info("could not check Redis's memory settings for state buckets", zap.Error(err))
	} else if advice != "" {
		log.Warn(advice)
	}
	reg := newRegistry()
	reg.MustRegister(dlq.NewCollector(svc))
	metrics := pipeline.NewMetrics(reg)
	rules := pipeline.NewLiveRules(res)
	p, err := pipeline.New(pipeline.Options{
		Config:  cfg,
		Rules:   rules,
		Store:   states,
		DLQ:     store,
		Logger:  log,
		Metrics: metrics,
		Dialer:  kc.Dialer, Transport: kc.Transport, Producer: kc.Producer,
	})
	if err != nil {
		return err
	}
	reg.MustRegister(p.ParityCollector())
	reloader := pipeline.NewReloader(cfgPath, cfg, rules, log, metrics)
	go func() {
		if err := reloader.Watch(ctx); err != nil {
			log.Warn("configuration changes are picked up on SIGHUP only", zap.Error(err))
		}
	}()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_ = reloader.Reload() // logged and counted
			}
		}
	}()
	if httpAddr != "" {
		mux := newMux(p.Readiness, reg)
		var guard *web.Handler // its sign-in protects every path but health
		switch h, err := reviewPage(cfg, svc, log); {
		case errors.Is(err, errNoReviewAuth):
			log.Warn("review page not served, and /metrics served without sign-in", zap.Error(err))
		case err != nil:
			return err
		default:
			mux.Handle(web.Prefix, h)
			guard = h
		}
		srv, _, err := serveHTTP(httpAddr, mux, guard, log)
		if err != nil {
			return err
		}
		defer shutdownHTTP(srv, log)
	}
	return p.Run(ctx)
}

// newMux serves the operational endpoints. readiness says whether the instance is
// ready, and why not.
func newMux(readiness func() (bool, string), reg *prometheus.Registry) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ok, why := readiness(); !ok {
			http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	if reg != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	}
	return mux
}
