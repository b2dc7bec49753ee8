package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// loadWithEnv loads path with env as the whole environment.
func loadWithEnv(t *testing.T, path string, env map[string]string) (*Config, error) {
	t.Helper()
	return load(path, func(k string) string { return env[k] })
}

func TestLoadExample(t *testing.T) {
	c, err := loadWithEnv(t, "../testdata/config/example.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	crm, billing := c.Systems["crm"], c.Systems["billing"]
	checks := []struct {
		what      string
		got, want any
	}{
		{"name", c.Name, "contacts"},
		{"systems", strings.Join(c.SystemNames(), ","), "billing,crm"},
		{"crm.Name", crm.Name, "crm"},
		{"crm email column", crm.Column("email"), "email_address"},
		{"billing name column", billing.Column("name"), "full_name"},
		{"crm apply topic", crm.Apply.Topic, "contacts.apply.crm"},
		{"billing apply topic (default)", billing.Apply.Topic, "contacts.apply.billing"},
		{"billing timestamp", billing.Timestamp, "updated_at"},
		{"tolerance", c.Resolution.ClockSkewTolerance.Duration, 500 * time.Millisecond},
		{"authority", c.Authority["payment_status"], "billing"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.what, ch.got, ch.want)
		}
	}
}

func TestLoadValidFiles(t *testing.T) {
	for _, file := range []string{"example.yaml", "full.yaml"} {
		if _, err := loadWithEnv(t, filepath.Join("../testdata/config", file), nil); err != nil {
			t.Errorf("%s: %v", file, err)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want one wrapping os.ErrNotExist", err)
	}
}

func TestLoadSyntaxError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte("name: [unclosed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	var invalid *ValidationError
	if err == nil || errors.As(err, &invalid) || !strings.Contains(err.Error(), "bad.yaml") {
		t.Fatalf("err = %v, want a plain error naming the file", err)
	}
}

func TestParseUnknownKeys(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       string
	}{
		{"top level", "nmae: x\n", `nmae: unknown key, did you mean "name"? (line 1)`},
		{"top level, nothing close", "colour: x\n", "colour: unknown key; known keys here: authority, http, kafka, log, name, operations, redis, resolution, systems (line 1)"},
		{"kafka", "kafka:\n  broker: [a]\n", `kafka.broker: unknown key, did you mean "brokers"? (line 2)`},
		{"system", "systems:\n  crm:\n    fieldz: {}\n", `systems.crm.fieldz: unknown key, did you mean "fields"? (line 3)`},
		{"system name is not a key", "systems:\n  crm:\n    name: crm\n", "systems.crm.name: unknown key; known keys here: apply, columns, envelope, fields, key, origin_marker, timestamp, topic, unavailable_value_placeholder (line 3)"},
		{"apply", "systems:\n  crm:\n    apply: {topik: t}\n", `systems.crm.apply.topik: unknown key, did you mean "topic"? (line 3)`},
		{"loop guard", "resolution:\n  loop_guard:\n    max: 3\n", "resolution.loop_guard.max: unknown key; known keys here: max_applies, window (line 3)"},
		{
			"override in a list", "resolution:\n  clock_skew_overrides:\n    - {systems: [a, b], tolerence: 1s}\n",
			`resolution.clock_skew_overrides[0].tolerence: unknown key, did you mean "tolerance"? (line 3)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			var invalid *ValidationError
			if !errors.As(err, &invalid) || len(invalid.Problems) != 1 {
				t.Fatalf("err = %v, want one problem", err)
			}
			if got := invalid.Problems[0].Error(); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestParseBadValues(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{
			"duration words", "resolution:\n  pair_window: 5 minutes\n",
			`resolution.pair_window: "5 minutes" is not a duration: write a Go duration such as 500ms, 15m or 24h (line 2)`,
		},
		{"duration without unit", "resolution:\n  clock_skew_tolerance: 500\n", `resolution.clock_skew_tolerance: "500" is not a duration`},
		{"duration as a list", "resolution:\n  apply_timeout: [15m]\n", "resolution.apply_timeout: expected a duration"},
		{"nested duration", "resolution:\n  loop_guard: {window: 1 minute}\n", `resolution.loop_guard.window: "1 minute" is not a duration`},
		{
			"override duration", "resolution:\n  clock_skew_overrides: [{systems: [a, b], tolerance: 2 s}]\n",
			`resolution.clock_skew_overrides[0].tolerance: "2 s" is not a duration`,
		},
		{"integer", "redis:\n  db: two\n", `redis.db: "two" is not an integer (line 2)`},
		{"bool", "resolution:\n  enforce_authority: maybe\n", `resolution.enforce_authority: "maybe" is not true or false`},
		{"list expected", "systems:\n  crm:\n    key: id\n", `systems.crm.key: expected a list, found "id" (line 3)`},
		{"mapping expected", "systems:\n  crm:\n    fields: [email]\n", "systems.crm.fields: expected a mapping, found a list"},
		{"string expected", "name: {a: b}\n", "name: expected a string, found a mapping (line 1)"},
		{"system is not a mapping", "systems:\n  crm: yes\n", `systems.crm: expected a mapping, found "yes"`},
		{"whole file is a list", "- a\n- b\n", "expected a mapping, found a list (line 1)"},
		{"duplicate key", "name: a\nname: b\n", "name: duplicate key (first at line 1) (line 2)"},
		{"duplicate system", "systems:\n  crm: {}\n  crm: {}\n", "systems.crm: duplicate key (first at line 2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			var invalid *ValidationError
			if !errors.As(err, &invalid) || len(invalid.Problems) != 1 {
				t.Fatalf("err = %v, want one problem", err)
			}
			if got := invalid.Problems[0].Error(); !strings.HasPrefix(got, tt.want) {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestParseReportsEveryShapeProblem(t *testing.T) {
	_, err := Parse([]byte("nmae: x\nredis: {db: two}\nresolution: {pair_window: soon}\n"))
	wantProblems(t, err, "nmae: unknown key", "redis.db: \"two\" is not an integer", "resolution.pair_window: \"soon\" is not a duration")
}

func TestLoadReportsShapeAndValidationProblemsTogether(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	data := "name: x\nsystems:\n  crm: {topic: t, key: [id], fieldz: {}}\n"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := loadWithEnv(t, path, nil)
	wantProblems(t, err, "systems: need at least two systems", "systems.crm.fieldz: unknown key")
}

func TestParseMergeKeys(t *testing.T) {
	c := mustParse(t, `
name: contacts
systems:
  crm: &base
    topic: crm.contacts
    key: [id]
    envelope: unwrapped
  billing:
    <<: *base
    topic: billing.customers
`)
	billing := c.Systems["billing"]
	if billing.Topic != "billing.customers" || billing.Envelope != EnvelopeUnwrapped || !slices.Equal(billing.Key, []string{"id"}) {
		t.Errorf("billing = %+v, want the merged crm settings with its own topic", billing)
	}
	if _, err := Parse([]byte("systems:\n  crm: &b {topic: t}\n  billing:\n    <<: *b\n    topicc: u\n")); err == nil {
		t.Error("an unknown key next to a merge key was accepted")
	}
	if _, err := Parse([]byte("systems:\n  crm: &b {topik: t}\n  billing:\n    <<: *b\n")); err == nil {
		t.Error("an unknown key inside a merged mapping was accepted")
	}
}

func TestParseEmpty(t *testing.T) {
	for _, data := range []string{"", "# only a comment\n", "~\n"} {
		c, err := Parse([]byte(data))
		if err != nil {
			t.Fatalf("Parse(%q): %v", data, err)
		}
		wantProblems(t, c.Validate(), "name: required", "systems: need at least two systems to sync, found 0")
	}
}

func TestApplyEnv(t *testing.T) {
	tests := []struct {
		name        string
		env         map[string]string
		wantBrokers []string
		wantAddr    string
		wantPass    string
	}{
		{"unset keeps the file", nil, []string{"file:9092"}, "file:6379", "file-secret"},
		{"empty keeps the file", map[string]string{EnvKafkaBrokers: "", EnvRedisAddr: ""}, []string{"file:9092"}, "file:6379", "file-secret"},
		{
			"all set",
			map[string]string{EnvKafkaBrokers: "k1:9092, k2:9092,,", EnvRedisAddr: "r:6380", EnvRedisPassword: "s3cret"},
			[]string{"k1:9092", "k2:9092"},
			"r:6380", "s3cret",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, "kafka: {brokers: [file:9092]}\nredis: {addr: file:6379, password: file-secret}\n")
			c.ApplyEnv(func(k string) string { return tt.env[k] })
			if !slices.Equal(c.Kafka.Brokers, tt.wantBrokers) || c.Redis.Addr != tt.wantAddr || c.Redis.Password != tt.wantPass {
				t.Errorf("got %v %q %q, want %v %q %q", c.Kafka.Brokers, c.Redis.Addr, c.Redis.Password, tt.wantBrokers, tt.wantAddr, tt.wantPass)
			}
		})
	}
}

func TestLoadAppliesEnvBeforeValidating(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	data, err := os.ReadFile("../testdata/config/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.Replace(string(data), "brokers: [localhost:9092]", "brokers: []", 1))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadWithEnv(t, path, nil); err == nil || !strings.Contains(err.Error(), "kafka.brokers: required") {
		t.Fatalf("brokers: [] without the env: err = %v", err)
	}
	c, err := loadWithEnv(t, path, map[string]string{EnvKafkaBrokers: "prod:9092"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Kafka.Brokers, []string{"prod:9092"}) {
		t.Errorf("brokers = %v", c.Kafka.Brokers)
	}
}

func TestParseHostileAliases(t *testing.T) {
	laughs := "systems:\n  s0: &s0 {topic: t}\n"
	for i := 1; i <= 7; i++ {
		refs := strings.Repeat(fmt.Sprintf("*s%d, ", i-1), 10)
		laughs += fmt.Sprintf("  s%d: &s%d {<<: [%s]}\n", i, i, strings.TrimSuffix(refs, ", "))
	}
	tests := map[string]string{
		"recursive alias":       "systems: &s {crm: *s}\n",
		"recursive merge":       "systems:\n  crm: &c\n    <<: *c\n",
		"recursive in a list":   "kafka: {brokers: &b [*b]}\n",
		"exponential expansion": laughs,
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := Parse([]byte(data))
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil {
					t.Error("accepted")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Parse did not return")
			}
		})
	}
}
