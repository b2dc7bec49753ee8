package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/concord-sync/concord/config"
	"github.com/concord-sync/concord/internal/testenv"
)

// TestConfigCheckShowsNoSecrets: concord config check prints neither the summary of
// a valid file nor the problems of an invalid one with a secret in them, whether
// the secret came from the environment, a file, or was written where it does not
// belong.
func TestConfigCheckShowsNoSecrets(t *testing.T) {
	dir := t.TempDir()
	secrets := map[string]string{
		config.EnvHTTPToken: "env-token-abc1", config.EnvRedisPassword: "env-redis-abc2",
		config.EnvKafkaSASLPassword: "env-kafka-abc3", "ANN_PASSWORD": "env-ann-abc4",
	}
	for k, v := range secrets {
		t.Setenv(k, v)
	}
	files := map[string]string{"token": "file-token-abc5", "kafka": "file-kafka-abc6"}
	for name, v := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	valid := fmt.Sprintf(`name: contacts
kafka:
  brokers: [127.0.0.1:9092]
  sasl: {mechanism: scram-sha-512, username: kuser, password_file: %s}
redis: {addr: 127.0.0.1:6379, password: file-redis-abc7}
systems:
  crm: {topic: crm.public.contacts, key: [id]}
  billing: {topic: billing.public.customers, key: [id]}
authority: {email: crm}
http:
  token_file: %s
  users:
    ann: {password_env: ANN_PASSWORD}
`, filepath.Join(dir, "kafka"), filepath.Join(dir, "token"))
	invalid := strings.NewReplacer(
		"password_file: "+filepath.Join(dir, "kafka"), "password: inline-kafka-abc8",
		"{password_env: ANN_PASSWORD}", "{password: inline-ann-abc9}",
		"redis: {addr: 127.0.0.1:6379, password: file-redis-abc7}", "redis: {addr: 127.0.0.1:6379, password: [seq-redis-abc0]}",
	).Replace(valid) + "  token: inline-token-abcA\n"
	all := []string{"inline-kafka-abc8", "inline-ann-abc9", "seq-redis-abc0", "inline-token-abcA", "file-redis-abc7"}
	for _, v := range secrets {
		all = append(all, v)
	}
	for _, v := range files {
		all = append(all, v)
	}
	for name, content := range map[string]string{"valid": valid, "invalid": invalid} {
		path := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		err := runConfigCheck(&out, path)
		if (err == nil) != (name == "valid") {
			t.Fatalf("%s: %v\n%s", name, err, out.String())
		}
		printed := out.String() + fmt.Sprint(err)
		for _, s := range all {
			if strings.Contains(printed, s) {
				t.Errorf("config check of the %s file shows %q:\n%s", name, s, printed)
			}
		}
	}
}

// TestRunGuardsMetricsAndLogsNoSecrets runs concord run in process with sign-in from
// the environment: /metrics needs it like the review page, the probes do not, and
// nothing it logs holds the token, the password or what a caller tried.
func TestRunGuardsMetricsAndLogsNoSecrets(t *testing.T) {
	const token, password, tried = "run-token-5e6f7a", "run-pw-8b9c0d", "run-tried-1e2f3a"
	t.Setenv(config.EnvHTTPToken, token)
	t.Setenv("ANN_PASSWORD", password)
	brokers := testenv.Kafka(t, 1, "crm.public.contacts", "billing.public.customers")
	rs := testenv.Redis(t)
	path := filepath.Join(t.TempDir(), "concord.yaml")
	err := os.WriteFile(path, fmt.Appendf(nil, `name: contacts
kafka: {brokers: [%q]}
redis: {addr: %q, db: %d}
systems:
  crm: {topic: crm.public.contacts, key: [id]}
  billing: {topic: billing.public.customers, key: [id]}
authority: {email: crm}
http:
  users:
    ann: {password_env: ANN_PASSWORD}
`, brokers[0], rs.Addr, rs.DB), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, path, cfg, addr, zap.New(core)) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		for _, e := range logs.All() {
			line := fmt.Sprint(e.Message, e.ContextMap())
			for _, s := range []string{token, password, tried} {
				if strings.Contains(line, s) {
					t.Errorf("a log line holds a secret: %s", line)
				}
			}
		}
	}()
	base := "http://" + addr
	waitHTTP(t, base+"/healthz", http.StatusOK)
	deadline := time.Now().Add(testenv.Deadline)
	for resp, _ := request(t, "GET", base+"/readyz", nil, noSignIn); resp.StatusCode != http.StatusOK; resp, _ = request(t, "GET", base+"/readyz", nil, noSignIn) {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz without credentials: %d", resp.StatusCode)
		}
		time.Sleep(50 * time.Millisecond)
	}
	bearer := func(v string) signIn { return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+v) } }
	for _, p := range []string{"/metrics", "/review/", "/review/static/style.css"} {
		for _, as := range []signIn{noSignIn, bearer(tried), func(r *http.Request) { r.SetBasicAuth("ann", tried) }} {
			if resp, body := request(t, "GET", base+p, nil, as); resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, tried) {
				t.Errorf("%s: %d %.100q", p, resp.StatusCode, body)
			}
		}
		for _, as := range []signIn{bearer(token), func(r *http.Request) { r.SetBasicAuth("ann", password) }} {
			if resp, _ := request(t, "GET", base+p, nil, as); resp.StatusCode != http.StatusOK {
				t.Errorf("%s signed in: %d", p, resp.StatusCode)
			}
		}
	}
}
