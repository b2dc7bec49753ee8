// Command concord keeps two or more systems in sync both ways from their Debezium
// change streams. See the README for the subcommands.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "concord:", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "concord",
		Short:         "Two-way sync of business systems from Debezium change streams",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       currentBuild().String(),
	}
	root.AddCommand(newConfigCommand(), newReplayCommand(), newRunCommand(), newDemoCommand(), newDLQCommand(), newBenchCommand(), newHealthCommand())
	root.AddCommand(newSoakCommand())
	return root
}
