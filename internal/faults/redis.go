package faults

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisServer is the redis-server binary the suite runs (Debian's package puts it
// on PATH as /usr/bin/redis-server).
const RedisServer = "redis-server"

// HaveRedis reports whether redis-server can be run, with the reason when not.
func HaveRedis() (bool, string) {
	if _, err := exec.LookPath(RedisServer); err != nil {
		return false, "redis-server is not on PATH (Debian: apt-get install redis-server): " + err.Error()
	}
	return true, ""
}

// redisServer is a redis-server child process with AOF (every write fsynced before
// it is answered) in its own directory on its own port, which it keeps across stops,
// so a restart loads what was written before.
type redisServer struct {
	addr   string
	dir    string
	cmd    *exec.Cmd
	exited chan struct{}
	log    *os.File
}

// startRedis starts a redis-server in dir on a free 127.0.0.1 port.
func startRedis(ctx context.Context, dir string) (*redisServer, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	log, err := os.OpenFile(filepath.Join(dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	r := &redisServer{dir: dir, log: log}
	var errs []error
	for range 3 { // a free port can be taken before redis-server binds it
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		r.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err = r.start(ctx); err == nil {
			return r, nil
		}
		errs = append(errs, err)
	}
	_ = log.Close()
	return nil, errors.Join(errs...)
}

// start starts the server on its port and directory and returns once it answers
// PING (after loading its AOF).
func (r *redisServer) start(ctx context.Context) error {
	_, port, _ := net.SplitHostPort(r.addr)
	r.cmd = exec.Command(RedisServer,
		"--port", port, "--bind", "127.0.0.1", "--dir", r.dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "",
		"--daemonize", "no", "--logfile", "")
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	setParentDeathSignal(r.cmd)
	if err := r.cmd.Start(); err != nil {
		return fmt.Errorf("faults: starting redis-server: %w", err)
	}
	r.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		_ = cmd.Wait()
		close(exited)
	}(r.cmd, r.exited)
	c := redis.NewClient(&redis.Options{Addr: r.addr, MaxRetries: -1, DialTimeout: time.Second})
	defer func() { _ = c.Close() }()
	deadline := time.Now().Add(startDeadline)
	for {
		err := c.Ping(ctx).Err()
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		}
		select {
		case <-r.exited:
			return fmt.Errorf("faults: redis-server on %s exited before it answered (see %s): %w", r.addr, r.log.Name(), err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = r.stop(syscall.SIGKILL)
			return fmt.Errorf("faults: redis-server on %s did not answer within %s: %w", r.addr, startDeadline, err)
		}
	}
}

// stop ends the server with sig (SIGTERM: it finishes its AOF and exits; SIGKILL:
// nothing more is written) and waits for it to exit.
func (r *redisServer) stop(sig syscall.Signal) error {
	if r.cmd == nil || r.cmd.Process == nil {
		return nil
	}
	if err := r.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-r.exited:
		return nil
	case <-time.After(stopDeadline):
		_ = r.cmd.Process.Kill()
		<-r.exited
		return fmt.Errorf("faults: redis-server on %s did not exit within %s of %s; killed", r.addr, stopDeadline, sig)
	}
}

// close stops the server for good.
func (r *redisServer) close() {
	_ = r.stop(syscall.SIGTERM)
	_ = r.log.Close()
}

// heldClients returns the client ports of the connections whose command waits behind
// CLIENT PAUSE WRITE: CLIENT LIST flags them "b" (blocked, postponed) with a write
// command (EVALSHA of the state store's and the DLQ's scripts, XADD of the audit
// trail, ...).
func heldClients(ctx context.Context, c *redis.Client) ([]int, error) {
	list, err := c.ClientList(ctx).Result()
	if err != nil {
		return nil, err
	}
	var ports []int
	for _, line := range strings.Split(list, "\n") {
		f := clientFields(line)
		if !strings.Contains(f["flags"], "b") || f["cmd"] == "" {
			continue
		}
		if _, p, err := net.SplitHostPort(f["addr"]); err == nil {
			if n, err := strconv.Atoi(p); err == nil {
				ports = append(ports, n)
			}
		}
	}
	return ports, nil
}

// clientFields splits a CLIENT LIST line ("id=4 addr=127.0.0.1:43098 ... cmd=eval").
func clientFields(line string) map[string]string {
	f := map[string]string{}
	for _, kv := range strings.Fields(line) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			f[k] = v
		}
	}
	return f
}

// freePort returns a 127.0.0.1 TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("faults: finding a free port: %w", err)
	}
	defer func() { _ = l.Close() }()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, fmt.Errorf("faults: listener address %v is not TCP", l.Addr())
	}
	return addr.Port, nil
}
