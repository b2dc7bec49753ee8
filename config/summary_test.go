package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestSummaryGolden(t *testing.T) {
	for _, name := range []string{"example", "full"} {
		t.Run(name, func(t *testing.T) {
			c, err := loadWithEnv(t, filepath.Join("../testdata/config", name+".yaml"), nil)
			if err != nil {
				t.Fatal(err)
			}
			got := c.Summary()
			golden := filepath.Join("testdata", name+".summary.golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./config -run Summary -update)", err)
			}
			if got != string(want) {
				t.Errorf("summary differs from %s (run with -update if intended):\n%s", golden, got)
			}
		})
	}
}

func TestSummaryHidesPassword(t *testing.T) {
	c, err := loadWithEnv(t, "../testdata/config/full.yaml", map[string]string{EnvRedisPassword: "hunter2"})
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Summary(); strings.Contains(s, "hunter2") || strings.Contains(s, c.Redis.Password) {
		t.Error("the summary shows the Redis password")
	}
}
