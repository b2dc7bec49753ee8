package resolver_test

import (
	"testing"

	"github.com/concord-sync/concord/internal/bench"
)

// BenchmarkHotPath measures decode + resolve + encode of a 10-field update with no
// conflict and its echo, per event: see bench.HotPath.
func BenchmarkHotPath(b *testing.B) { bench.HotPath(b) }
