package pipeline

import (
	"sync"
	"time"
)

// clockSamples is how many recent echoes bound a system's clock offset: enough to
// tighten the interval, few enough to follow a clock that drifts or is stepped.
const clockSamples = 64

// clocks estimates each system's clock offset against concord's clock from the
// round trip of applies and their echoes: an apply decided at S (concord's clock)
// and seen back at A (concord's clock) was written between S and A, and the echo's
// timestamp C is the system's clock at that write, so the offset lies in
// [C-A, C-S]. The intersection of recent intervals is the estimate; its half-width
// the uncertainty. Safe for concurrent use by the partition workers.
type clocks struct {
	mu      sync.Mutex
	samples map[string][]interval // per system, newest last
	m       *Metrics
}

type interval struct{ lo, hi int64 } // microseconds

func newClocks(m *Metrics) *clocks {
	return &clocks{samples: map[string][]interval{}, m: m}
}

// observe adds an echo of system whose timestamp is tsUs, for an apply decided at
// sentMs and seen back at arrived.
func (c *clocks) observe(system string, tsUs, sentMs int64, arrived time.Time) {
	if sentMs <= 0 || tsUs == 0 {
		return
	}
	iv := interval{lo: tsUs - arrived.UnixMicro(), hi: tsUs - sentMs*1000}
	if iv.lo > iv.hi {
		return // the echo arrived before the apply was decided: not a round trip
	}
	c.mu.Lock()
	s := append(c.samples[system], iv)
	if len(s) > clockSamples {
		s = s[len(s)-clockSamples:]
	}
	c.samples[system] = s
	offset, uncert := estimate(s)
	c.mu.Unlock()
	c.m.ClockOffset.WithLabelValues(system).Set(time.Duration(offset * 1000).Seconds())
	c.m.ClockUncert.WithLabelValues(system).Set(time.Duration(uncert * 1000).Seconds())
}

// estimate intersects the intervals; when they do not intersect (the clock moved),
// the newest interval alone is the estimate.
func estimate(s []interval) (offset, uncertainty int64) {
	lo, hi := s[0].lo, s[0].hi
	for _, iv := range s[1:] {
		lo, hi = max(lo, iv.lo), min(hi, iv.hi)
	}
	if lo > hi {
		lo, hi = s[len(s)-1].lo, s[len(s)-1].hi
	}
	return (lo + hi) / 2, (hi - lo) / 2
}

// uncertainties returns each system's current uncertainty, for widening the
// clock-skew tolerance.
func (c *clocks) uncertainties() map[string]time.Duration {
	return c.each(func(_, uncertainty int64) int64 { return uncertainty })
}

// offsets returns each system's current offset estimate (positive: its clock is
// ahead of concord's).
func (c *clocks) offsets() map[string]time.Duration {
	return c.each(func(offset, _ int64) int64 { return offset })
}

// each returns, per system, one part of its current estimate (microseconds).
func (c *clocks) each(part func(offset, uncertainty int64) int64) map[string]time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]time.Duration, len(c.samples))
	for system, s := range c.samples {
		out[system] = time.Duration(part(estimate(s))) * time.Microsecond
	}
	return out
}
