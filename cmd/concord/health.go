package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func newHealthCommand() *cobra.Command {
	var addr, path string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "health --http ADDR",
		Short: "Probe a running concord: exit 0 when /readyz answers 200 (for container health checks)",
		Long: `Ask a running concord whether it is ready: GET http://ADDR/readyz (or --path), exit 0 on 200
and 1 otherwise, printing the reason it gives. The image has no shell or HTTP client, so
this is what a compose healthcheck or a Kubernetes exec probe runs.`,
		Example: "  concord health --http 127.0.0.1:8080",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return probeHealth(ctx, addr, path)
		},
	}
	cmd.Flags().StringVar(&addr, "http", "127.0.0.1:8080", "the address concord run --http serves")
	cmd.Flags().StringVar(&path, "path", "/readyz", "the endpoint: /readyz (ready to process) or /healthz (alive)")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "give up after this long")
	return cmd
}

// probeHealth returns nil when the endpoint answers 200, else an error with what it said.
func probeHealth(ctx context.Context, addr, path string) error {
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	url := addr + path
	if !strings.Contains(addr, "://") {
		url = "http://" + url
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%s: no answer in time", url)
		}
		return err
	}
	defer func() { _ = res.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", url, res.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
