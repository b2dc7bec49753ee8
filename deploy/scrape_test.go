package deploy_test

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestPrometheusScrapesWithTheStacksToken: /metrics needs sign-in when it is
// configured, so the compose stack's Prometheus must send the token the stack gives
// concord by default, and concord's healthcheck must be concord health.
func TestPrometheusScrapesWithTheStacksToken(t *testing.T) {
	var prom struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			Authorization struct {
				Type        string `yaml:"type"`
				Credentials string `yaml:"credentials"`
			} `yaml:"authorization"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(readFile(t, "deploy/prometheus/prometheus.yml"), &prom); err != nil {
		t.Fatal(err)
	}
	svc := loadCompose(t).Services["concord"]
	_, def, ok := strings.Cut(svc.Environment["CONCORD_HTTP_TOKEN"], ":-")
	def = strings.TrimSuffix(def, "}")
	if !ok || def == "" {
		t.Fatalf("the compose concord service has no default CONCORD_HTTP_TOKEN: %q", svc.Environment["CONCORD_HTTP_TOKEN"])
	}
	found := false
	for _, sc := range prom.ScrapeConfigs {
		if sc.JobName == "concord" {
			found = true
			if sc.Authorization.Type != "Bearer" || sc.Authorization.Credentials != def {
				t.Errorf("Prometheus scrapes concord with %+v, want the Bearer token %q the stack gives concord", sc.Authorization, def)
			}
		}
	}
	if !found {
		t.Error("no concord scrape job")
	}
	if svc.Healthcheck == nil || !strings.Contains(strings.Join(svc.Healthcheck.Test, " "), "/concord health") {
		t.Errorf("concord's healthcheck = %+v, want concord health", svc.Healthcheck)
	}
}
