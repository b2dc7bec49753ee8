//go:build race

package resolver_test

const raceEnabled = true
