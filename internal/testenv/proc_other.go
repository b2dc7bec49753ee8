//go:build !linux

package testenv

import "os/exec"

// setParentDeathSignal has no portable equivalent outside Linux: there a server
// outlives a test binary that dies before Main stops it.
func setParentDeathSignal(*exec.Cmd) {}
