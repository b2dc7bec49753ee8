package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisTLS starts a redis-server of the test's own that takes TLS connections only
// (its plain port is off), with the server certificate of certs; clients must present
// a certificate signed by its CA when requireClientCert. It returns the address.
func RedisTLS(t testing.TB, certs *Certs, requireClientCert bool) string {
	t.Helper()
	if !haveRedisServer(t) {
		t.Skip("redis-server is not installed")
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	auth := "optional"
	if requireClientCert {
		auth = "yes"
	}
	p, err := startRedis("--port 0", fmt.Sprint("--tls-port ", port),
		"--tls-cert-file "+certs.ServerCertFile, "--tls-key-file "+certs.ServerKeyFile,
		"--tls-ca-cert-file "+certs.CAFile, "--tls-auth-clients "+auth)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.stop() })
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// ReplicatedCluster is a Redis Cluster of three masters, each with a replica, of
// the test's own: Kill a master's process and its replica takes over.
type ReplicatedCluster struct {
	nodes []*process
}

// Addrs are the nodes' addresses (seeds for a cluster client).
func (c *ReplicatedCluster) Addrs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.addr
	}
	return out
}

// RedisReplicatedCluster starts six redis-server processes on 127.0.0.1 and makes
// them a cluster with redis-cli --cluster create --cluster-replicas 1, with a short
// node timeout (1 s) so that a failover takes seconds.
func RedisReplicatedCluster(t testing.TB) *ReplicatedCluster {
	t.Helper()
	if !haveRedisServer(t) {
		t.Skip("redis-server is not installed")
	}
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip("redis-cli is not installed")
	}
	c := &ReplicatedCluster{}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			_ = n.stop()
		}
	})
	for range 6 {
		bus, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		n, err := startRedis("--cluster-enabled yes", "--cluster-config-file nodes.conf", fmt.Sprint("--cluster-port ", bus),
			"--cluster-node-timeout 1000", "--appendonly yes", "--appendfsync always",
			// A replica that has not synced cannot take over: sync at once, not 5 s
			// after the first replica asks (the default delay for diskless sync).
			"--repl-diskless-sync-delay 0")
		if err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, n)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if err := c.awaitHealthy(Deadline); err != nil {
		t.Fatal(err)
	}
	return c
}

// Masters are the addresses of the nodes that are masters now.
func (c *ReplicatedCluster) Masters(ctx context.Context) ([]string, error) {
	var masters []string
	for _, n := range c.nodes {
		if !n.alive() {
			continue
		}
		rdb := redis.NewClient(&redis.Options{Addr: n.addr})
		role, err := rdb.Do(ctx, "ROLE").Slice()
		_ = rdb.Close()
		if err != nil {
			return nil, err
		}
		if len(role) > 0 && role[0] == "master" {
			masters = append(masters, n.addr)
		}
	}
	return masters, nil
}

// Kill ends the node's process at once (SIGKILL), as a crashed server.
func (c *ReplicatedCluster) Kill(t testing.TB, addr string) {
	t.Helper()
	for _, n := range c.nodes {
		if n.addr == addr {
			_ = n.cmd.Process.Signal(syscall.SIGKILL)
			<-n.exited
			return
		}
	}
	t.Fatalf("no node at %s", addr)
}

// awaitHealthy waits until every live node sees the cluster ok with three masters.
func (c *ReplicatedCluster) awaitHealthy(within time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var last error
	for {
		if last = c.healthy(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(errors.New("the Redis Cluster did not become healthy"), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// AwaitHealthy waits (Deadline) until the cluster is ok again, three masters
// serving every slot: after a Kill, once a replica has taken over.
func (c *ReplicatedCluster) AwaitHealthy(t testing.TB) {
	t.Helper()
	if err := c.awaitHealthy(Deadline); err != nil {
		t.Fatal(err)
	}
}

func (c *ReplicatedCluster) healthy(ctx context.Context) error {
	for _, n := range c.nodes {
		if !n.alive() {
			continue
		}
		rdb := redis.NewClient(&redis.Options{Addr: n.addr})
		info, err := rdb.ClusterInfo(ctx).Result()
		_ = rdb.Close()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
			return fmt.Errorf("%s: cluster not ok yet", n.addr)
		}
	}
	masters, err := c.Masters(ctx)
	if err != nil {
		return err
	}
	if len(masters) != 3 {
		return fmt.Errorf("%d masters, want 3", len(masters))
	}
	// Every live replica in sync with its master, so that it can take over.
	for _, n := range c.nodes {
		if !n.alive() || slices.Contains(masters, n.addr) {
			continue
		}
		rdb := redis.NewClient(&redis.Options{Addr: n.addr})
		info, err := rdb.Info(ctx, "replication").Result()
		_ = rdb.Close()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "master_link_status:up") {
			return fmt.Errorf("replica %s not in sync with its master yet", n.addr)
		}
	}
	return nil
}

// alive reports whether the process has not exited.
func (p *process) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Sentinel is a Redis master with a replica, watched by one Sentinel (quorum 1,
// master down after 1 s), of the test's own.
type Sentinel struct {
	Addr       string // the sentinel's address
	MasterName string
	master     *process
}

// RedisSentinel starts a master, its replica and a sentinel monitoring them.
func RedisSentinel(t testing.TB) *Sentinel {
	t.Helper()
	if !haveRedisServer(t) {
		t.Skip("redis-server is not installed")
	}
	master, err := startRedis()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = master.stop() })
	host, port, _ := net.SplitHostPort(master.addr)
	replica, err := startRedis("--replicaof " + host + " " + port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = replica.stop() })
	s := &Sentinel{MasterName: "concord-test", master: master}
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	sport, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s %s %s 1\nsentinel down-after-milliseconds %s 1000\nsentinel failover-timeout %s 5000\n",
		sport, dir, s.MasterName, host, port, s.MasterName, s.MasterName)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("redis-server", conf, "--sentinel")
	setParentDeathSignal(cmd)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{
		addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(sport)), dir: dir, cmd: cmd, log: &logBuffer{},
		exited: make(chan struct{}), readyLine: "+monitor master",
	}
	ready := make(chan struct{})
	go p.readOutput(out, ready)
	t.Cleanup(func() { _ = p.stop() })
	select {
	case <-ready:
	case <-time.After(startTimeout):
		t.Fatalf("the sentinel did not start\n%s", p.log.String())
	}
	s.Addr = p.addr
	// Wait until the replica is in sync, or a failover could find none to promote.
	rdb := redis.NewClient(&redis.Options{Addr: replica.addr})
	defer func() { _ = rdb.Close() }()
	deadline := time.Now().Add(Deadline)
	for {
		info, err := rdb.Info(context.Background(), "replication").Result()
		if err == nil && strings.Contains(info, "master_link_status:up") {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica did not sync: %v %s", err, info)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// KillMaster ends the master's process at once; the sentinel promotes the replica.
func (s *Sentinel) KillMaster() {
	_ = s.master.cmd.Process.Signal(syscall.SIGKILL)
	<-s.master.exited
}
