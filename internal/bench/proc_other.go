//go:build !linux

package bench

import "os/exec"

// setParentDeathSignal does nothing outside Linux: the child is stopped by the bench.
func setParentDeathSignal(*exec.Cmd) {}
