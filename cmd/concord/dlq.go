package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/user"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/concord-sync/concord/config"
	"github.com/concord-sync/concord/dlq"
	"github.com/concord-sync/concord/pipeline"
)

// reviewEnv is what the dlq commands share: the configuration, Redis and the review
// service, whose decisions are produced to Kafka at once.
type reviewEnv struct {
	cfg *config.Config
	rdb redis.UniversalClient
	svc *dlq.Service
}

func openReview(cfgPath string) (*reviewEnv, func(), error) {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return nil, nil, err
	}
	rdb, kc, err := clients(context.Background(), cfg)
	if err != nil {
		return nil, nil, err
	}
	store := dlq.NewStore(rdb, cfg.Name)
	w, err := pipeline.NewProducer(cfg.Kafka.Brokers, cfg.Kafka.MaxMessageBytes, kc.Producer, zap.NewNop()) // a failure is reported by flush
	if err != nil {
		_ = rdb.Close()
		return nil, nil, err
	}
	flush := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, flushTimeout)
		defer cancel()
		err := pipeline.DrainOutbox(ctx, cfg, store, w)
		if err != nil {
			_, _ = fmt.Fprintf(os.Stderr, "concord: the decision is recorded but could not be sent to Kafka yet (%v); a running concord sends it\n", err)
		}
		return err
	}
	env := &reviewEnv{cfg: cfg, rdb: rdb, svc: dlq.NewService(store, sharedFields(cfg), flush)}
	return env, func() { w.Close(); _ = rdb.Close() }, nil
}

func sharedFields(cfg *config.Config) []string {
	var out []string
	for f, owner := range cfg.Authority {
		if owner == config.Shared {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}

func newDLQCommand() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Review the dead-letter queue: list, show, resolve and dismiss entries, read the audit trail and patterns",
		Long: `Review what concord could not decide safely. Each entry is one record with the fields under
review and each system's latest version of them; later changes to held fields are attached.

Resolving applies the chosen values to every system whose value differs, through Kafka
(rule review), exactly once even if two reviewers decide at the same time; a decision on an
entry that changed since it was loaded is refused. The reviewer is --reviewer, or the login
name. Output is an aligned table, or JSON with --json.`,
	}
	cmd.PersistentFlags().StringVar(&cfgPath, "config", "", "configuration file (YAML)")
	_ = cmd.MarkPersistentFlagRequired("config")
	open := func() (*reviewEnv, func(), error) { return openReview(cfgPath) }
	cmd.AddCommand(newDLQListCommand(open), newDLQShowCommand(open), newDLQResolveCommand(open),
		newDLQDismissCommand(open), newDLQAuditCommand(open), newDLQPatternsCommand(open), newDLQServeCommand(open),
		newDLQReevaluateCommand(open, &cfgPath))
	return cmd
}

type opener func() (*reviewEnv, func(), error)

func withReview(open opener, fn func(*reviewEnv) error) error {
	env, closeFn, err := open()
	if err != nil {
		return err
	}
	defer closeFn()
	return fn(env)
}

func newDLQListCommand(open opener) *cobra.Command {
	var f dlq.Filter
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List entries, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.Status == "all" {
				f.Status = ""
			}
			return withReview(open, func(env *reviewEnv) error {
				entries, err := env.svc.List(cmd.Context(), f)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(cmd.OutOrStdout(), entries)
				}
				return printEntries(cmd.OutOrStdout(), entries, time.Now())
			})
		},
	}
	cmd.Flags().StringVar(&f.Status, "status", dlq.StatusPending, "pending_review, resolved, dismissed or all")
	cmd.Flags().StringVar(&f.Field, "field", "", "only entries holding this field")
	cmd.Flags().StringVar(&f.System, "system", "", "only entries with a version of this system")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printEntries(w io.Writer, entries []*dlq.Entry, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	pr := &printer{w: tw}
	pr.printf("ID\tAGE\tRECORD\tFIELDS\tREASON\tSYSTEMS\tSTATUS\n")
	for _, e := range entries {
		pr.printf("%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, age(now.Sub(e.QueuedAt)), e.Record,
			strings.Join(e.Fields, ","), strings.Join(e.Reasons, ","), strings.Join(slices.Sorted(maps.Keys(e.Versions)), ","), e.Status)
	}
	if len(entries) == 0 {
		pr.printf("(none)\n")
	}
	return pr.flush(tw)
}

// age is a duration for people: "45s", "12m", "3h 12m", "2d 4h".
func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}

func newDLQShowCommand(open opener) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show an entry: the base value and each system's version side by side",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withReview(open, func(env *reviewEnv) error {
				e, err := env.svc.Get(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(cmd.OutOrStdout(), e)
				}
				return printEntry(cmd.OutOrStdout(), e)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printEntry(w io.Writer, e *dlq.Entry) error {
	systems := slices.Sorted(maps.Keys(e.Versions))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	pr := &printer{w: tw}
	pr.printf("entry %s  record %s  status %s  rev %d  queued %s\n", e.ID, e.Record, e.Status, e.Rev, e.QueuedAt.Format(time.RFC3339))
	pr.printf("reasons: %s\n\n", strings.Join(e.Reasons, ", "))
	pr.printf("FIELD\tBASE")
	for _, s := range systems {
		pr.printf("\t%s", strings.ToUpper(s))
	}
	pr.printf("\t\n")
	fields := e.Fields
	if e.WholeRecord() {
		fields = allFields(e)
	}
	for _, f := range fields {
		pr.printf("%s\t%s", f, show(e.Base[f]))
		first := ""
		differ := false
		for i, s := range systems {
			v := e.Versions[s]
			val := show(v.Values[f])
			if v.Deleted {
				val = "(deleted)"
			}
			if i == 0 {
				first = val
			} else if val != first {
				differ = true
			}
			pr.printf("\t%s", val)
		}
		mark := ""
		if differ {
			mark = "<- differs"
		}
		pr.printf("\t%s\n", mark)
	}
	pr.printf("(time)\t")
	for _, s := range systems {
		pr.printf("\t%s", time.UnixMicro(e.Versions[s].TsUs).UTC().Format(time.RFC3339Nano))
	}
	pr.printf("\t\n")
	for _, a := range e.Attached {
		pr.printf("attached: %s at %s: %s\n", a.System, a.At.Format(time.RFC3339), values(a.Values))
	}
	if e.DecidedBy != "" {
		pr.printf("decided by %s at %s: %s %s\n", e.DecidedBy, e.DecidedAt.Format(time.RFC3339), e.Choice, e.DismissReason)
	}
	return pr.flush(tw)
}

func allFields(e *dlq.Entry) []string {
	set := map[string]bool{}
	for _, f := range e.Fields {
		set[f] = true
	}
	for _, v := range e.Versions {
		for f := range v.Values {
			set[f] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// show renders a canonical JSON value: a string as its text, anything else as JSON.
func show(v json.RawMessage) string {
	if v == nil {
		return "-"
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(v)
}

func values(m map[string]json.RawMessage) string {
	var parts []string
	for _, f := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, f+"="+show(m[f]))
	}
	return strings.Join(parts, " ")
}

func newDLQResolveCommand(open opener) *cobra.Command {
	var pick, reviewer string
	var fields, vals []string
	var rev int64
	var bulk bulkFlags
	cmd := &cobra.Command{
		Use:   "resolve (ID | --all [filters]) (--pick SYSTEM | --field f=SYSTEM ... | --value f=VALUE ...)",
		Short: "Resolve an entry, or every entry matching filters: pick one system's version, or choose per field",
		Long: `Resolve an entry. --pick SYSTEM takes that system's version of every field; --field f=SYSTEM
and --value f=VALUE choose per field (every field of the entry needs one). VALUE is JSON
(a string needs quotes: --value 'notes="call back"'); text that is not JSON is taken as a
string. --rev is the revision you decided on (from show); by default the current one.

With --all, every pending entry matching the filters (--field F without "=", --system,
--reason, --older-than) gets the same choice, each with its own atomic decision and audit
line. The entries are listed first (the preview); one that changes or is decided before
its turn is skipped and reported, never decided blindly, and so is one the choice does
not cover (say, --pick a system with no version of a field). --dry-run prints the preview
only.`,
		Example: "  concord dlq resolve --config concord.yaml --all --field notes --pick billing",
		Args: func(_ *cobra.Command, args []string) error {
			if bulk.all {
				return cobra.NoArgs(nil, args)
			}
			return cobra.ExactArgs(1)(nil, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			r := dlq.Resolution{Pick: pick, Reviewer: reviewerName(reviewer)}
			var err error
			if bulk.all {
				var choices []string
				for _, f := range fields {
					if strings.Contains(f, "=") {
						choices = append(choices, f)
					} else if bulk.filter.Field == "" {
						bulk.filter.Field = f
					} else {
						return fmt.Errorf("--field %s: with --all, one --field without = filters the entries", f)
					}
				}
				fields = choices
			}
			if r.Fields, err = pairs(fields, "--field"); err != nil {
				return err
			}
			raw, err := pairs(vals, "--value")
			if err != nil {
				return err
			}
			r.Values = jsonValues(raw)
			if bulk.all {
				if r.Pick == "" && len(r.Fields) == 0 && len(r.Values) == 0 {
					return errors.New("--all needs the choice: --pick SYSTEM, or --field f=SYSTEM / --value f=VALUE")
				}
				r.Note = "bulk: " + bulk.describe()
				return withReview(open, func(env *reviewEnv) error {
					return bulk.run(cmd, env, "resolve", func(*dlq.Entry) (*dlq.Resolution, string) {
						c := r
						return &c, ""
					})
				})
			}
			r.EntryID = args[0]
			return withReview(open, func(env *reviewEnv) error {
				if r.Rev = rev; rev == 0 {
					e, err := env.svc.Get(cmd.Context(), args[0])
					if err != nil {
						return err
					}
					r.Rev = e.Rev
				}
				out, err := env.svc.Resolve(cmd.Context(), r)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "resolved %s (record %s) by %s: %s\n", out.Entry.ID, out.Entry.Record, r.Reviewer, values(out.Values))
				return err
			})
		},
	}
	cmd.Flags().StringVar(&pick, "pick", "", "take this system's version of every field")
	cmd.Flags().StringArrayVar(&fields, "field", nil, "f=SYSTEM: take SYSTEM's version of field f (repeatable); with --all, F alone filters")
	cmd.Flags().StringArrayVar(&vals, "value", nil, "f=VALUE: set field f to VALUE, JSON (repeatable)")
	cmd.Flags().Int64Var(&rev, "rev", 0, "the entry revision you decided on (default: the current one)")
	cmd.Flags().StringVar(&reviewer, "reviewer", "", "who decides (default: the login name)")
	bulk.register(cmd, true)
	return cmd
}

func pairs(list []string, flag string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range list {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s %q: want field=choice", flag, p)
		}
		out[k] = v
	}
	return out, nil
}

func jsonValues(raw map[string]string) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for k, v := range raw {
		if json.Valid([]byte(v)) {
			out[k] = json.RawMessage(v)
			continue
		}
		b, _ := json.Marshal(v)
		out[k] = b
	}
	return out
}

func reviewerName(flag string) string {
	if flag != "" {
		return flag
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "unknown"
}

func newDLQDismissCommand(open opener) *cobra.Command {
	var reason, reviewer, field string
	var rev int64
	var bulk bulkFlags
	cmd := &cobra.Command{
		Use:   "dismiss (ID | --all [filters]) --reason TEXT",
		Short: "Dismiss an entry, or every entry matching filters, without applying anything (the held fields flow again)",
		Args: func(_ *cobra.Command, args []string) error {
			if bulk.all {
				return cobra.NoArgs(nil, args)
			}
			return cobra.ExactArgs(1)(nil, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			who := reviewerName(reviewer)
			if bulk.all {
				bulk.filter.Field = field
				return withReview(open, func(env *reviewEnv) error { return bulk.dismiss(cmd, env, reason, who) })
			}
			return withReview(open, func(env *reviewEnv) error {
				d := dlq.Dismissal{EntryID: args[0], Rev: rev, Reason: reason, Reviewer: who}
				if rev == 0 {
					e, err := env.svc.Get(cmd.Context(), args[0])
					if err != nil {
						return err
					}
					d.Rev = e.Rev
				}
				if err := env.svc.Dismiss(cmd.Context(), d); err != nil {
					return err
				}
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "dismissed %s by %s: %s\n", d.EntryID, d.Reviewer, d.Reason)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (required)")
	cmd.Flags().Int64Var(&rev, "rev", 0, "the entry revision you decided on (default: the current one)")
	cmd.Flags().StringVar(&reviewer, "reviewer", "", "who decides (default: the login name)")
	cmd.Flags().StringVar(&field, "field", "", "with --all: only entries holding this field")
	bulk.register(cmd, true)
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}

func newDLQAuditCommand(open opener) *cobra.Command {
	var f dlq.AuditFilter
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "The audit trail, newest first: review actions and automatic decisions' rules",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withReview(open, func(env *reviewEnv) error {
				entries, err := env.svc.Audit(cmd.Context(), f)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(cmd.OutOrStdout(), entries)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
				pr := &printer{w: tw}
				pr.printf("TIME\tKIND\tRECORD\tFIELDS\tBY\tRULE\tWINNER\tCHOICE / REASON\tVALUES\n")
				for _, a := range entries {
					by := a.Reviewer
					if by == "" {
						by = a.System
					}
					pr.printf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.At.UTC().Format(time.RFC3339), a.Kind, a.Record,
						strings.Join(a.Fields, ","), by, a.Rule, a.Winner, strings.TrimSpace(a.Choice+" "+a.Reason), values(a.Values))
				}
				return pr.flush(tw)
			})
		},
	}
	cmd.Flags().StringVar(&f.Record, "record", "", "only this record")
	cmd.Flags().IntVar(&f.Limit, "limit", 100, "at most this many entries")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newDLQPatternsCommand(open opener) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "patterns",
		Short: "Records that keep coming back, fields that keep conflicting, systems that keep losing, and authority suggestions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withReview(open, func(env *reviewEnv) error {
				p, err := env.svc.Patterns(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(cmd.OutOrStdout(), p)
				}
				return printPatterns(cmd.OutOrStdout(), p)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printPatterns(w io.Writer, p *dlq.Patterns) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	pr := &printer{w: tw}
	for _, sec := range []struct {
		title string
		rows  []dlq.Count
	}{{"RECORDS THAT KEEP COMING BACK", p.Records}, {"FIELDS THAT KEEP CONFLICTING", p.Fields}, {"SYSTEMS THAT KEEP LOSING", p.Losers}} {
		pr.printf("%s\tTIMES\n", sec.title)
		for _, c := range sec.rows {
			pr.printf("%s\t%d\n", c.Name, c.Count)
		}
		if len(sec.rows) == 0 {
			pr.printf("(none)\t\n")
		}
		pr.printf("\t\n")
	}
	pr.printf("SUGGESTIONS\t\n")
	for _, s := range p.Suggestions {
		pr.printf("%s\t\n", s.Message)
	}
	if len(p.Suggestions) == 0 {
		pr.printf("(none: no shared field is won by one system almost every time)\t\n")
	}
	return pr.flush(tw)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printer writes formatted text and keeps the first error.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func (p *printer) flush(tw *tabwriter.Writer) error {
	if p.err != nil {
		return p.err
	}
	return tw.Flush()
}
