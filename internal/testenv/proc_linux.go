package testenv

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal makes the kernel kill the server when the test binary dies
// before Main could stop it (a panic, a timeout, a killed go test).
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
