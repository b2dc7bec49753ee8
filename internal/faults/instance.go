package faults

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"syscall"
	"time"
)

// instance is one `concord run` child process. It keeps its HTTP address (its
// /readyz and /metrics) and its log file across restarts. Owned by the scenario's
// goroutine.
type instance struct {
	id      int
	bin     string
	config  string
	http    string // host:port
	logPath string

	cmd    *exec.Cmd
	exited chan struct{}
	frozen bool
	starts int
}

func newInstance(id int, bin, config, logPath string) (*instance, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	return &instance{id: id, bin: bin, config: config, http: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), logPath: logPath}, nil
}

func (in *instance) String() string { return "instance " + strconv.Itoa(in.id) }

// running reports whether the process is alive (frozen counts as alive).
func (in *instance) running() bool {
	if in.exited == nil {
		return false
	}
	select {
	case <-in.exited:
		return false
	default:
		return true
	}
}

// start starts the process; its stderr (JSON logs) is appended to its log file.
func (in *instance) start() error {
	if in.running() {
		return fmt.Errorf("faults: %s is already running", in)
	}
	log, err := os.OpenFile(in.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	in.starts++
	_, _ = fmt.Fprintf(log, "--- faults: start %d of %s at %s\n", in.starts, in, time.Now().Format(time.RFC3339Nano))
	in.cmd = exec.Command(in.bin, "run", "--config", in.config, "--http", in.http)
	in.cmd.Stdout, in.cmd.Stderr = log, log
	setParentDeathSignal(in.cmd)
	if err := in.cmd.Start(); err != nil {
		_ = log.Close()
		return fmt.Errorf("faults: starting %s: %w", in, err)
	}
	in.frozen = false
	in.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		_ = cmd.Wait()
		_ = log.Close()
		close(exited)
	}(in.cmd, in.exited)
	return nil
}

// signal sends sig to the process.
func (in *instance) signal(sig syscall.Signal) error {
	if !in.running() {
		return fmt.Errorf("faults: %s is not running", in)
	}
	if err := in.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

// kill sends SIGKILL and waits for the process to be gone.
func (in *instance) kill() error {
	if err := in.signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-in.exited
	in.frozen = false
	return nil
}

// term sends SIGTERM (finish the batch, commit, leave the group) and waits for the
// exit, killing the process when it takes longer than stopDeadline. A frozen process
// is thawed first.
func (in *instance) term() error {
	if !in.running() {
		return nil
	}
	if in.frozen {
		_ = in.thaw()
	}
	if err := in.signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-in.exited:
		return nil
	case <-time.After(stopDeadline):
		_ = in.kill()
		return fmt.Errorf("faults: %s did not exit within %s of SIGTERM; killed", in, stopDeadline)
	}
}

// freeze stops the process with SIGSTOP: it neither heartbeats nor works, and holds
// whatever it had in flight, as a long GC pause or a stalled VM does.
func (in *instance) freeze() error {
	if err := in.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	in.frozen = true
	return nil
}

// thaw continues a frozen process with SIGCONT.
func (in *instance) thaw() error {
	if err := in.signal(syscall.SIGCONT); err != nil {
		return err
	}
	in.frozen = false
	return nil
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

// ready reports whether /readyz answers 200.
func (in *instance) ready(ctx context.Context) bool {
	if !in.running() || in.frozen {
		return false
	}
	_, status, err := in.get(ctx, "/readyz")
	return err == nil && status == http.StatusOK
}

// metrics returns the /metrics text.
func (in *instance) metrics(ctx context.Context) (string, error) {
	if !in.running() || in.frozen {
		return "", fmt.Errorf("faults: %s is not serving", in)
	}
	body, status, err := in.get(ctx, "/metrics")
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("faults: %s /metrics: status %d", in, status)
	}
	return body, err
}

func (in *instance) get(ctx context.Context, path string) (string, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+in.http+path, nil)
	if err != nil {
		return "", 0, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode, err
}

var lagSeries = regexp.MustCompile(`(?m)^concord_consumer_lag\{partition="(\d+)"`)

// partitions returns the input partitions the instance works on now (the partitions
// of its concord_consumer_lag series).
func (in *instance) partitions(ctx context.Context) map[int]bool {
	m, err := in.metrics(ctx)
	if err != nil {
		return nil
	}
	parts := map[int]bool{}
	for _, sub := range lagSeries.FindAllStringSubmatch(m, -1) {
		if p, err := strconv.Atoi(sub[1]); err == nil {
			parts[p] = true
		}
	}
	return parts
}

// counter returns the value of a metric series without labels, 0 when absent.
func counter(metrics, name string) float64 {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` ([0-9.e+-]+)$`)
	if sub := re.FindStringSubmatch(metrics); sub != nil {
		v, _ := strconv.ParseFloat(sub[1], 64)
		return v
	}
	return 0
}
