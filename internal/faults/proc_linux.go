package faults

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// setParentDeathSignal makes the kernel kill a child when the suite's process dies
// before it could stop it (a panic, a test timeout).
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// localPorts returns, for each pid, the local ports of its TCP sockets: the ports
// redis-server's CLIENT LIST shows as the clients' addresses.
func localPorts(pids []int) (map[int]int, error) {
	inodes := map[string]int{} // socket inode -> pid
	for _, pid := range pids {
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			continue // exited
		}
		for _, fd := range fds {
			target, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
			if err != nil {
				continue
			}
			if inode, ok := strings.CutPrefix(target, "socket:["); ok {
				inodes[strings.TrimSuffix(inode, "]")] = pid
			}
		}
	}
	owner := map[int]int{} // local port -> pid
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		if err := scanSockets(table, inodes, owner); err != nil {
			return nil, err
		}
	}
	return owner, nil
}

// scanSockets reads a /proc/net/tcp table: "sl local_address rem_address st ... inode".
func scanSockets(table string, inodes map[string]int, owner map[int]int) error {
	f, err := os.Open(table)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 {
			continue
		}
		pid, ok := inodes[fields[9]]
		if !ok {
			continue
		}
		_, hexPort, ok := strings.Cut(fields[1], ":")
		if !ok {
			continue
		}
		if port, err := strconv.ParseInt(hexPort, 16, 32); err == nil {
			owner[int(port)] = pid
		}
	}
	return sc.Err()
}
