package main

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/concord-sync/concord/config"
	"github.com/concord-sync/concord/dlq"
	"github.com/concord-sync/concord/dlq/web"
	"github.com/concord-sync/concord/resolver"
)

// errNoReviewAuth: the review page is not served without credentials.
var errNoReviewAuth = errors.New("the review page needs credentials: set CONCORD_HTTP_TOKEN, http.token_file, or http.users")

// reviewPage builds the review page for a configuration's credentials.
func reviewPage(cfg *config.Config, svc *dlq.Service, log *zap.Logger) (*web.Handler, error) {
	token, users, err := cfg.HTTP.Secrets(os.Getenv, os.ReadFile)
	if err != nil {
		return nil, err
	}
	if token == "" && len(users) == 0 {
		return nil, errNoReviewAuth
	}
	return newReviewHandler(cfg, svc, web.Auth{Token: token, Users: users}, log)
}

func newReviewHandler(cfg *config.Config, svc *dlq.Service, auth web.Auth, log *zap.Logger) (*web.Handler, error) {
	var fields []string
	for f := range cfg.Authority {
		fields = append(fields, f)
	}
	slices.Sort(fields)
	return web.New(web.Options{
		Reviews: svc, Auth: auth, Logger: log, Systems: cfg.SystemNames(), Fields: fields,
		Suggest: func(field, owner string) (web.Chooser, error) { return whatIf(cfg, field, owner) },
	})
}

// whatIf is how the configuration with field given to owner would decide entries.
func whatIf(cfg *config.Config, field, owner string) (web.Chooser, error) {
	if !slices.Contains(cfg.SystemNames(), owner) {
		return nil, fmt.Errorf("%q is not a configured system", owner)
	}
	changed := *cfg
	changed.Authority = maps.Clone(cfg.Authority)
	changed.Authority[field] = owner
	res, err := resolver.New(&changed)
	if err != nil {
		return nil, err
	}
	return web.Chooser(dlq.ByRules(res, "with "+field+": "+owner)), nil
}

func newDLQServeCommand(open opener) *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "serve --http ADDR",
		Short: "Serve the review page (without running the processor)",
		Long: `Serve the review page at http://ADDR/review/ for the configured DLQ. Sign-in: the bearer
token (CONCORD_HTTP_TOKEN or http.token_file) or a basic-auth user of http.users; the
reviewer recorded in the audit trail is the signed-in user. Decisions are produced to Kafka
for the running processors to apply.`,
		Example: "  CONCORD_HTTP_TOKEN=s3cret concord dlq serve --config concord.yaml --http 127.0.0.1:8081",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := defaultLogger()
			logRedisTo(log)
			return withReview(open, func(env *reviewEnv) error {
				h, err := reviewPage(env.cfg, env.svc, log)
				if err != nil {
					return err
				}
				mux := newMux(func() (bool, string) { return true, "" }, nil)
				mux.Handle(web.Prefix, h)
				srv, url, err := serveHTTP(addr, mux, h, log)
				if err != nil {
					return err
				}
				_, _ = fmt.Fprintf(cmd.ErrOrStderr(), "review page: %s/review/\n", url)
				<-cmd.Context().Done()
				shutdownHTTP(srv, log)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&addr, "http", "127.0.0.1:8081", "address to serve on")
	return cmd
}

// flushTimeout bounds producing a decision right after it is made.
const flushTimeout = 10 * time.Second
