package pipeline

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// parityCollector exports the records each system holds and the parity drift
// (records held by some systems and lacked by another for longer than
// operations.parity_grace), read from the state store at each scrape, summed over every
// partition: every instance reports the same figures, so alert on max, not sum.
type parityCollector struct {
	p              *Processor
	records, drift *prometheus.Desc
}

// ParityCollector returns the collector of records and parity drift; register it with
// the registry the caller owns. It reports nothing until the processor has started.
func (p *Processor) ParityCollector() prometheus.Collector {
	return &parityCollector{
		p:       p,
		records: prometheus.NewDesc("concord_records", "Records each system holds, as concord last saw them.", []string{"system"}, nil),
		drift: prometheus.NewDesc("concord_parity_drift_records",
			"Records other systems hold that this system has lacked for longer than operations.parity_grace.", []string{"system"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *parityCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.records; ch <- c.drift }

// Collect implements prometheus.Collector; a store error leaves the figures out.
func (c *parityCollector) Collect(ch chan<- prometheus.Metric) {
	n := int(c.p.partitionCount.Load())
	if n == 0 {
		return
	}
	parts := make([]int32, n)
	for i := range parts {
		parts[i] = int32(i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	systems := c.p.cfg.SystemNames()
	since := c.p.opts.Now().Add(-c.p.cfg.Operations.ParityGrace.Duration).UnixMilli()
	counts, err := c.p.opts.Store.Counts(ctx, parts, systems, since)
	if err != nil {
		c.p.log.Debug("reading parity counts for /metrics", zap.Error(err))
		return
	}
	for _, s := range systems {
		ch <- prometheus.MustNewConstMetric(c.records, prometheus.GaugeValue, float64(counts.Records[s]), s)
		ch <- prometheus.MustNewConstMetric(c.drift, prometheus.GaugeValue, float64(counts.Drift[s]), s)
	}
}
