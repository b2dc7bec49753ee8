package main

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// TestDemoJSON runs `concord demo --duration 20s --json` as a user would and checks the
// contract of DESIGN.md section 7: the systems end in sync (diverged_records 0) after
// real conflicts, DLQ entries and echoes.
func TestDemoJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about half a minute")
	}
	var out, errOut bytes.Buffer
	cmd := newRootCommand()
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs([]string{"demo", "--duration", "20s", "--json"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("demo: %v\n%s", err, errOut.String())
	}
	var sum map[string]any
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		t.Fatalf("summary is not one JSON object: %v\n%s", err, out.String())
	}
	for _, key := range []string{"events", "decisions", "conflicts", "dlq_entries", "echoes", "records", "diverged_records"} {
		if _, ok := sum[key]; !ok {
			t.Errorf("summary has no %q: %s", key, out.String())
		}
	}
	if sum["diverged_records"] != 0.0 {
		t.Errorf("diverged_records = %v: %s", sum["diverged_records"], out.String())
	}
	for _, key := range []string{"conflicts", "dlq_entries", "echoes", "events"} {
		if n, _ := sum[key].(float64); n <= 0 {
			t.Errorf("%s = %v, want more than 0: %s", key, sum[key], out.String())
		}
	}
	if n, _ := sum["sink_restarts"].(float64); n < 2 {
		t.Errorf("sink_restarts = %v, want both sinks restarted once: %s", sum["sink_restarts"], out.String())
	}
	if d, _ := sum["decisions"].(map[string]any); d["conflict"] == nil {
		t.Errorf("no conflict decided by rule (last-write-wins): %s", out.String())
	}
	t.Logf("summary: %s", out.String())
}

// TestDemoKafkaAddress: --kafka puts the embedded broker where a user's Kafka client
// can watch the demo's topics, and the address is printed at start.
func TestDemoKafkaAddress(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo")
	}
	addr := freeAddr(t)
	var progress bytes.Buffer
	o := demoOptions{duration: 2 * time.Second, rate: 50, skew: 300 * time.Millisecond, records: 20, seed: 1, settle: time.Minute, kafka: addr}
	var topics []string
	err := runDemo(context.Background(), o, zap.NewNop(), &progress, func(*demoSummary) error {
		client := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 10 * time.Second}
		md, err := client.Metadata(context.Background(), &kafka.MetadataRequest{})
		if err != nil {
			return err
		}
		for _, tp := range md.Topics {
			topics = append(topics, tp.Name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(progress.String(), "kafka: "+addr) {
		t.Errorf("the broker's address is not printed: %q", progress.String())
	}
	for _, want := range []string{"contacts.apply.billing", "contacts.poison", "contacts.audit", "crm.public.contacts"} {
		if !slices.Contains(topics, want) {
			t.Errorf("topic %s not seen at %s: %v", want, addr, topics)
		}
	}
	for _, bad := range []string{"0.0.0.0:9092", "127.0.0.1", "127.0.0.1:x"} {
		if _, err := demoKafkaPort(bad); err == nil {
			t.Errorf("--kafka %s accepted", bad)
		}
	}
}
