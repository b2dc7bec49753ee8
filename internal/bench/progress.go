package bench

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Phases of a run, in the order Run goes through them.
const (
	PhasePipeline    = "pipeline"
	PhasePassthrough = "passthrough"
	PhaseLatency     = "latency"
	PhaseMemory      = "memory"
	PhaseResolver    = "resolver"
	PhaseSoak        = "soak"
)

// Progress receives how far a run is: the phase, and done out of total units of it
// (events, records, milliseconds; total 0 when the phase cannot tell). Run calls it
// often, from one goroutine at a time; a Progress decides how often to show it.
type Progress func(phase string, done, total int64, unit string)

// Bar draws a Progress as one line rewritten in place with \r, at most every 100 ms:
// meant for a terminal. Safe for concurrent use.
type Bar struct {
	mu    sync.Mutex
	w     io.Writer
	last  time.Time
	phase string
	start time.Time
	drawn bool
}

// NewBar returns a bar drawing to w.
func NewBar(w io.Writer) *Bar { return &Bar{w: w} }

// Update is a Progress.
func (b *Bar) Update(phase string, done, total int64, unit string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if phase != b.phase {
		b.phase, b.start = phase, now
	} else if now.Sub(b.last) < 100*time.Millisecond && done < total {
		return
	}
	b.last = now
	_, _ = fmt.Fprintf(b.w, "\r\033[K%s", barLine(phase, done, total, unit, now.Sub(b.start)))
	b.drawn = true
}

// Clear removes the bar's line, before the results are printed.
func (b *Bar) Clear() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn {
		_, _ = fmt.Fprint(b.w, "\r\033[K")
		b.drawn = false
	}
}

const barWidth = 30

// barLine is one state of the bar: "pipeline     [#######.......]  45% 22,500/50,001 events 1.2s".
func barLine(phase string, done, total int64, unit string, elapsed time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-12s [", phase)
	if total > 0 {
		done = min(max(done, 0), total)
		fill := int(int64(barWidth) * done / total)
		b.WriteString(strings.Repeat("#", fill))
		b.WriteString(strings.Repeat(".", barWidth-fill))
		fmt.Fprintf(&b, "] %3d%% %s/%s %s", 100*done/total, thousands(float64(done), 0), thousands(float64(total), 0), unit)
	} else {
		// no total: a marker sweeping the bar, so the line shows the run is alive
		pos := int(elapsed/(100*time.Millisecond)) % barWidth
		b.WriteString(strings.Repeat(".", pos) + "#" + strings.Repeat(".", barWidth-pos-1))
		b.WriteString("]")
		if unit != "" {
			fmt.Fprintf(&b, " %s %s", thousands(float64(done), 0), unit)
		}
	}
	fmt.Fprintf(&b, " %.1fs", elapsed.Seconds())
	return b.String()
}
