package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PG is a PostgreSQL database that one test owns: created empty for it on the
// package's shared cluster and dropped (its sessions terminated) when it ends.
type PG struct {
	Host     string // always 127.0.0.1
	Port     int
	User     string // the superuser "postgres"; the cluster trusts every local connection
	Database string // unique to the test
	// DSN is a libpq-style connection string for the test's database.
	DSN string
}

// Conn opens a new connection to the test's database, closed when the test ends.
func (p *PG) Conn(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c, err := pgx.Connect(ctx, p.DSN)
	if err != nil {
		t.Fatalf("testenv: connecting to %s: %v", p.DSN, err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// Postgres returns a fresh, empty database for the test on the package's one
// PostgreSQL cluster, started on first use (initdb into a temporary directory, trust
// authentication, fsync off, listening on 127.0.0.1 only) and stopped by Main. The
// database is dropped when the test ends, so t.Parallel tests never share one.
//
// PostgreSQL is looked for in /usr/lib/postgresql/*/bin (Debian's layout, newest
// version first), then on PATH. Without it the test is skipped, or failed when CI is
// "true". As root, the server runs as the "postgres" OS user (initdb refuses root).
// The package's TestMain must call Main.
func Postgres(t testing.TB) *PG {
	t.Helper()
	requireMain(t)
	if _, err := postgresBin(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("testenv: PostgreSQL is required when CI=true but %v: install the postgresql package (.ci/run does)", err)
		}
		t.Skipf("testenv: %v; skipping (install the postgresql package to run this test)", err)
	}
	p := shared(t, &postgresServer)
	return createDatabase(t, p.addr)
}

// Package state, by necessity: one cluster per test binary, shared by its tests.
var (
	postgresServer = lazyServer{kind: "postgres", start: startPostgres}
	postgresDBs    atomic.Int64
	postgresBin    = sync.OnceValues(findPostgresBin)
)

const postgresUser = "postgres"

// createDatabase creates the test's database over a short-lived admin connection
// (none is kept open, so the server's smart shutdown in Main is not held up) and
// drops it, with its sessions, when the test ends.
func createDatabase(t testing.TB, addr string) *PG {
	t.Helper()
	host, portText, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portText)
	name := fmt.Sprintf("test_%d_%d", os.Getpid(), postgresDBs.Add(1))
	admin := fmt.Sprintf("host=%s port=%d user=%s dbname=postgres sslmode=disable", host, port, postgresUser)
	if err := adminExec(admin, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if err := adminExec(admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})
	return &PG{
		Host: host, Port: port, User: postgresUser, Database: name,
		DSN: fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", host, port, postgresUser, name),
	}
}

func adminExec(dsn, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connecting to the shared PostgreSQL (%s): %w", dsn, err)
	}
	defer func() { _ = c.Close(context.Background()) }()
	if _, err := c.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

// findPostgresBin returns the directory holding initdb and postgres: Debian installs
// them in /usr/lib/postgresql/<version>/bin, off PATH.
func findPostgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return postgresVersion(dirs[i]) > postgresVersion(dirs[j]) })
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		d := filepath.Dir(p)
		if isExecutable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb, no initdb on PATH)")
}

// postgresVersion reads the version out of /usr/lib/postgresql/<version>/bin.
func postgresVersion(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// startPostgres initialises a throwaway cluster and starts its server; a port taken
// between freePort and the server's bind is retried on another.
func startPostgres() (*process, error) {
	bin, err := postgresBin()
	if err != nil {
		return nil, err
	}
	runAs, err := postgresCredential()
	if err != nil {
		return nil, err
	}
	dir, err := initCluster(bin, runAs)
	if err != nil {
		return nil, err
	}
	var errs []error
	for range startAttempts {
		p, err := tryStartPostgres(bin, dir, runAs)
		if err == nil {
			return p, nil
		}
		errs = append(errs, err)
	}
	_ = os.RemoveAll(dir)
	return nil, errors.Join(errs...)
}

// osUser is who the server runs as when the tests run as root.
type osUser struct{ uid, gid uint32 }

// postgresCredential is nil when the tests do not run as root; as root it is the
// "postgres" user's, since initdb and postgres refuse to run as root.
func postgresCredential() (*osUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(postgresUser)
	if err != nil {
		return nil, fmt.Errorf("running as root, PostgreSQL must run as the %q OS user (which Debian's postgresql package creates): %w", postgresUser, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("user %q: %w", postgresUser, err)
	}
	return &osUser{uid: uint32(uid), gid: uint32(gid)}, nil
}

// initCluster runs initdb into a new temporary directory (owned by the server's
// user) and returns that directory; the data directory is its "data" child and the
// unix socket lives beside it.
func initCluster(bin string, runAs *osUser) (string, error) {
	dir, err := os.MkdirTemp("", "concord-postgres-")
	if err != nil {
		return "", err
	}
	if runAs != nil {
		if err := os.Chown(dir, int(runAs.uid), int(runAs.gid)); err != nil {
			_ = os.RemoveAll(dir)
			return "", err
		}
	}
	cmd := postgresCommand(bin, "initdb", runAs,
		"-D", filepath.Join(dir, "data"), "--auth=trust", "-U", postgresUser,
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("initdb: %w\n%s", err, out)
	}
	return dir, nil
}

func postgresCommand(bin, name string, runAs *osUser, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(bin, name), args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	setParentDeathSignal(cmd)
	if runAs != nil {
		runAsUser(cmd, runAs)
	}
	return cmd
}

const postgresReady = "database system is ready to accept connections"

// tryStartPostgres runs the server in the foreground (so the parent-death signal
// reaches it) and returns once it accepts connections.
func tryStartPostgres(bin, dir string, runAs *osUser) (*process, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := postgresCommand(bin, "postgres", runAs,
		"-D", filepath.Join(dir, "data"), "-p", strconv.Itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
		"-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "logging_collector=off", "-c", "max_connections=200",
		// Logical decoding (what Debezium's PostgreSQL connector reads), so that a test
		// can see what a write logs (internal/world's TOAST test, test_decoding).
		"-c", "wal_level=logical", "-c", "max_replication_slots=8")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{
		addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir, cmd: cmd,
		log: &logBuffer{}, exited: make(chan struct{}),
	}
	ready := make(chan struct{})
	go readPostgresOutput(p, out, ready)
	select {
	case <-ready:
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("postgres exited before it was ready: %v\n%s", cmd.ProcessState, postgresLog(p.log))
	case <-time.After(startTimeout):
		_ = cmd.Process.Kill()
		<-p.exited
		return nil, fmt.Errorf("postgres was not ready within %v\n%s", startTimeout, postgresLog(p.log))
	}
}

// readPostgresOutput is process.readOutput for postgres's log line: it keeps the
// log, signals ready, and reaps the process once its output ends. Stopping (Main's
// SIGTERM) is a smart shutdown, prompt since no admin connection stays open and every
// test's database is dropped WITH (FORCE).
func readPostgresOutput(p *process, out io.Reader, ready chan<- struct{}) {
	sc := bufio.NewScanner(out)
	signalled := false
	for sc.Scan() {
		line := sc.Text()
		p.log.add(line)
		if !signalled && strings.Contains(line, postgresReady) {
			close(ready)
			signalled = true
		}
	}
	_, _ = io.Copy(io.Discard, out)
	_ = p.cmd.Wait()
	close(p.exited)
}

// postgresLog is the tail of the server's log for error messages.
func postgresLog(b *logBuffer) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var sb strings.Builder
	for _, l := range b.lines[max(0, len(b.lines)-logLines):] {
		sb.WriteString("  postgres: ")
		sb.WriteString(l)
		sb.WriteByte('\n')
	}
	return sb.String()
}
