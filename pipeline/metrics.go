package pipeline

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the processor's Prometheus metrics. Register them with the registry the
// caller passes in; nothing is registered globally.
type Metrics struct {
	Events    *prometheus.CounterVec // system, op (c, u, d, r, or the kind of a non-change)
	Decisions *prometheus.CounterVec // kind, rule
	Conflicts *prometheus.CounterVec // rule
	Poison    *prometheus.CounterVec // system
	Unmapped  *prometheus.CounterVec // system, field
	Batch     prometheus.Histogram   // seconds per batch, produce to commit
	Fenced    prometheus.Counter
	Retries   prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "concord_events_total", Help: "Change events read, by system and op (c, u, d, r) or message kind.",
		}, []string{"system", "op"}),
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "concord_decisions_total", Help: "Resolver decisions, by kind and rule.",
		}, []string{"kind", "rule"}),
		Conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "concord_conflicts_total", Help: "Concurrent changes decided by rule or sent to review, by rule (review for the DLQ).",
		}, []string{"rule"}),
		Poison: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "concord_poison_total", Help: "Messages that could not be decoded, sent to the poison topic, by system.",
		}, []string{"system"}),
		Unmapped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "concord_unmapped_fields_total", Help: "Changes to fields in no authority entry, skipped, by system and field.",
		}, []string{"system", "field"}),
		Batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "concord_batch_seconds", Help: "Time to process one batch, from decode to offset commit.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		Fenced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "concord_fenced_total", Help: "Batches refused because a newer generation owns the partition.",
		}),
		Retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "concord_batch_retries_total", Help: "Batches retried after a Kafka or Redis failure.",
		}),
	}
	reg.MustRegister(m.Events, m.Decisions, m.Conflicts, m.Poison, m.Unmapped, m.Batch, m.Fenced, m.Retries)
	return m
}
