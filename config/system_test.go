package config

import (
	"slices"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestColumnAndFieldOf(t *testing.T) {
	s := &System{Fields: map[string]string{"email": "contact_email", "name": "full_name", "id": "id"}}
	columns := []struct{ field, column string }{
		{"email", "contact_email"}, {"name", "full_name"}, {"id", "id"}, {"notes", "notes"},
	}
	for _, withIndex := range []bool{false, true} {
		if withIndex {
			s.indexColumns()
		}
		for _, tt := range columns {
			if got := s.Column(tt.field); got != tt.column {
				t.Errorf("Column(%q) = %q, want %q", tt.field, got, tt.column)
			}
			if got := s.FieldOf(tt.column); got != tt.field {
				t.Errorf("index %v: FieldOf(%q) = %q, want %q", withIndex, tt.column, got, tt.field)
			}
		}
		// Column "email" exists under that name, but canonical email lives in contact_email.
		if got := s.FieldOf("email"); got != "" {
			t.Errorf("index %v: FieldOf(email) = %q, want \"\" for a shadowed column", withIndex, got)
		}
	}
}

func TestTimestampColumn(t *testing.T) {
	for _, tt := range []struct {
		timestamp, column string
		ok                bool
	}{{"", "", false}, {SourceTimestamp, "", false}, {"updated_at", "updated_at", true}} {
		column, ok := (&System{Timestamp: tt.timestamp}).TimestampColumn()
		if column != tt.column || ok != tt.ok {
			t.Errorf("TimestampColumn() of %q = %q, %v; want %q, %v", tt.timestamp, column, ok, tt.column, tt.ok)
		}
	}
}

func TestConfigAccessors(t *testing.T) {
	c := mustParse(t, `
name: n
systems:
  shop: {topic: a, key: [tenant, id]}
  erp: {topic: b, key: [tenant, id]}
  wh: {topic: c, key: [tenant, id]}
resolution:
  clock_skew_tolerance: 1s
  clock_skew_overrides:
    - {systems: [shop, erp], tolerance: 3s}
    - {systems: [wh, shop], tolerance: 0s}
`)
	if got := c.SystemNames(); !slices.Equal(got, []string{"erp", "shop", "wh"}) {
		t.Errorf("SystemNames() = %v", got)
	}
	if got := c.Key(); !slices.Equal(got, []string{"tenant", "id"}) {
		t.Errorf("Key() = %v", got)
	}
	for _, tt := range []struct {
		a, b string
		want time.Duration
	}{{"shop", "erp", 3 * time.Second}, {"erp", "shop", 3 * time.Second}, {"shop", "wh", 0}, {"erp", "wh", time.Second}} {
		if got := c.Tolerance(tt.a, tt.b); got != tt.want {
			t.Errorf("Tolerance(%s, %s) = %s, want %s", tt.a, tt.b, got, tt.want)
		}
	}
	if !c.PropagatesDeletes() || !(&Config{}).PropagatesDeletes() {
		t.Error("PropagatesDeletes() = false, want the default true")
	}
}

func TestDuration(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string
	}{{"500ms", "500ms"}, {"0", "0s"}, {"10s", "10s"}, {"1m", "1m"}, {"24h", "24h"}, {"1h30m", "1h30m"}, {"90s", "1m30s"}, {"-1h", "-1h"}} {
		var d Duration
		if err := yaml.Unmarshal([]byte(tt.in), &d); err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		if d.String() != tt.want {
			t.Errorf("%s: String() = %q, want %q", tt.in, d, tt.want)
		}
		out, err := yaml.Marshal(d)
		if err != nil || string(out) != tt.want+"\n" {
			t.Errorf("%s: Marshal = %q, %v", tt.in, out, err)
		}
	}
	for _, bad := range []string{"500", "5 minutes", "1d", "[1s]", "true"} {
		var d Duration
		if err := yaml.Unmarshal([]byte(bad), &d); err == nil {
			t.Errorf("%s: accepted as %s", bad, d)
		}
	}
}
