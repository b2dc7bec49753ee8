package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/concord-sync/concord/dlq"
	"github.com/concord-sync/concord/resolver"
)

// bulkFlags select the entries of a bulk decision and say whether to apply it.
type bulkFlags struct {
	all       bool
	dryRun    bool
	asJSON    bool
	filter    dlq.Filter
	olderThan time.Duration
}

func (b *bulkFlags) register(cmd *cobra.Command, withAll bool) {
	if withAll {
		cmd.Flags().BoolVar(&b.all, "all", false, "every pending entry matching the filters")
	}
	cmd.Flags().StringVar(&b.filter.System, "system", "", "only entries with a version of this system")
	cmd.Flags().StringVar(&b.filter.Reason, "reason-code", "", "only entries with this reason (clock_skew, delete_vs_update, …)")
	cmd.Flags().DurationVar(&b.olderThan, "older-than", 0, "only entries queued longer ago than this")
	cmd.Flags().BoolVar(&b.dryRun, "dry-run", false, "print what would be decided, decide nothing")
	cmd.Flags().BoolVar(&b.asJSON, "json", false, "print the result as JSON")
}

func (b *bulkFlags) describe() string {
	var parts []string
	if b.filter.Field != "" {
		parts = append(parts, "field "+b.filter.Field)
	}
	if b.filter.System != "" {
		parts = append(parts, "system "+b.filter.System)
	}
	if b.filter.Reason != "" {
		parts = append(parts, "reason "+b.filter.Reason)
	}
	if b.olderThan > 0 {
		parts = append(parts, "older than "+b.olderThan.String())
	}
	if len(parts) == 0 {
		return "every pending entry"
	}
	return strings.Join(parts, ", ")
}

// run previews the matching entries and, unless --dry-run, decides each with choose.
func (b *bulkFlags) run(cmd *cobra.Command, env *reviewEnv, verb string, choose func(*dlq.Entry) (*dlq.Resolution, string)) error {
	ctx := cmd.Context()
	if b.olderThan > 0 {
		b.filter.QueuedBefore = time.Now().Add(-b.olderThan)
	}
	preview, err := env.svc.Preview(ctx, b.filter)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if b.dryRun {
		type would struct {
			EntryID string `json:"entry_id"`
			Record  string `json:"record"`
			Choice  string `json:"choice,omitempty"`
			Stays   string `json:"stays,omitempty"`
		}
		var list []would
		for _, p := range preview {
			e, err := env.svc.Get(ctx, p.EntryID)
			if err != nil {
				return err
			}
			w := would{EntryID: e.ID, Record: e.Record}
			if r, why := choose(e); r != nil {
				w.Choice = choiceText(r)
			} else {
				w.Stays = why
			}
			list = append(list, w)
		}
		if b.asJSON {
			return writeJSON(out, list)
		}
		n := 0
		for _, w := range list {
			if w.Choice != "" {
				n++
				_, _ = fmt.Fprintf(out, "would %s %s (record %s): %s\n", verb, w.EntryID, w.Record, w.Choice)
			} else {
				_, _ = fmt.Fprintf(out, "stays   %s (record %s): %s\n", w.EntryID, w.Record, w.Stays)
			}
		}
		_, err := fmt.Fprintf(out, "%d of %d pending entries (%s) would be decided; nothing was (--dry-run)\n", n, len(list), b.describe())
		return err
	}
	res, err := env.svc.ResolveAll(ctx, preview, choose)
	if res != nil && b.asJSON {
		if werr := writeJSON(out, res); werr != nil {
			return werr
		}
	} else if res != nil {
		for _, id := range res.Decided {
			_, _ = fmt.Fprintf(out, "%sd %s\n", verb, id)
		}
		for _, s := range res.Skipped {
			_, _ = fmt.Fprintf(out, "skipped %s: %s\n", s.EntryID, s.Why)
		}
		_, _ = fmt.Fprintf(out, "%d decided, %d skipped of %d previewed (%s)\n", len(res.Decided), len(res.Skipped), len(preview), b.describe())
	}
	return err
}

func choiceText(r *dlq.Resolution) string {
	if r.Pick != "" {
		return "pick " + r.Pick
	}
	var parts []string
	for _, f := range slices.Sorted(maps.Keys(r.Fields)) { // in field order, not the map's
		parts = append(parts, f+"="+r.Fields[f])
	}
	for _, f := range slices.Sorted(maps.Keys(r.Values)) {
		parts = append(parts, f+"=value")
	}
	return strings.Join(parts, ", ")
}

func newDLQReevaluateCommand(open opener, cfgPath *string) *cobra.Command {
	var b bulkFlags
	var field string
	cmd := &cobra.Command{
		Use:   "reevaluate [--dry-run] [filters]",
		Short: "Decide pending entries again under the current configuration",
		Long: `Decide every pending entry again under the configuration (after an authority change, a new
clock-skew tolerance or delete strategy). An entry the rules now decide is resolved as
they decide it, through the ordinary review path: the same atomic, stale-safe decision,
an audit entry with reviewer "config" and the configuration's revision (the first 12 hex
digits of the file's SHA-256). The rest stay, with why. --dry-run shows what would happen.

Decided by the rules: clock-skew conflicts (per field: the owner's version of an owned
field; the later version of a shared field when it is later by more than the pair's
tolerance) and delete-against-update entries under deletes: delete_wins or update_wins.
Loops, unconfirmed applies, possible redeliveries, type mismatches and initial
divergences stay for a person.`,
		Example: "  concord dlq reevaluate --config concord.yaml --dry-run\n  concord dlq reevaluate --config concord.yaml --field notes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b.filter.Field = field
			rev, err := configRevision(*cfgPath)
			if err != nil {
				return err
			}
			return withReview(open, func(env *reviewEnv) error {
				res, err := resolver.New(env.cfg)
				if err != nil {
					return err
				}
				return b.run(cmd, env, "resolve", dlq.ByRules(res, rev))
			})
		},
	}
	cmd.Flags().StringVar(&field, "field", "", "only entries holding this field")
	b.register(cmd, false)
	return cmd
}

// configRevision names a configuration file's contents: the first 12 hex digits of
// its SHA-256.
func configRevision(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])[:12], nil
}

// dismiss previews the matching entries and, unless --dry-run, dismisses each.
func (b *bulkFlags) dismiss(cmd *cobra.Command, env *reviewEnv, reason, reviewer string) error {
	if b.dryRun {
		return b.run(cmd, env, "dismiss", func(*dlq.Entry) (*dlq.Resolution, string) {
			return &dlq.Resolution{}, ""
		})
	}
	if b.olderThan > 0 {
		b.filter.QueuedBefore = time.Now().Add(-b.olderThan)
	}
	preview, err := env.svc.Preview(cmd.Context(), b.filter)
	if err != nil {
		return err
	}
	res, err := env.svc.DismissAll(cmd.Context(), preview, reason, reviewer)
	if res != nil {
		if b.asJSON {
			return writeJSON(cmd.OutOrStdout(), res)
		}
		out := cmd.OutOrStdout()
		for _, id := range res.Decided {
			_, _ = fmt.Fprintf(out, "dismissed %s\n", id)
		}
		for _, s := range res.Skipped {
			_, _ = fmt.Fprintf(out, "skipped %s: %s\n", s.EntryID, s.Why)
		}
		_, _ = fmt.Fprintf(out, "%d dismissed, %d skipped of %d previewed (%s)\n", len(res.Decided), len(res.Skipped), len(preview), b.describe())
	}
	return err
}
