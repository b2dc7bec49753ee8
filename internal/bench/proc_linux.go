package bench

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal makes the kernel kill the soak's child when the bench dies
// before it could stop it.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
