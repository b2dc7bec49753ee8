package pipeline

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestClockOffsetFromRoundTrips: a system whose clock runs 300ms ahead, with applies
// landing at varying points of their round trips, is estimated at 300ms within the
// tightest interval the round trips allow.
func TestClockOffsetFromRoundTrips(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	c := newClocks(m)
	base := time.UnixMilli(1_700_000_000_000)
	const offset = 300 * time.Millisecond
	for i, trip := range []struct{ sent, written, arrived time.Duration }{
		{0, 40 * time.Millisecond, 90 * time.Millisecond},
		{0, 5 * time.Millisecond, 60 * time.Millisecond},
		{0, 30 * time.Millisecond, 32 * time.Millisecond},
	} {
		t0 := base.Add(time.Duration(i) * time.Second)
		ts := t0.Add(trip.written).Add(offset).UnixMicro()
		c.observe("billing", ts, t0.Add(trip.sent).UnixMilli(), t0.Add(trip.arrived))
	}
	got := testutil.ToFloat64(m.ClockOffset.WithLabelValues("billing"))
	uncert := testutil.ToFloat64(m.ClockUncert.WithLabelValues("billing"))
	// The intervals are [C-A, C-S]: [250,340], [245,305], [298,330] ms; their
	// intersection [298,305] gives 301.5ms ± 3.5ms.
	if got < 0.298 || got > 0.305 || uncert > 0.004 {
		t.Errorf("offset %.4fs ± %.4fs, want about 0.3015 ± 0.0035", got, uncert)
	}
	if u := c.uncertainties()["billing"]; u > 4*time.Millisecond || u <= 0 {
		t.Errorf("uncertainty for widening = %v", u)
	}
	if o := c.offsets()["billing"]; o < 298*time.Millisecond || o > 305*time.Millisecond {
		t.Errorf("offset for the sync lag = %v", o)
	}
	// A clock stepped by a second: intervals no longer intersect, the newest wins.
	t1 := base.Add(10 * time.Second)
	c.observe("billing", t1.Add(10*time.Millisecond).Add(offset+time.Second).UnixMicro(), t1.UnixMilli(), t1.Add(20*time.Millisecond))
	if got := testutil.ToFloat64(m.ClockOffset.WithLabelValues("billing")); got < 1.28 || got > 1.31 {
		t.Errorf("after a clock step the offset is %.3fs, want about 1.3s", got)
	}
}

// TestSyncLagCorrectsTheSourceClock: the commit time comes from the source's clock,
// so a clock ahead of concord's would make a fast apply's lag negative; the offset
// estimate is taken off, and what an estimate cannot explain counts as zero.
func TestSyncLagCorrectsTheSourceClock(t *testing.T) {
	produced := time.UnixMilli(1_700_000_000_100)
	for _, c := range []struct {
		name     string
		commitMs int64
		offset   time.Duration
		want     time.Duration
	}{
		{"clocks agree", 1_700_000_000_000, 0, 100 * time.Millisecond},
		{"source 300ms ahead, estimated", 1_700_000_000_350, 300 * time.Millisecond, 50 * time.Millisecond},
		{"source 300ms behind, estimated", 1_699_999_999_750, -300 * time.Millisecond, 50 * time.Millisecond},
		{"source ahead, no estimate yet", 1_700_000_000_350, 0, 0},
	} {
		if got := syncLag(produced, c.commitMs, c.offset); got != c.want {
			t.Errorf("%s: sync lag %v, want %v", c.name, got, c.want)
		}
	}
}
