package config

import (
	"slices"
	"testing"
	"time"
)

func TestApplyDefaults(t *testing.T) {
	c := mustParse(t, "name: contacts\nsystems:\n  crm: {topic: t, key: [id]}\n  billing:\n")
	crm, billing := c.Systems["crm"], c.Systems["billing"]
	r := c.Resolution
	checks := []struct {
		what      string
		got, want any
	}{
		{"kafka.brokers", slices.Equal(c.Kafka.Brokers, []string{"localhost:9092"}), true},
		{"redis.addr", c.Redis.Addr, "localhost:6379"},
		{"crm name", crm.Name, "crm"},
		{"empty system filled in", billing != nil && billing.Name == "billing", true},
		{"timestamp", crm.Timestamp, SourceTimestamp},
		{"apply.topic", crm.Apply.Topic, "contacts.apply.crm"},
		{"apply.format", crm.Apply.Format, FormatDebezium},
		{"envelope", crm.Envelope, EnvelopeDebezium},
		{"clock_skew_tolerance", r.ClockSkewTolerance.Duration, 500 * time.Millisecond},
		{"granularity", r.Granularity, GranularityField},
		{"deletes", r.Deletes, DeletesReview},
		{"propagate_deletes", r.PropagateDeletes != nil && *r.PropagateDeletes, true},
		{"unmapped_fields", r.UnmappedFields, UnmappedSkip},
		{"pair_window", r.PairWindow.Duration, time.Duration(0)},
		{"tombstone_retention", r.TombstoneRetention.Duration, 24 * time.Hour},
		{"apply_timeout", r.ApplyTimeout.Duration, 15 * time.Minute},
		{"loop_guard.max_applies", r.LoopGuard.MaxApplies, 20},
		{"loop_guard.window", r.LoopGuard.Window.Duration, time.Minute},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.what, ch.got, ch.want)
		}
	}
}

// A key written in the file keeps its value even when that value is zero.
func TestApplyDefaultsKeepsExplicitZeros(t *testing.T) {
	c := mustParse(t, `
kafka: {brokers: []}
resolution:
  clock_skew_tolerance: 0s
  tombstone_retention: 0s
  propagate_deletes: false
  loop_guard: {max_applies: 0}
`)
	r := c.Resolution
	if len(c.Kafka.Brokers) != 0 || r.ClockSkewTolerance.Duration != 0 || r.TombstoneRetention.Duration != 0 ||
		c.PropagatesDeletes() || r.LoopGuard.MaxApplies != 0 {
		t.Errorf("explicit zeros were replaced by defaults: brokers %v, resolution %+v", c.Kafka.Brokers, r)
	}
	if r.ApplyTimeout.Duration != 15*time.Minute {
		t.Errorf("apply_timeout = %s, want the default for a key left out", r.ApplyTimeout)
	}
}

// A Config built in code gets defaults for every zero value, and ApplyDefaults is idempotent.
func TestApplyDefaultsInCode(t *testing.T) {
	c := &Config{Name: "n", Systems: map[string]*System{"a": {Fields: map[string]string{"x": "col_x"}}, "b": nil}}
	c.ApplyDefaults()
	c.ApplyDefaults()
	if c.Resolution.ClockSkewTolerance.Duration != 500*time.Millisecond || c.Systems["b"] == nil || c.Systems["b"].Apply.Topic != "n.apply.b" {
		t.Errorf("defaults not applied: %+v", c)
	}
	if got := c.Systems["a"].FieldOf("col_x"); got != "x" {
		t.Errorf("FieldOf(col_x) = %q after ApplyDefaults, want x", got)
	}
}
