//go:build !unix

package testenv

import "os/exec"

// runAsUser has nothing to do where there is no root to step down from.
func runAsUser(*exec.Cmd, *osUser) {}
