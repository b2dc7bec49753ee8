package faults

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/concord-sync/concord/dlq"
	"github.com/concord-sync/concord/internal/sim"
)

// Deadlines for things that take a moment on an idle machine, sized to hold when 2
// cores are shared several times over (a deadline only bounds a failure).
const (
	startDeadline = 30 * time.Second
	stopDeadline  = 30 * time.Second
	quietFor      = 3 * time.Second // no apply consumed for this long: the sinks are idle
	pollEvery     = 100 * time.Millisecond
)

// Options configure the suite. The zero value of each field means its default.
type Options struct {
	// Binary is the concord executable, run as `Binary run --config FILE --http ADDR`.
	Binary string
	// Dir receives each scenario's configuration, redis-server's directory and every
	// instance's log; it is kept for a post-mortem.
	Dir  string
	Seed int64 // seeds the edits and every choice of fault, victim and timing

	Records         int     // records the systems share (default 300)
	Rate            float64 // edit actions per second, all systems together (default 40)
	ConcurrentRatio float64 // share of actions made as a concurrent pair (default 0.1)
	Partitions      int     // partitions of every topic (default 4)

	// SessionTimeout and HeartbeatInterval go into the configuration as
	// kafka.session_timeout and kafka.heartbeat_interval (default 3s and 1s). A
	// negative SessionTimeout leaves both out, for builds from before they existed
	// (their session timeout is 10s).
	SessionTimeout    time.Duration
	HeartbeatInterval time.Duration

	// RecoveryDeadline bounds the wait for recovery after one fault (default 2m); a
	// fault not recovered from by then counts as unrecovered.
	RecoveryDeadline time.Duration
	// SettleDeadline bounds the wait for quiet once the edits stop (default 5m).
	SettleDeadline time.Duration

	// Log receives one line per fault and phase; nil for none.
	Log io.Writer
}

func (o Options) withDefaults() Options {
	if o.Records == 0 {
		o.Records = 300
	}
	if o.Rate == 0 {
		o.Rate = 40
	}
	if o.ConcurrentRatio == 0 {
		o.ConcurrentRatio = 0.1
	}
	if o.Partitions == 0 {
		o.Partitions = 4
	}
	if o.SessionTimeout == 0 {
		o.SessionTimeout = 3 * time.Second
	}
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = time.Second
	}
	if o.RecoveryDeadline == 0 {
		o.RecoveryDeadline = 2 * time.Minute
	}
	if o.SettleDeadline == 0 {
		o.SettleDeadline = 5 * time.Minute
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return o
}

// sessionTimeout is the group's session timeout the instances run with.
func (o *Options) sessionTimeout() time.Duration {
	if o.SessionTimeout < 0 {
		return 10 * time.Second
	}
	return o.SessionTimeout
}

// env is one running world: a broker, a redis-server, the simulated systems, the
// watcher and the concord instances. Its methods are called from one goroutine,
// except progress.
type env struct {
	o     *Options
	name  string
	dir   string
	rng   *rand.Rand
	start time.Time

	broker  *broker
	redis   *redisServer
	rdb     *redis.Client
	kc      *kafka.Client
	sim     *sim.Sim
	simStop context.CancelFunc
	simDone chan error
	watch   *watcher
	config  string

	instances []*instance
	nextID    int

	mu     sync.Mutex // guards what progress reads
	faults []FaultRecord
	kills  int
	fenced float64
	lost   map[int64]LostEdit // by edit Seq, over every check
}

// newEnv starts a world with n instances and returns once every instance is ready.
func newEnv(ctx context.Context, o *Options, name string, seed int64, n int) (_ *env, err error) {
	e := &env{
		o: o, name: name, dir: filepath.Join(o.Dir, name), rng: rand.New(rand.NewPCG(uint64(seed), 0xfa17)),
		start: time.Now(), lost: map[int64]LostEdit{},
	}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if err := os.MkdirAll(e.dir, 0o700); err != nil {
		return nil, err
	}
	if e.broker, err = startBroker(o.Partitions, name, inputTopics, outputTopics); err != nil {
		return nil, fmt.Errorf("faults: starting kfake: %w", err)
	}
	if e.redis, err = startRedis(ctx, filepath.Join(e.dir, "redis")); err != nil {
		return nil, err
	}
	// The suite's own client: no retries, so that a check during an outage fails
	// instead of hanging.
	e.rdb = redis.NewClient(&redis.Options{Addr: e.redis.addr, MaxRetries: -1, DialTimeout: 2 * time.Second})
	e.kc = &kafka.Client{Addr: kafka.TCP(e.broker.addrs...), Timeout: 10 * time.Second}
	session, heartbeat := o.SessionTimeout, o.HeartbeatInterval
	if session < 0 {
		session = 0
	}
	e.config = filepath.Join(e.dir, "concord.yaml")
	if err := writeConfig(e.config, concordConfig(e.broker.addrs, e.redis.addr, session, heartbeat)); err != nil {
		return nil, err
	}
	if e.watch, err = watch(e.broker.addrs, applyTopics, auditTopic); err != nil {
		return nil, err
	}
	if e.sim, err = sim.New(simConfig(e.broker.addrs, o, seed), zap.NewNop()); err != nil {
		return nil, err
	}
	simCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.simStop, e.simDone = cancel, make(chan error, 1)
	go func() { e.simDone <- e.sim.Run(simCtx) }()
	for range n {
		if _, err := e.addInstance(); err != nil {
			return nil, err
		}
	}
	e.logf("started: kfake %v, redis-server %s (AOF, %s), %d instance(s), %d records at %.0f edits/s",
		e.broker.addrs, e.redis.addr, e.redis.dir, n, o.Records, o.Rate)
	if !e.waitRecovered(ctx, time.Now(), o.RecoveryDeadline) {
		return nil, fmt.Errorf("faults: the instances were not ready within %s (logs in %s)", o.RecoveryDeadline, e.dir)
	}
	return e, nil
}

// close stops everything the env started. Instances get SIGTERM (a frozen one is
// thawed first).
func (e *env) close() {
	for _, in := range e.instances {
		if err := in.term(); err != nil {
			e.logf("%v", err)
		}
	}
	if e.simStop != nil {
		e.simStop()
		if err := <-e.simDone; err != nil {
			e.logf("the simulation ended with %v", err)
		}
	}
	if e.watch != nil {
		e.watch.close()
	}
	if e.rdb != nil {
		_ = e.rdb.Close()
	}
	if e.redis != nil {
		e.redis.close()
	}
	if e.broker != nil {
		e.broker.close()
	}
}

func (e *env) logf(format string, args ...any) {
	_, _ = fmt.Fprintf(e.o.Log, "%7.1fs %s: %s\n", time.Since(e.start).Seconds(), e.name, fmt.Sprintf(format, args...))
}

// simFailed returns the simulation's error when it ended (a sink that could not
// write an apply fails it, as a real JDBC sink task fails).
func (e *env) simFailed() error {
	select {
	case err := <-e.simDone:
		e.simDone <- err
		if err == nil {
			err = errors.New("faults: the simulation ended")
		}
		return err
	default:
		return nil
	}
}

// addInstance starts one more instance.
func (e *env) addInstance() (*instance, error) {
	in, err := newInstance(e.nextID, e.o.Binary, e.config, filepath.Join(e.dir, fmt.Sprintf("concord-%d.log", e.nextID)))
	if err != nil {
		return nil, err
	}
	e.nextID++
	if err := in.start(); err != nil {
		return nil, err
	}
	e.instances = append(e.instances, in)
	return in, nil
}

// removeInstance stops an instance with SIGTERM and forgets it.
func (e *env) removeInstance(in *instance) error {
	e.instances = slices.DeleteFunc(e.instances, func(o *instance) bool { return o == in })
	return in.term()
}

// pick returns a random instance.
func (e *env) pick() *instance { return e.instances[e.rng.IntN(len(e.instances))] }

// byPid returns the instance of a process id.
func (e *env) byPid(pid int) *instance {
	for _, in := range e.instances {
		if in.running() && in.cmd.Process.Pid == pid {
			return in
		}
	}
	return nil
}

// owner returns the instance working on a record's input partition now (the
// simulated connectors route by the murmur2 hash of the record id, as Debezium's
// PartitionRouting does), or a random one when no instance claims it.
func (e *env) owner(ctx context.Context, record string) *instance {
	if len(e.instances) == 1 {
		return e.instances[0]
	}
	parts := make([]int, e.o.Partitions)
	for i := range parts {
		parts[i] = i
	}
	p := kafka.Murmur2Balancer{}.Balance(kafka.Message{Key: []byte(record)}, parts...)
	for _, in := range e.instances {
		if in.partitions(ctx)[p] {
			return in
		}
	}
	return e.pick()
}

// killAndRestart sends SIGKILL to an instance and starts it again at once.
func (e *env) killAndRestart(in *instance) error {
	if err := in.kill(); err != nil {
		return err
	}
	e.mu.Lock()
	e.kills++
	e.mu.Unlock()
	return in.start()
}

// allReady reports whether every instance answers /readyz with 200.
func (e *env) allReady(ctx context.Context) bool {
	for _, in := range e.instances {
		if !in.ready(ctx) {
			return false
		}
	}
	return true
}

// highWatermarks returns the next offset of every input partition.
func (e *env) highWatermarks(ctx context.Context) (map[string]map[int]int64, error) {
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, t := range inputTopics {
		for p := range e.o.Partitions {
			req.Topics[t] = append(req.Topics[t], kafka.LastOffsetOf(p))
		}
	}
	res, err := e.kc.ListOffsets(ctx, req)
	if err != nil {
		return nil, err
	}
	out := map[string]map[int]int64{}
	for t, ps := range res.Topics {
		out[t] = map[int]int64{}
		for _, p := range ps {
			if p.Error != nil {
				return nil, p.Error
			}
			out[t][p.Partition] = p.LastOffset
		}
	}
	return out, nil
}

// caughtUp reports whether the group has committed every input partition up to hwm.
func (e *env) caughtUp(ctx context.Context, hwm map[string]map[int]int64) bool {
	req := &kafka.OffsetFetchRequest{GroupID: name, Topics: map[string][]int{}}
	for t := range hwm {
		for p := range hwm[t] {
			req.Topics[t] = append(req.Topics[t], p)
		}
	}
	res, err := e.kc.OffsetFetch(ctx, req)
	if err != nil || res.Error != nil {
		return false
	}
	for t, ps := range hwm {
		for p, want := range ps {
			if want == 0 {
				continue
			}
			committed := int64(-1)
			for _, c := range res.Topics[t] {
				if c.Partition == p && c.Error == nil {
					committed = c.CommittedOffset
				}
			}
			if committed < want {
				return false
			}
		}
	}
	return true
}

// waitRecovered waits until every instance is ready and the group has committed
// the input as far as it reached when the wait began. It reports false after within.
func (e *env) waitRecovered(ctx context.Context, since time.Time, within time.Duration) bool {
	var hwm map[string]map[int]int64
	deadline := since.Add(within)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if hwm == nil {
			hwm, _ = e.highWatermarks(ctx)
		}
		if hwm != nil && e.allReady(ctx) && e.caughtUp(ctx, hwm) {
			return true
		}
		sleep(ctx, pollEvery)
	}
	return false
}

// settle stops the edits and waits until the sync is quiet: no apply consumed for
// quietFor, every change published, every instance ready and every input committed,
// twice in a row a second apart.
func (e *env) settle(ctx context.Context) bool {
	e.sim.PauseEditing(true)
	deadline := time.Now().Add(e.o.SettleDeadline)
	streak := 0
	for ctx.Err() == nil && time.Now().Before(deadline) {
		sleep(ctx, time.Second)
		hwm, err := e.highWatermarks(ctx)
		if err == nil && e.sim.Quiet(quietFor) && e.allReady(ctx) && e.caughtUp(ctx, hwm) {
			if streak++; streak >= 2 {
				return true
			}
			continue
		}
		streak = 0
	}
	return false
}

// metricOf returns a counter of an instance, or -1 when it cannot be read.
func (e *env) metricOf(ctx context.Context, in *instance, series string) float64 {
	m, err := in.metrics(ctx)
	if err != nil {
		return -1
	}
	return counter(m, series)
}

// events is the number of change events the systems published.
func (e *env) events(ctx context.Context) int64 {
	hwm, err := e.highWatermarks(ctx)
	if err != nil {
		return -1
	}
	var n int64
	for _, t := range []string{crmTopic, billingTopic} {
		for _, off := range hwm[t] {
			n += off
		}
	}
	return n
}

// dlqEntries reads every DLQ entry.
func (e *env) dlqEntries(ctx context.Context) ([]*dlq.Entry, error) {
	return dlq.NewStore(e.rdb, name).List(ctx, dlq.Filter{})
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
