package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runConcord runs the root command with args and returns its output and error.
func runConcord(t *testing.T, args ...string) (string, error) {
	t.Helper()
	for _, env := range []string{"CONCORD_KAFKA_BROKERS", "CONCORD_REDIS_ADDR", "CONCORD_REDIS_PASSWORD"} {
		t.Setenv(env, "")
	}
	var out bytes.Buffer
	root := newRootCommand()
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestConfigCheckValid(t *testing.T) {
	out, err := runConcord(t, "config", "check", "--config", "../../testdata/config/example.yaml")
	if err != nil {
		t.Fatalf("err = %v\n%s", err, out)
	}
	for _, want := range []string{
		"example.yaml: valid",
		"reads:      crm.public.contacts",
		"columns:    email -> email_address",
		"owns:       billing_address, payment_status",
		"shared fields: last_activity_at, notes",
		"changes within 500ms of each other go to review",
		"unmapped fields: skipped",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestConfigCheckInvalid(t *testing.T) {
	out, err := runConcord(t, "config", "check", "--config", "../../testdata/config/invalid.yaml")
	if err == nil || !strings.Contains(err.Error(), "9 problems") {
		t.Fatalf("err = %v, want one counting 9 problems", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 9 {
		t.Fatalf("want one line per problem, got:\n%s", out)
	}
	for _, want := range []string{
		`systems.billing.topic: "crm.public.contacts" is also the topic of systems.crm (line 9)`,
		`authority.email: "crmm" is not a system (billing, crm) or "shared" (line 16)`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestConfigCheckUnknownKeys(t *testing.T) {
	out, err := runConcord(t, "config", "check", "--config", "../../testdata/config/unknown-keys.yaml")
	if err == nil || !strings.Contains(out, `systems.crm.fieldz: unknown key, did you mean "fields"? (line 9)`) {
		t.Fatalf("err = %v, output:\n%s", err, out)
	}
}

func TestConfigCheckErrors(t *testing.T) {
	tests := map[string][]string{
		"missing flag": {"config", "check"},
		"missing file": {"config", "check", "--config", "../../testdata/config/does-not-exist.yaml"},
		"extra args":   {"config", "check", "--config", "../../testdata/config/example.yaml", "extra"},
	}
	for name, args := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := runConcord(t, args...); err == nil {
				t.Error("want an error")
			}
		})
	}
}

func TestConfigHelp(t *testing.T) {
	for _, args := range [][]string{{"config", "--help"}, {"config", "check", "--help"}} {
		out, err := runConcord(t, args...)
		if err != nil || !strings.Contains(out, "Usage:") || !strings.Contains(out, "CONCORD_KAFKA_BROKERS") {
			t.Errorf("%v: err = %v, output:\n%s", args, err, out)
		}
	}
}

// TestConfigCheckWarnsAboutSchemalessApplies: apply.schema: false is valid, but no
// JDBC sink reads it, and config check says so.
func TestConfigCheckWarnsAboutSchemalessApplies(t *testing.T) {
	b, err := os.ReadFile("../../testdata/config/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(b), "format: debezium}", "format: debezium, schema: false}", 1)
	path := filepath.Join(t.TempDir(), "schemaless.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runConcord(t, "config", "check", "--config", path)
	if err != nil {
		t.Fatalf("err = %v\n%s", err, out)
	}
	for _, want := range []string{
		"warning: systems.crm.apply.schema: false writes apply events without a Connect schema",
		"Debezium's JDBC sink refuses", "the Confluent JDBC sink",
		"contacts.apply.crm (debezium without a schema)",
		"(debezium with a Connect schema)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
