package testenv

import (
	"testing"
	"time"
)

// Eventually polls cond every 20ms until it holds, failing the test after 30s with
// what it was waiting for. Tests wait on conditions, never on sleeps.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
