package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/concord-sync/concord/config"
	"github.com/concord-sync/concord/pipeline/replay"
)

func newReplayCommand() *cobra.Command {
	var cfgPath, input string
	var messages bool
	var fk fromKafkaFlags
	cmd := &cobra.Command{
		Use:   "replay --config FILE --input FILE.jsonl",
		Short: "Run the resolver over a file of change events and print every decision",
		Long: `Run the same resolver and state logic as "concord run" over a file of Kafka
messages, with in-memory state, and print one JSON decision per line: applies (in the
target system's column names), conflicts decided by rule, DLQ entries, skips, echoes,
duplicates, ignored messages and poison. The output is deterministic, so replay is also
how to ask "what would concord have done" with a different configuration.

Input, one message per line:
  {"system":"crm","partition":0,"offset":17,"key":{...},"value":{...},"headers":{"k":"v"}}
partition, offset and headers are optional (offset defaults to the line's index); a null
value is a tombstone; a value that is a JSON string holds raw message bytes. Use "-" to
read standard input. Replay time is the latest source timestamp seen; pairing windows
still open at the end are closed.

With --messages, print instead one line per Kafka message concord would produce (apply
events, audit entries, poison messages), built by the pipeline's own encoders:
  {"topic":"contacts.apply.billing","key":{...},"value":{...} or null,"headers":{...}}
A key or value whose bytes are not JSON (such as most audit record keys) is a JSON
string of them.`,
		Example: "  concord replay --config testdata/config/example.yaml --input testdata/replay/example.jsonl\n" +
			"  concord replay --config testdata/config/example.yaml --input testdata/replay/example.jsonl --messages\n" +
			"  concord replay --config new.yaml --from-kafka --since 24h --diff",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
			}
			if fk.enabled {
				return fk.run(cmd, cfg, messages)
			}
			if input == "" {
				return errors.New("give --input FILE (or - for standard input), or --from-kafka")
			}
			in := os.Stdin
			if input != "-" {
				f, err := os.Open(input)
				if err != nil {
					return fmt.Errorf("replay input: %w", err)
				}
				defer func() { _ = f.Close() }() // read only: a failed close loses nothing
				in = f
			}
			out := bufio.NewWriter(cmd.OutOrStdout())
			r, err := replay.New(cfg, out)
			if err != nil {
				return err
			}
			r.Messages = messages
			if err := r.Run(in); err != nil {
				_ = out.Flush()
				return fmt.Errorf("replay %s: %w", input, err)
			}
			return out.Flush()
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "configuration file (YAML)")
	cmd.Flags().StringVar(&input, "input", "", `replay file (JSON lines), or "-" for standard input`)
	cmd.Flags().BoolVar(&messages, "messages", false, "print the Kafka messages concord would produce instead of decisions")
	fk.register(cmd)
	_ = cmd.MarkFlagRequired("config")
	return cmd
}
