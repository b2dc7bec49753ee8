//go:build unix

package testenv

import (
	"os/exec"
	"syscall"
)

// runAsUser makes cmd run as u (the tests run as root; PostgreSQL refuses to). Go
// sets the parent-death signal after switching user, so it survives the switch.
func runAsUser(cmd *exec.Cmd, u *osUser) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: u.uid, Gid: u.gid}
}
