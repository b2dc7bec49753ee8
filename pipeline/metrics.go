package pipeline

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/concord-sync/concord/resolver"
)

// Metrics are the processor's Prometheus metrics. Register them with the registry the
// caller passes in; nothing is registered globally.
type Metrics struct {
	Events       *prometheus.CounterVec   // system, op (c, u, d, r, or the kind of a non-change)
	Decisions    *prometheus.CounterVec   // kind, rule
	Conflicts    *prometheus.CounterVec   // rule
	Echoes       *prometheus.CounterVec   // system
	Duplicates   *prometheus.CounterVec   // system
	Poison       *prometheus.CounterVec   // system
	Unmapped     *prometheus.CounterVec   // system, field
	SyncLag      *prometheus.HistogramVec // from, to
	ConsumerLag  *prometheus.GaugeVec     // topic, partition
	ClockOffset  *prometheus.GaugeVec     // system
	ClockUncert  *prometheus.GaugeVec     // system
	Reloads      *prometheus.CounterVec   // result
	Batch        prometheus.Histogram     // seconds per batch, decode to produced
	BatchStage   *prometheus.HistogramVec // stage (decide, write, produce): seconds per batch in each
	Latency      prometheus.Histogram     // seconds from a message fetched to its batch's output acknowledged
	Fenced       prometheus.Counter
	Retries      prometheus.Counter
	Redelivered  prometheus.Counter   // outbox messages produced again by a partition's next owner
	DependencyUp *prometheus.GaugeVec // dependency (redis, kafka): 1 when its last probe answered
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	}
	m := &Metrics{
		Events:     counter("concord_events_total", "Change events read, by system and op (c, u, d, r) or message kind.", "system", "op"),
		Decisions:  counter("concord_decisions_total", "Resolver decisions, by kind and rule (none for kinds without one: echo, duplicate, skip, dlq, ignored).", "kind", "rule"),
		Conflicts:  counter("concord_conflicts_total", "Concurrent changes decided by rule or sent to review, by rule (review for the DLQ).", "rule"),
		Echoes:     counter("concord_echoes_total", "Change events recognised as concord's own applies coming back, by system.", "system"),
		Duplicates: counter("concord_duplicates_total", "Change events at or before a position already processed, by system.", "system"),
		Poison:     counter("concord_poison_total", "Messages that could not be decoded, sent to the poison topic, by system.", "system"),
		Unmapped:   counter("concord_unmapped_fields_total", "Changes to fields in no authority entry, skipped, by system and field.", "system", "field"),
		SyncLag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "concord_sync_lag_seconds",
			Help:    "Apply produced time minus the source commit time of the change it carries, per system pair.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900},
		}, []string{"from", "to"}),
		ConsumerLag: gauge("concord_consumer_lag", "Messages behind the partition's high watermark, per input topic and partition.", "topic", "partition"),
		ClockOffset: gauge("concord_clock_offset_seconds", "Estimated offset of a system's change timestamps against concord's clock (positive: ahead).", "system"),
		ClockUncert: gauge("concord_clock_offset_uncertainty_seconds", "Half-width of the interval the clock offset is known to lie in.", "system"),
		Reloads:     counter("concord_config_reloads_total", "Configuration reloads, by result (ok, invalid: the old configuration kept running).", "result"),
		Batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "concord_batch_seconds", Help: "Time to process one batch, from decode to its messages acknowledged by Kafka.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		BatchStage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "concord_batch_stage_seconds",
			Help:    "Time one attempt at a batch spent in a stage: decide (decode, read states, resolve), write (the DLQ and the states to Redis), produce (its messages to Kafka).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"stage"}),
		Latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "concord_consume_to_produce_seconds",
			Help:    "From a message fetched to its batch's apply events acknowledged by Kafka.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		Fenced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "concord_fenced_total", Help: "Batches refused because a newer generation owns the partition.",
		}),
		Retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "concord_batch_retries_total", Help: "Batches retried after a Kafka or Redis failure.",
		}),
		DependencyUp: gauge("concord_dependency_up", "1 when the dependency (redis, kafka) answered its last probe, else 0; readiness follows it.", "dependency"),
		Redelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "concord_outbox_redelivered_total",
			Help: "Messages of a partition's last decided batch produced again when the partition was taken over (its owner may have stopped before producing them).",
		}),
	}
	reg.MustRegister(m.Events, m.Decisions, m.Conflicts, m.Echoes, m.Duplicates, m.Poison, m.Unmapped,
		m.SyncLag, m.ConsumerLag, m.ClockOffset, m.ClockUncert, m.Reloads, m.Batch, m.BatchStage, m.Latency, m.Fenced, m.Retries, m.Redelivered, m.DependencyUp)
	return m
}

// The stages of a batch (concord_batch_stage_seconds).
const (
	stageDecide  = "decide"
	stageWrite   = "write"
	stageProduce = "produce"
)

// noRule is the rule label of decisions that have none (a label is never empty).
const noRule = "none"

func ruleLabel(r resolver.Rule) string {
	if r == "" {
		return noRule
	}
	return string(r)
}

// decidingRules are the rules an apply or a conflict decision can carry.
var decidingRules = []resolver.Rule{
	resolver.RuleSync, resolver.RuleAuthority, resolver.RuleLWW, resolver.RuleReview, resolver.RuleDeleteWins,
	resolver.RuleUpdateWins, resolver.RuleEnforceAuthority, resolver.RuleInitialLoad, resolver.RuleRepair,
}

// initialize creates, at 0, the series of every label value known in advance (the
// systems, ops, kinds and rules), so that a dashboard or an alert sees 0 rather than
// no data before the first event of a kind. Series with label values only the data
// tells (an unmapped field's name) appear when they happen.
func (m *Metrics) initialize(systems []string) {
	for _, st := range []string{stageDecide, stageWrite, stageProduce} {
		m.BatchStage.WithLabelValues(st)
	}
	for _, s := range systems {
		for _, op := range []string{"c", "u", "d", "r"} {
			m.Events.WithLabelValues(s, op)
		}
		m.Echoes.WithLabelValues(s)
		m.Duplicates.WithLabelValues(s)
		m.Poison.WithLabelValues(s)
		for _, to := range systems {
			if to != s {
				m.SyncLag.WithLabelValues(s, to)
			}
		}
	}
	m.Poison.WithLabelValues(reviewSource)
	for _, r := range decidingRules {
		m.Decisions.WithLabelValues(resolver.KindApply.String(), string(r))
		m.Conflicts.WithLabelValues(string(r))
	}
	for _, k := range []resolver.Kind{resolver.KindConflict} {
		for _, r := range []resolver.Rule{resolver.RuleAuthority, resolver.RuleLWW, resolver.RuleDeleteWins, resolver.RuleUpdateWins, resolver.RuleInitialLoad} {
			m.Decisions.WithLabelValues(k.String(), string(r))
		}
	}
	for _, k := range []resolver.Kind{resolver.KindDLQ, resolver.KindSkip, resolver.KindEcho, resolver.KindDuplicate, resolver.KindIgnored} {
		m.Decisions.WithLabelValues(k.String(), noRule)
	}
	for _, result := range []string{"ok", "invalid"} {
		m.Reloads.WithLabelValues(result)
	}
}
