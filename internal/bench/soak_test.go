package bench

import "testing"

// TestSummarize checks the soak's windows: warm-up is the samples between 10% and
// 20% of the events, the end the last 10%, the maximum after warm-up only.
func TestSummarize(t *testing.T) {
	var samples []soakSample
	for i := range 101 {
		heap := 100.0
		switch {
		case i < 10:
			heap = 500 // start-up: left out, even from the maximum
		case i >= 90:
			heap = 110
		case i == 50:
			heap = 300
		}
		samples = append(samples, soakSample{events: float64(i * 1000), heap: heap, goal: 2 * heap, rss: 3 * heap})
	}
	r := summarize(samples, 100_000)
	if r.SoakHeapWarmBytes != 100 || r.SoakHeapEndBytes != 110 || r.SoakHeapMaxBytes != 300 {
		t.Errorf("heap warm %v, end %v, max %v; want 100, 110, 300", r.SoakHeapWarmBytes, r.SoakHeapEndBytes, r.SoakHeapMaxBytes)
	}
	if r.SoakHeapChangePct < 9.99 || r.SoakHeapChangePct > 10.01 || r.SoakHeapGoalChangePct < 9.99 || r.SoakHeapGoalChangePct > 10.01 {
		t.Errorf("change %v%%, goal change %v%%; want 10%%", r.SoakHeapChangePct, r.SoakHeapGoalChangePct)
	}
	if r.SoakRSSWarmBytes != 300 || r.SoakRSSEndBytes != 330 || r.SoakRSSMaxBytes != 900 {
		t.Errorf("RSS warm %v, end %v, max %v", r.SoakRSSWarmBytes, r.SoakRSSEndBytes, r.SoakRSSMaxBytes)
	}
}
