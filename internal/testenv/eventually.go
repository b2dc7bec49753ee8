package testenv

import (
	"testing"
	"time"
)

// Eventually polls cond every 20ms until it holds, failing the test after 30s with
// what it was waiting for. Tests wait on conditions, never on sleeps.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	EventuallyWithin(t, what, 30*time.Second, cond)
}

// EventuallyWithin is Eventually with its own deadline, for conditions that take a
// volume of work, which a loaded machine (or -race) makes several times slower: wait
// for the volume, never for a rate.
func EventuallyWithin(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
