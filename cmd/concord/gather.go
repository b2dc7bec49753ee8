package main

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metricValues are the counter values of a registry, for progress lines and summaries
// that report exactly what /metrics shows.
type metricValues map[string][]labelled

type labelled struct {
	labels map[string]string
	value  float64
}

// gather reads every counter and gauge of the registry.
func gather(reg prometheus.Gatherer) metricValues {
	out := metricValues{}
	families, err := reg.Gather()
	if err != nil {
		return out
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			l := labelled{labels: map[string]string{}}
			for _, p := range m.GetLabel() {
				l.labels[p.GetName()] = p.GetValue()
			}
			switch {
			case m.GetCounter() != nil:
				l.value = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				l.value = m.GetGauge().GetValue()
			default:
				continue
			}
			out[f.GetName()] = append(out[f.GetName()], l)
		}
	}
	return out
}

// sum is the total of a metric over all its labels.
func (m metricValues) sum(name string) int64 {
	var total float64
	for _, l := range m[name] {
		total += l.value
	}
	return int64(total)
}

// by is a metric summed per value of one label.
func (m metricValues) by(name, label string) map[string]int64 {
	out := map[string]int64{}
	for _, l := range m[name] {
		out[l.labels[label]] += int64(l.value)
	}
	return out
}
