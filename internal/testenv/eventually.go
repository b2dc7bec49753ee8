package testenv

import (
	"testing"
	"time"
)

// Deadline is how long a test waits for something that takes a moment on an idle
// machine: long enough to hold when 2 cores are shared several times over under
// -race. A deadline only bounds a failure; a passing wait returns as soon as its
// condition holds, so a generous one costs nothing.
const Deadline = 2 * time.Minute

// Eventually polls cond every 20ms until it holds, failing the test after Deadline
// with what it was waiting for. Tests wait on conditions, never on sleeps.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	EventuallyWithin(t, what, Deadline, cond)
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
