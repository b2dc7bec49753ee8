package resolver_test

import (
	"testing"

	"github.com/concord-sync/concord/internal/bench"
)

// BenchmarkHotPath measures decode + resolve + encode of a 10-field update with no
// conflict and its echo, per event: see bench.HotPath.
func BenchmarkHotPath(b *testing.B) { bench.HotPath(b) }

// TestHotPathAllocs guards the budget of issue 13 on the resolver path (decode +
// resolve + encode of an update and of its echo): at most 4 allocations per event.
func TestHotPathAllocs(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("allocation counts are not meaningful under -race")
	}
	r := testing.Benchmark(bench.HotPath)
	if perEvent := float64(r.AllocsPerOp()) / 2; perEvent > 4 {
		t.Errorf("%.1f allocations per event, want at most 4", perEvent)
	}
}
