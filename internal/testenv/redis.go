package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Databases is how many logical databases the shared redis-server has, and so how
// many tests can hold one at the same time; a test asking for one when all are taken
// waits for one to be released.
const Databases = 256

// Server is a Redis that one test may use as it likes until it ends.
type Server struct {
	Addr string
	DB   int  // the test's logical database (always 0 on miniredis)
	Real bool // a real redis-server, not miniredis

	// Mini is the in-process server when Real is false (for FastForward and the like).
	Mini *miniredis.Miniredis
}

// Options returns client options for the test's database.
func (s *Server) Options() *redis.Options {
	return &redis.Options{Addr: s.Addr, DB: s.DB}
}

// Client returns a new client of the test's database, closed when the test ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(s.Options())
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Redis returns a real redis-server with an empty database reserved for the test
// (released when it ends), or a miniredis when redis-server is not installed and CI is
// not "true". The package's TestMain must call Main.
func Redis(t testing.TB) *Server {
	t.Helper()
	requireMain(t)
	if !haveRedisServer(t) {
		t.Log("testenv: redis-server is not on PATH; using miniredis instead (install the redis-server package to test against real Redis)")
		return Miniredis(t)
	}
	p := shared(t, &standalone)
	db := p.acquireDB(t)
	s := &Server{Addr: p.addr, DB: db, Real: true}
	c := redis.NewClient(s.Options())
	defer func() { _ = c.Close() }()
	if err := c.FlushDB(context.Background()).Err(); err != nil {
		t.Fatalf("testenv: FLUSHDB of database %d on %s: %v", db, p.addr, err)
	}
	return s
}

// Miniredis returns a new in-process miniredis for the test, closed when it ends.
func Miniredis(t testing.TB) *Server {
	t.Helper()
	m := miniredis.NewMiniRedis()
	if err := m.Start(); err != nil {
		t.Fatalf("testenv: starting miniredis: %v", err)
	}
	t.Cleanup(m.Close)
	return &Server{Addr: m.Addr(), Mini: m}
}

// Cluster is a one-node Redis Cluster shared by the tests of a package.
type Cluster struct {
	Addr string
	// Name is unique to the test: use it as the prefix (store name) of every key the
	// test writes, since a cluster has only database 0 and is not flushed.
	Name string
}

// Client returns a new cluster client, closed when the test ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{c.Addr}})
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// RedisCluster returns the package's one-node Redis Cluster, started on first use,
// and a key prefix unique to the test. Without redis-server the test is skipped
// (failed when CI is "true"). The package's TestMain must call Main.
func RedisCluster(t testing.TB) *Cluster {
	t.Helper()
	requireMain(t)
	if !haveRedisServer(t) {
		t.Skip("testenv: redis-server is not on PATH; skipping a Redis Cluster test (miniredis has no cluster mode)")
	}
	p := shared(t, &cluster)
	return &Cluster{Addr: p.addr, Name: fmt.Sprintf("t%d", clusterNames.Add(1))}
}

// Main runs the package's tests and then stops the servers they started. Call it
// from TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	mainCalled.Store(true)
	code := m.Run()
	stopAll()
	os.Exit(code)
}

// Package state, by necessity: one server per test binary is shared by its tests.
var (
	mainCalled   atomic.Bool
	standalone   = lazyServer{kind: "redis-server", start: startStandalone}
	cluster      = lazyServer{kind: "redis-server (cluster)", start: startCluster}
	clusterNames atomic.Int64
	lookPath     = sync.OnceValue(func() error { _, err := exec.LookPath("redis-server"); return err })
)

func requireMain(t testing.TB) {
	t.Helper()
	if !mainCalled.Load() {
		t.Fatal("testenv: the package's TestMain must call testenv.Main(m), which stops the shared redis-server when the tests end")
	}
}

// haveRedisServer reports whether redis-server is installed; with CI=true a missing
// one fails the test, so CI never silently tests against miniredis only.
func haveRedisServer(t testing.TB) bool {
	t.Helper()
	err := lookPath()
	if err == nil {
		return true
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("testenv: redis-server is required when CI=true but is not on PATH (%v): install the redis-server package (.ci/run does)", err)
	}
	return false
}

// lazyServer is a server process started by the first test that needs it. A start
// failure is remembered, so every later test fails at once with the same error
// instead of waiting for another failed start.
type lazyServer struct {
	kind  string
	start func() (*process, error)

	mu  sync.Mutex
	p   *process
	err error
}

func shared(t testing.TB, l *lazyServer) *process {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.p == nil && l.err == nil {
		l.p, l.err = l.start()
	}
	if l.err != nil {
		t.Fatalf("testenv: starting %s: %v", l.kind, l.err)
	}
	return l.p
}

func stopAll() {
	for _, l := range []*lazyServer{&standalone, &cluster, &postgresServer} {
		l.mu.Lock()
		if l.p != nil {
			if err := l.p.stop(); err != nil {
				fmt.Fprintf(os.Stderr, "testenv: stopping %s: %v\n", l.kind, err)
			}
			l.p = nil
		}
		l.mu.Unlock()
	}
}

func startStandalone() (*process, error) {
	p, err := startRedis(fmt.Sprint("--databases ", Databases))
	if err != nil {
		return nil, err
	}
	p.dbs = make(chan int, Databases)
	for i := range Databases {
		p.dbs <- i
	}
	return p, nil
}

// dbWait bounds how long a test waits for a free database before failing: only a
// leak (tests holding databases without ending) makes it run out.
const dbWait = time.Minute

func (p *process) acquireDB(t testing.TB) int {
	t.Helper()
	select {
	case db := <-p.dbs:
		t.Cleanup(func() { p.dbs <- db })
		return db
	case <-time.After(dbWait):
		t.Fatalf("testenv: all %d Redis databases stayed in use for %v", Databases, dbWait)
		return 0
	}
}

func startCluster() (*process, error) {
	bus, err := freePort()
	if err != nil {
		return nil, err
	}
	p, err := startRedis("--cluster-enabled yes", "--cluster-config-file nodes.conf", fmt.Sprint("--cluster-port ", bus))
	if err != nil {
		return nil, err
	}
	if err := assignAllSlots(p.addr); err != nil {
		_ = p.stop()
		return nil, fmt.Errorf("%w\n%s", err, p.log.String())
	}
	return p, nil
}

// assignAllSlots gives every hash slot to the single node and waits until the
// cluster reports itself ready.
func assignAllSlots(addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer func() { _ = c.Close() }()
	if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		return fmt.Errorf("CLUSTER ADDSLOTSRANGE: %w", err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		info, err := c.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(errors.New("the cluster did not become ready"), err, ctx.Err())
		case <-tick.C:
		}
	}
}
