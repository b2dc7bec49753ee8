package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestBarLine(t *testing.T) {
	tests := []struct {
		done, total int64
		unit, want  string
	}{
		{0, 100, "events", "pipeline     [..............................]   0% 0/100 events 1.5s"},
		{50_000, 100_000, "events", "pipeline     [###############...............]  50% 50,000/100,000 events 1.5s"},
		{200, 100, "events", "pipeline     [##############################] 100% 100/100 events 1.5s"},
		{0, 0, "", "pipeline     [...............#..............] 1.5s"}, // no total: a moving marker
	}
	for _, tc := range tests {
		if got := barLine(PhasePipeline, tc.done, tc.total, tc.unit, 1500*time.Millisecond); got != tc.want {
			t.Errorf("barLine(%d, %d) = %q, want %q", tc.done, tc.total, got, tc.want)
		}
	}
}

func TestBarClear(t *testing.T) {
	var b bytes.Buffer
	bar := NewBar(&b)
	bar.Update(PhaseLatency, 1, 10, "ms")
	bar.Update(PhaseLatency, 2, 10, "ms") // within 100 ms of the last: not drawn
	bar.Clear()
	if got := strings.Count(b.String(), "\r\033[K"); got != 2 {
		t.Errorf("%d line rewrites in %q, want the update and the clear", got, b.String())
	}
	if strings.Contains(b.String(), " 20% ") {
		t.Errorf("the second update was drawn within 100 ms: %q", b.String())
	}
}
