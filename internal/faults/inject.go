package faults

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/concord-sync/concord/dlq"
	"github.com/concord-sync/concord/internal/sim"
)

// Kind is a kind of fault.
type Kind string

// The faults the suite injects.
const (
	// KillRandom: SIGKILL of a random instance at a random moment, started again at once.
	KillRandom Kind = "kill"
	// KillHeldWrite: SIGKILL inside a batch. Redis writes are held (CLIENT PAUSE
	// WRITE) until an instance's write waits behind the pause, or until apply events
	// appear while writes are held (a build that produces before it writes its
	// state), and that instance is killed.
	KillHeldWrite Kind = "kill-held-write"
	// KillOnApply: SIGKILL the instant new apply events appear on an apply topic,
	// with the group's offset commits held back so that the kill falls between the
	// produce and the commit; the instance working on the apply's record is killed.
	KillOnApply Kind = "kill-on-apply"
	// RedisTerm and RedisKill stop redis-server (SIGTERM, SIGKILL) for a few seconds
	// and start it again on the same port and directory (AOF, fsync always).
	RedisTerm Kind = "redis-term"
	RedisKill Kind = "redis-kill"
	// BrokerErrors: concord's produce requests, fetches and offset commits answered
	// with error codes for a few seconds (NOT_LEADER_FOR_PARTITION,
	// REQUEST_TIMED_OUT after the write, NOT_ENOUGH_REPLICAS,
	// COORDINATOR_NOT_AVAILABLE).
	BrokerErrors Kind = "broker-errors"
	// CutConnections: for a few seconds the broker closes the connection of every
	// concord produce, fetch, offset commit and heartbeat.
	CutConnections Kind = "cut-connections"
	// Freeze: SIGSTOP of a random instance for twice the session timeout and a
	// second, then SIGCONT: the group gives its partitions away meanwhile, and
	// whatever it had in flight must be fenced.
	Freeze Kind = "freeze"
	// FreezeOnApply is Freeze the instant the instance's apply events appear (offset
	// commits held back): frozen between its produce and its commit.
	FreezeOnApply Kind = "freeze-on-apply"
	// Join: one more instance joins the group, works a few seconds and leaves
	// (SIGTERM): two rebalances.
	Join Kind = "join"
	// Leave is the second half of a Join: the instance that joined stops with
	// SIGTERM. Not injected on its own.
	Leave Kind = "leave"
	// SinkRestart restarts a system's sink task (sim.RestartSink): it writes again
	// what it wrote since its last offset commit.
	SinkRestart Kind = "sink-restart"
)

// FaultRecord is one fault injected and the recovery from it.
type FaultRecord struct {
	Kind     Kind      `json:"kind"`
	At       time.Time `json:"at"`
	Instance int       `json:"instance"` // -1 when no instance was its target
	Note     string    `json:"note,omitempty"`
	// Recovery is the time from the fault (a kill or freeze) or from its end (an
	// outage: Redis started again, broker faults removed) to every instance ready with
	// the input committed as far as it reached then; not measured for a sink restart.
	Recovery  time.Duration `json:"recovery_ns"`
	Measured  bool          `json:"measured"`
	Recovered bool          `json:"recovered"`
}

// holdCommits is how long the group's offset commits are held back while a kill or
// a freeze waits for apply events: long enough that the fault lands before the
// commit, short enough to stay well inside the batch timeout.
const holdCommits = 300 * time.Millisecond

// inject injects one fault and waits for the recovery from it.
func (e *env) inject(ctx context.Context, k Kind) error {
	if err := e.simFailed(); err != nil {
		return fmt.Errorf("faults: the simulated systems failed: %w", err)
	}
	rec := FaultRecord{Kind: k, At: time.Now(), Instance: -1, Measured: true}
	ref := rec.At // recovery is measured from here
	var err error
	switch k {
	case KillRandom:
		sleep(ctx, time.Duration(e.rng.Int64N(int64(1500*time.Millisecond))))
		in := e.pick()
		rec.At, ref, rec.Instance = time.Now(), time.Now(), in.id
		err = e.killAndRestart(in)
	case KillHeldWrite:
		rec.Instance, rec.Note, err = e.killHeldWrite(ctx)
		rec.At, ref = time.Now(), time.Now()
	case KillOnApply, FreezeOnApply:
		var in *instance
		in, rec.Note = e.onApply(ctx)
		rec.At, ref, rec.Instance = time.Now(), time.Now(), in.id
		if k == KillOnApply {
			err = e.killAndRestart(in)
		} else {
			err = e.freeze(ctx, in)
		}
		e.broker.commitDelay.Store(0)
	case RedisTerm, RedisKill:
		sig := syscall.SIGTERM
		if k == RedisKill {
			sig = syscall.SIGKILL
		}
		hold := e.hold(3*time.Second, 8*time.Second)
		if err = e.redis.stop(sig); err == nil {
			sleep(ctx, hold)
			err = e.redis.start(ctx)
		}
		rec.Note, ref = fmt.Sprintf("down %s", hold.Round(100*time.Millisecond)), time.Now()
	case BrokerErrors:
		hold := e.hold(3*time.Second, 6*time.Second)
		remove := e.broker.injectErrors()
		sleep(ctx, hold)
		remove()
		rec.Note, ref = fmt.Sprintf("for %s", hold.Round(100*time.Millisecond)), time.Now()
	case CutConnections:
		hold := e.hold(2*time.Second, 5*time.Second)
		before := e.broker.cuts.Load()
		e.broker.cutting.Store(true)
		sleep(ctx, hold)
		e.broker.cutting.Store(false)
		rec.Note, ref = fmt.Sprintf("for %s: %d connections cut", hold.Round(100*time.Millisecond), e.broker.cuts.Load()-before), time.Now()
	case Freeze:
		sleep(ctx, time.Duration(e.rng.Int64N(int64(1500*time.Millisecond))))
		in := e.pick()
		rec.At, ref, rec.Instance = time.Now(), time.Now(), in.id
		err = e.freeze(ctx, in)
	case Join:
		return e.join(ctx, rec)
	case SinkRestart:
		system := systemNames[e.rng.IntN(len(systemNames))]
		e.sim.RestartSink(system)
		rec.Note, rec.Measured = system, false
	default:
		return fmt.Errorf("faults: unknown fault kind %q", k)
	}
	if err != nil {
		return fmt.Errorf("faults: %s: %w", k, err)
	}
	rec.Recovered = e.waitRecovered(ctx, ref, e.o.RecoveryDeadline)
	rec.Recovery = time.Since(ref)
	e.record(rec)
	return ctx.Err()
}

func (e *env) record(rec FaultRecord) {
	e.mu.Lock()
	e.faults = append(e.faults, rec)
	e.mu.Unlock()
	status := fmt.Sprintf("recovered in %s", rec.Recovery.Round(10*time.Millisecond))
	if !rec.Recovered {
		status = fmt.Sprintf("NOT recovered within %s", e.o.RecoveryDeadline)
	}
	who := ""
	if rec.Instance >= 0 {
		who = fmt.Sprintf(" instance %d", rec.Instance)
	}
	e.logf("%s%s %s; %s", rec.Kind, who, rec.Note, status)
}

// hold returns a random duration in [lo, hi).
func (e *env) hold(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(e.rng.Int64N(int64(hi-lo)))
}

// killHeldWrite holds Redis writes and kills the instance whose write waits behind
// the hold (or whose applies appear while writes are held), then lets writes go.
func (e *env) killHeldWrite(ctx context.Context) (int, string, error) {
	const pause = 10 * time.Second
	base := e.watch.count()
	if err := e.rdb.Do(ctx, "CLIENT", "PAUSE", pause.Milliseconds(), "WRITE").Err(); err != nil {
		return -1, "", fmt.Errorf("CLIENT PAUSE: %w", err)
	}
	defer func() { _ = e.rdb.Do(context.WithoutCancel(ctx), "CLIENT", "UNPAUSE").Err() }()
	deadline := time.Now().Add(pause - time.Second)
	var victim *instance
	note := ""
	for victim == nil && time.Now().Before(deadline) && ctx.Err() == nil {
		if e.watch.count() > base {
			a, _ := e.watch.nextApply(ctx, base)
			victim, note = e.owner(ctx, a.record), fmt.Sprintf("applies to %s appeared while its Redis writes were held", a.topic)
			break
		}
		if ports, err := heldClients(ctx, e.rdb); err == nil && len(ports) > 0 {
			victim = e.holder(ports)
			note = "its Redis write was held by CLIENT PAUSE WRITE"
		}
		if victim == nil {
			sleep(ctx, 5*time.Millisecond)
		}
	}
	if victim == nil {
		victim, note = e.pick(), "no write was held within the pause: killed anyway"
	}
	return victim.id, note, e.killAndRestart(victim)
}

// holder returns the instance owning one of the given client ports.
func (e *env) holder(ports []int) *instance {
	var pids []int
	for _, in := range e.instances {
		if in.running() {
			pids = append(pids, in.cmd.Process.Pid)
		}
	}
	owners, err := localPorts(pids)
	if err != nil {
		if len(e.instances) == 1 {
			return e.instances[0] // without /proc, the only instance is the holder
		}
		return nil
	}
	for _, p := range ports {
		if in := e.byPid(owners[p]); in != nil {
			return in
		}
	}
	return nil
}

// onApply holds back the group's offset commits and waits for new apply events; it
// returns the instance working on the first one's record. The caller releases the
// commits.
func (e *env) onApply(ctx context.Context) (*instance, string) {
	e.broker.commitDelay.Store(int64(holdCommits))
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	a, ok := e.watch.nextApply(waitCtx, e.watch.count())
	if !ok {
		return e.pick(), "no apply appeared within 30s: at a random moment"
	}
	return e.owner(ctx, a.record), fmt.Sprintf("as an apply to %s for %s appeared (%s after it was read), offset commits held back %s",
		a.topic, a.record, time.Since(a.at).Round(time.Microsecond), holdCommits)
}

// freeze stops an instance for longer than the session timeout, then continues it
// and notes how many of its batches the fence refused after it woke up.
func (e *env) freeze(ctx context.Context, in *instance) error {
	fenced := e.metricOf(ctx, in, "concord_fenced_total")
	if err := in.freeze(); err != nil {
		return err
	}
	e.broker.commitDelay.Store(0)
	sleep(ctx, 2*e.o.sessionTimeout()+time.Second)
	if err := in.thaw(); err != nil {
		return err
	}
	// The zombie's work after it woke up: wait for it to be back in the group, then
	// read how many of its batches were refused.
	if e.waitRecovered(ctx, time.Now(), e.o.RecoveryDeadline) && fenced >= 0 {
		if after := e.metricOf(ctx, in, "concord_fenced_total"); after >= 0 {
			e.mu.Lock()
			e.fenced += after - fenced
			e.mu.Unlock()
			e.logf("instance %d thawed: %.0f of its batches refused by the fence", in.id, after-fenced)
		}
	}
	return nil
}

// join starts one more instance and records the time until the group is ready with
// it; after a few seconds of work it stops the instance (SIGTERM, leaving the group)
// and records the recovery from that as a Leave.
func (e *env) join(ctx context.Context, rec FaultRecord) error {
	in, err := e.addInstance()
	if err != nil {
		return fmt.Errorf("faults: join: %w", err)
	}
	rec.Instance, rec.Note = in.id, "a new instance joined the group"
	rec.Recovered = e.waitRecovered(ctx, rec.At, e.o.RecoveryDeadline)
	rec.Recovery = time.Since(rec.At)
	e.record(rec)
	sleep(ctx, e.hold(3*time.Second, 6*time.Second))
	leave := FaultRecord{Kind: Leave, At: time.Now(), Instance: in.id, Note: "SIGTERM: it finished its batch and left the group", Measured: true}
	if err := e.removeInstance(in); err != nil {
		return fmt.Errorf("faults: leave: %w", err)
	}
	leave.Recovered = e.waitRecovered(ctx, leave.At, e.o.RecoveryDeadline)
	leave.Recovery = time.Since(leave.At)
	e.record(leave)
	return ctx.Err()
}

// check compares the systems and every edit so far, and keeps every lost edit found.
func (e *env) check(ctx context.Context) (*checkResult, error) {
	entries, err := e.dlqEntries(ctx)
	if err != nil {
		return nil, fmt.Errorf("faults: reading the DLQ: %w", err)
	}
	trail := e.watch.auditTrail()
	// The Redis stream too: it is written before the state, the Kafka topic with
	// the applies.
	if stored, err := dlq.NewStore(e.rdb, name).Audit(ctx, dlq.AuditFilter{Limit: 1 << 30}); err == nil {
		trail = append(trail, stored...)
	}
	var pending []*dlq.Entry
	for _, en := range entries {
		if en.Status == dlq.StatusPending {
			pending = append(pending, en)
		}
	}
	held := dlq.Held(pending)
	rows := map[string]map[string]map[string]string{}
	for _, s := range systemNames {
		rows[s] = e.sim.Rows(s)
	}
	edits := e.sim.Edits()
	c := newEditCheck(edits, rows, held, trail)
	res := &checkResult{outcomes: map[string]int{}, edits: len(edits), dlqPending: len(pending), dlqReasons: map[string]int{}}
	for _, en := range pending {
		res.dlqReasons[en.Reason]++
	}
	var fresh []sim.Edit
	for _, ed := range edits {
		o := c.outcome(ed)
		res.outcomes[o]++
		if o == outcomeLost {
			fresh = append(fresh, ed)
		}
	}
	res.diverged = e.sim.Diverged(systemNames[0], systemNames[1], syncedFields(), held)
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ed := range fresh {
		if _, seen := e.lost[ed.Seq]; seen {
			continue
		}
		final := map[string]string{}
		for _, s := range systemNames {
			final[s] = finalValue(rows[s], ed)
		}
		e.lost[ed.Seq] = LostEdit{Edit: ed, Final: final, History: c.history(ed, edits, entries, e.watch.appliesOf(ed.Record), trail)}
	}
	return res, nil
}

// checkResult is one check's figures.
type checkResult struct {
	edits      int
	outcomes   map[string]int
	diverged   []string
	dlqPending int
	dlqReasons map[string]int
}
