package dlq

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports the DLQ and its patterns as Prometheus metrics, read from Redis
// at each scrape (bounded by a timeout): depth, oldest entry age, and the pattern
// counters (fields that keep conflicting, systems that keep losing, authority
// suggestions). Records are not exported as labels: there are too many.
type Collector struct {
	svc     *Service
	timeout time.Duration

	depth, oldest, rate, fields, losers, suggest *prometheus.Desc
}

// NewCollector returns a collector over the review service; register it with the
// registry the caller owns.
func NewCollector(svc *Service) *Collector {
	return &Collector{
		svc: svc, timeout: 2 * time.Second,
		depth:   prometheus.NewDesc("concord_dlq_depth", "DLQ entries waiting for review.", nil, nil),
		oldest:  prometheus.NewDesc("concord_dlq_oldest_age_seconds", "Age of the oldest DLQ entry waiting for review (0 when none).", nil, nil),
		rate:    prometheus.NewDesc("concord_dlq_conflict_rate_per_1000", "Conflicts per 1,000 events since the DLQ was created (the recording rule gives the windowed rate).", nil, nil),
		fields:  prometheus.NewDesc("concord_pattern_field_conflicts", "Conflicts per field (decided by rule, sent to review, or reviewed): the top fields.", []string{"field"}, nil),
		losers:  prometheus.NewDesc("concord_pattern_system_losses", "Changes of a system that lost (by rule, authority or review): the top systems.", []string{"system"}, nil),
		suggest: prometheus.NewDesc("concord_pattern_authority_suggestion", "1 for a shared field one system wins almost every time: consider making it the owner.", []string{"field", "owner"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.depth, c.oldest, c.rate, c.fields, c.losers, c.suggest} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A Redis error leaves the metrics out of
// the scrape (absent, not zero) rather than failing it.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	if s, err := c.svc.Summary(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(s.Depth))
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, s.OldestAge.Seconds())
		ch <- prometheus.MustNewConstMetric(c.rate, prometheus.GaugeValue, s.ConflictRate)
	}
	p, err := c.svc.Patterns(ctx)
	if err != nil {
		return
	}
	for _, f := range p.Fields {
		ch <- prometheus.MustNewConstMetric(c.fields, prometheus.GaugeValue, float64(f.Count), f.Name)
	}
	for _, l := range p.Losers {
		ch <- prometheus.MustNewConstMetric(c.losers, prometheus.GaugeValue, float64(l.Count), l.Name)
	}
	for _, s := range p.Suggestions {
		ch <- prometheus.MustNewConstMetric(c.suggest, prometheus.GaugeValue, 1, s.Field, s.Owner)
	}
}
