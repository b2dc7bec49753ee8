package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/concord-sync/concord/config"
)

func newConfigCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Work with concord configuration files",
		Long: `Work with concord configuration files.

A configuration file is YAML: the systems to sync (their topics, key fields, timestamp
source, column mappings and apply topics), the authority map and the resolution settings.
CONCORD_KAFKA_BROKERS, CONCORD_REDIS_ADDR and CONCORD_REDIS_PASSWORD override the file.`,
	}
	cmd.AddCommand(newConfigCheckCommand())
	return cmd
}

func newConfigCheckCommand() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "check --config FILE",
		Short: "Validate a configuration file and explain what it means",
		Long: `Validate a configuration file the way "concord run" would: unknown keys, values of
the wrong type, missing settings, clashing topics, inconsistent keys and authority
entries that name no system are all reported, one per line with their key and line
number, and the command exits non-zero. A valid file is summarised in words: each
system's topics, key, timestamp, column mappings and owned fields, and how conflicts
are resolved. The environment overrides (CONCORD_KAFKA_BROKERS, CONCORD_REDIS_ADDR,
CONCORD_REDIS_PASSWORD) are applied first, as at start-up.`,
		Example: "  concord config check --config concord.yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runConfigCheck(cmd.OutOrStdout(), path)
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "configuration file to check (required)")
	_ = cmd.MarkFlagRequired("config") // fails only if the flag does not exist
	return cmd
}

// runConfigCheck prints the summary of a valid file, or every problem of an invalid one
// followed by an error saying how many there are.
func runConfigCheck(out io.Writer, path string) error {
	cfg, err := config.Load(path)
	var invalid *config.ValidationError
	switch {
	case errors.As(err, &invalid):
		var report strings.Builder
		for _, p := range invalid.Problems {
			report.WriteString(p.Error() + "\n")
		}
		if _, err := io.WriteString(out, report.String()); err != nil {
			return fmt.Errorf("write problems: %w", err)
		}
		n := len(invalid.Problems)
		return fmt.Errorf("%s: %d %s; fix them and check again", path, n, plural(n, "problem", "problems"))
	case err != nil:
		return fmt.Errorf("check %s: %w", path, err)
	}
	var warnings strings.Builder
	for _, w := range cfg.Warnings() {
		warnings.WriteString("warning: " + w + "\n")
	}
	if _, err := fmt.Fprintf(out, "%s: valid\n%s\n%s", path, warnings.String(), cfg.Summary()); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
