//go:build !linux

package faults

import (
	"errors"
	"os/exec"
)

// setParentDeathSignal has no portable equivalent outside Linux.
func setParentDeathSignal(*exec.Cmd) {}

// localPorts needs /proc.
func localPorts([]int) (map[int]int, error) {
	return nil, errors.New("faults: mapping sockets to processes needs Linux's /proc")
}
