package testenv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	startTimeout = 15 * time.Second
	stopTimeout  = 10 * time.Second
	// startAttempts: a free port found by the kernel can be taken by someone else
	// before redis-server binds it; another port is tried then.
	startAttempts = 3
)

// process is a redis-server started by this test binary.
type process struct {
	addr   string
	dir    string
	cmd    *exec.Cmd
	log    *logBuffer
	exited chan struct{} // closed once the process has exited and its output is read
	dbs    chan int      // free logical databases (standalone server only)
	// readyLine is what the server prints once it accepts connections.
	readyLine string
}

// startRedis starts redis-server on a free 127.0.0.1 port with no persistence, in a
// temporary directory, and returns once it accepts connections. extra are further
// "--option value" pairs, each one string.
func startRedis(extra ...string) (*process, error) {
	var errs []error
	for range startAttempts {
		p, err := tryStartRedis(extra)
		if err == nil {
			return p, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func tryStartRedis(extra []string) (*process, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "concord-redis-")
	if err != nil {
		return nil, err
	}
	args := []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir,
		"--daemonize", "no", "--logfile", "",
	}
	for _, e := range extra {
		args = append(args, strings.Fields(e)...)
	}
	cmd := exec.Command("redis-server", args...)
	setParentDeathSignal(cmd)
	out, err := cmd.StdoutPipe()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	p := &process{
		addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir, cmd: cmd,
		log: &logBuffer{}, exited: make(chan struct{}),
	}
	ready := make(chan struct{})
	go p.readOutput(out, ready)
	select {
	case <-ready:
		return p, nil
	case <-p.exited:
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("redis-server %s exited before it was ready: %v\n%s", strings.Join(args, " "), cmd.ProcessState, p.log.String())
	case <-time.After(startTimeout):
		_ = p.stop()
		return nil, fmt.Errorf("redis-server was not ready within %v\n%s", startTimeout, p.log.String())
	}
}

// readOutput keeps the server's log (for error messages), signals ready when the
// server says it accepts connections, and reaps the process once its output ends.
func (p *process) readOutput(out io.Reader, ready chan<- struct{}) {
	sc := bufio.NewScanner(out)
	signalled := false
	for sc.Scan() {
		line := sc.Text()
		p.log.add(line)
		want := p.readyLine
		if want == "" {
			want = "Ready to accept connections"
		}
		if !signalled && strings.Contains(line, want) {
			close(ready)
			signalled = true
		}
	}
	_, _ = io.Copy(io.Discard, out)
	_ = p.cmd.Wait()
	close(p.exited)
}

// stop asks the server to exit (SIGTERM: with no persistence it exits without
// saving), kills it when it does not within stopTimeout, and removes its directory.
func (p *process) stop() error {
	var err error
	if sigErr := p.cmd.Process.Signal(syscall.SIGTERM); sigErr != nil && !errors.Is(sigErr, os.ErrProcessDone) {
		err = sigErr
	}
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
		err = errors.Join(err, fmt.Errorf("redis-server on %s did not exit within %v of SIGTERM; killed", p.addr, stopTimeout))
	}
	return errors.Join(err, os.RemoveAll(p.dir))
}

// freePort returns a 127.0.0.1 TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	addr, ok := l.Addr().(*net.TCPAddr)
	closeErr := l.Close()
	if !ok {
		return 0, fmt.Errorf("finding a free port: listener address %v is not TCP", l.Addr())
	}
	return addr.Port, closeErr
}

// logBuffer keeps the last lines a server printed.
type logBuffer struct {
	mu    sync.Mutex
	lines []string
}

const logLines = 40

func (b *logBuffer) add(line string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lines = append(b.lines, line)
	if len(b.lines) > 2*logLines {
		b.lines = append(b.lines[:0], b.lines[len(b.lines)-logLines:]...)
	}
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var buf bytes.Buffer
	start := max(0, len(b.lines)-logLines)
	for _, l := range b.lines[start:] {
		buf.WriteString("  redis-server: ")
		buf.WriteString(l)
		buf.WriteByte('\n')
	}
	return buf.String()
}
