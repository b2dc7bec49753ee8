package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/concord-sync/concord/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestRunServesAndStopsGracefully runs the real binary against kfake and Redis: it
// becomes ready, syncs a change, serves its metrics, and on SIGTERM commits, leaves
// the group and exits 0 with JSON logs.
func TestRunServesAndStopsGracefully(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "concord")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	brokers := testenv.Kafka(t, 2, "crm.public.contacts", "billing.public.customers")
	rs := testenv.Redis(t)
	cfgPath := filepath.Join(t.TempDir(), "concord.yaml")
	cfg := fmt.Sprintf(`name: contacts
kafka: {brokers: [%q]}
redis: {addr: %q, db: %d}
systems:
  crm: {topic: crm.public.contacts, key: [id], fields: {email: email_address}}
  billing: {topic: billing.public.customers, key: [id], fields: {id: cust_id}}
authority: {email: crm, notes: shared}
`, brokers[0], rs.Addr, rs.DB)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(bin, "run", "--config", cfgPath, "--http", addr)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	waitHTTP(t, "http://"+addr+"/readyz", http.StatusOK)
	if body := get(t, "http://"+addr+"/healthz"); body != "ok\n" {
		t.Errorf("/healthz = %q", body)
	}
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), BatchTimeout: time.Millisecond}
	defer func() { _ = w.Close() }()
	err := w.WriteMessages(context.Background(), kafka.Message{
		Topic: "crm.public.contacts", Key: []byte(`{"id":1}`),
		Value: []byte(`{"before":null,"after":{"id":1,"email_address":"a@x","notes":"hi"},"source":{"connector":"postgresql","lsn":5,"ts_ms":1},"op":"c"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: "contacts.apply.billing", GroupID: "t", MaxWait: 50 * time.Millisecond})
	defer func() { _ = r.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Deadline)
	defer cancel()
	m, err := r.FetchMessage(ctx)
	if err != nil {
		t.Fatalf("no apply: %v\n%s", err, logs.String())
	}
	if !strings.Contains(string(m.Value), `"email":"a@x"`) {
		t.Errorf("apply = %s", m.Value)
	}
	// The batch's metrics are counted once its offsets are committed.
	deadline := time.Now().Add(testenv.Deadline)
	for !strings.Contains(get(t, "http://"+addr+"/metrics"), `concord_events_total{op="c",system="crm"} 1`) {
		if time.Now().After(deadline) {
			t.Fatalf("/metrics does not count the event:\n%s", get(t, "http://"+addr+"/metrics"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	checkMetricsHygiene(t, get(t, "http://"+addr+"/metrics"))

	// SIGHUP reloads the authority map; an invalid file is refused and counted.
	if err := os.WriteFile(cfgPath, []byte(strings.Replace(cfg, "email: crm", "email: billing", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, addr, `concord_config_reloads_total{result="ok"} 1`)
	if err := os.WriteFile(cfgPath, []byte(strings.Replace(cfg, "email: crm", "email: nobody", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, addr, `concord_config_reloads_total{result="invalid"} 1`)

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(testenv.Deadline):
		t.Fatalf("still running %s after SIGTERM\n%s", testenv.Deadline, logs.String())
	}
	out := logs.String()
	for _, want := range []string{`"msg":"partition stopped"`, `"msg":"consumer group left"`} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %s:\n%s", want, out)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String()
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url) //nolint:gosec,noctx // a test against its own server
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func waitHTTP(t *testing.T, url string, status int) {
	t.Helper()
	deadline := time.Now().Add(testenv.Deadline)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url) //nolint:gosec,noctx // a test against its own server
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == status {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never answered %d", url, status)
}

// waitMetric waits until /metrics shows a series.
func waitMetric(t *testing.T, addr, series string) {
	t.Helper()
	deadline := time.Now().Add(testenv.Deadline)
	for !strings.Contains(get(t, "http://"+addr+"/metrics"), series) {
		if time.Now().After(deadline) {
			t.Fatalf("/metrics never showed %s", series)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkMetricsHygiene: the exposition passes promtool check metrics, counters of
// known label values exist at 0 before their first event, no label value is empty,
// and the build and the process are described.
func checkMetricsHygiene(t *testing.T, metrics string) {
	t.Helper()
	for _, want := range []string{
		`concord_poison_total{system="crm"} 0`, `concord_poison_total{system="review"} 0`,
		`concord_conflicts_total{rule="lww"} 0`, `concord_decisions_total{kind="echo",rule="none"}`,
		`concord_echoes_total{system="billing"}`, `concord_dependency_up{dependency="redis"} 1`,
		`concord_build_info{goversion="go`, "process_resident_memory_bytes", "go_goroutines",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(metrics, `=""`) {
		for line := range strings.SplitSeq(metrics, "\n") {
			if strings.Contains(line, `=""`) {
				t.Errorf("a series with an empty label value: %s", line)
			}
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(metrics, "\n") {
		name, ok := strings.CutPrefix(line, "# HELP ")
		if !ok || !strings.HasPrefix(name, "concord_") {
			continue
		}
		name, _, _ = strings.Cut(name, " ")
		documented := strings.Contains(string(readme), "`"+name+"`")
		if prefix, _, found := strings.Cut(name, "_pattern_"); found {
			documented = documented || strings.Contains(string(readme), "`"+prefix+"_pattern_*`")
		}
		if !documented {
			t.Errorf("metric %s is not in the README's metric table", name)
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool is not installed: the exposition is not linted")
		return
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(metrics)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestHealthCommand: concord health exits 0 on a 200 from /readyz, and fails with the
// reason on a 503 or when nothing answers.
func TestHealthCommand(t *testing.T) {
	var ready atomic.Bool
	ready.Store(true)
	srv := httptest.NewServer(newMux(func() (bool, string) { return ready.Load(), "redis does not answer: connection refused" }, nil))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	if err := probeHealth(context.Background(), addr, "/readyz"); err != nil {
		t.Errorf("ready: %v", err)
	}
	ready.Store(false)
	err := probeHealth(context.Background(), addr, "readyz")
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "redis does not answer") {
		t.Errorf("not ready: err = %v", err)
	}
	if err := probeHealth(context.Background(), addr, "/healthz"); err != nil {
		t.Errorf("/healthz while not ready: %v", err)
	}
	if err := probeHealth(context.Background(), freeAddr(t), "/readyz"); err == nil {
		t.Error("nothing listening: no error")
	}
	root := newRootCommand()
	root.SetArgs([]string{"health", "--http", addr})
	if err := root.Execute(); err == nil {
		t.Error("concord health exited 0 while /readyz answers 503")
	}
}
