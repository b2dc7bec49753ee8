package web

import (
	"fmt"
	"html/template"
	"strconv"
	"strings"

	"github.com/concord-sync/concord/dlq"
)

// The queue page's chart: the last chartMinutes of what concord counts, in
// chartBucket-minute buckets, so that a spike shows before it is read about.
const (
	chartMinutes = 6 * 60
	chartBucket  = 5
)

// chart is an inline SVG (drawn on the server from numbers only: no script, no
// external resource) and the figures its caption names.
type chart struct {
	SVG       template.HTML
	From, To  string
	MaxEvents int64
	MaxDepth  int64
	MaxRate   string
}

// bucket is chartBucket minutes of the history.
type bucket struct{ events, conflicts, depth int64 }

func newChart(points []dlq.Point) chart {
	if len(points) == 0 {
		return chart{}
	}
	var buckets []bucket
	for i := 0; i < len(points); i += chartBucket {
		var b bucket
		for _, p := range points[i:min(i+chartBucket, len(points))] {
			b.events += p.Events
			b.conflicts += p.Conflicts
			b.depth = p.Depth
		}
		buckets = append(buckets, b)
	}
	c := chart{From: points[0].At.Format("15:04"), To: points[len(points)-1].At.Format("15:04 MST")}
	maxRate := 0.0
	for _, b := range buckets {
		c.MaxEvents, c.MaxDepth = max(c.MaxEvents, b.events), max(c.MaxDepth, b.depth)
		maxRate = max(maxRate, rate(b))
	}
	c.MaxRate = strconv.FormatFloat(maxRate, 'f', 1, 64)
	c.SVG = template.HTML(drawChart(buckets, c.MaxEvents, c.MaxDepth, maxRate)) //nolint:gosec // numbers only
	return c
}

func rate(b bucket) float64 {
	if b.events == 0 {
		return 0
	}
	return 1000 * float64(b.conflicts) / float64(b.events)
}

const chartW, chartH, chartPad = 720.0, 140.0, 4.0

func drawChart(buckets []bucket, maxEvents, maxDepth int64, maxRate float64) string {
	var s strings.Builder
	fmt.Fprintf(&s, `<svg viewBox="0 0 %.0f %.0f" width="100%%" height="%.0f" role="img" aria-label="events, conflict rate and DLQ depth over the last hours" preserveAspectRatio="none">`, chartW, chartH, chartH)
	fmt.Fprintf(&s, `<rect x="0" y="0" width="%.0f" height="%.0f" fill="none" stroke="#ccc"/>`, chartW, chartH)
	step := (chartW - 2*chartPad) / float64(len(buckets))
	y := func(v, top float64) float64 {
		if top <= 0 {
			return chartH - chartPad
		}
		return chartH - chartPad - (chartH-2*chartPad)*v/top
	}
	for i, b := range buckets {
		if b.events == 0 {
			continue
		}
		top := y(float64(b.events), float64(maxEvents))
		fmt.Fprintf(&s, `<rect class="events" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#d8d8d8"><title>%d events</title></rect>`,
			chartPad+float64(i)*step, top, max(step-1, 1), chartH-chartPad-top, b.events)
	}
	line := func(class, color string, value func(bucket) float64, top float64) {
		fmt.Fprintf(&s, `<polyline class="%s" fill="none" stroke="%s" stroke-width="2" points="`, class, color)
		for i, b := range buckets {
			fmt.Fprintf(&s, "%.1f,%.1f ", chartPad+(float64(i)+0.5)*step, y(value(b), top))
		}
		s.WriteString(`"/>`)
	}
	line("rate", "#c0392b", rate, maxRate)
	line("depth", "#2c6fbb", func(b bucket) float64 { return float64(b.depth) }, float64(maxDepth))
	s.WriteString(`</svg>`)
	return s.String()
}
