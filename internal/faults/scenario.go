package faults

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Scenario is a world (a number of concord instances in one group) and the faults
// injected into it one after another, each once the recovery from the one before is
// measured, while the systems edit.
type Scenario struct {
	Name      string
	Instances int
	Faults    []Kind
}

// Suite is the fault suite's scenarios, sized to run in about five minutes on two
// loaded cores: 23 kills (random, with a held Redis write, the instant applies
// appear), Redis stopped twice, broker errors, cut connections, sink restarts, and a
// group of three with kills, freezes longer than the session timeout, a join and a
// leave.
func Suite() []Scenario {
	return []Scenario{
		{Name: "kills", Instances: 1, Faults: []Kind{
			KillRandom, KillHeldWrite, KillOnApply, KillRandom, KillHeldWrite, KillOnApply, SinkRestart,
			KillRandom, KillHeldWrite, KillOnApply, KillRandom, KillHeldWrite, KillOnApply, SinkRestart,
			KillRandom, KillHeldWrite, KillOnApply, KillRandom,
		}},
		{Name: "outages", Instances: 1, Faults: []Kind{
			RedisTerm, KillRandom, BrokerErrors, CutConnections, RedisKill, KillHeldWrite, SinkRestart,
		}},
		{Name: "group", Instances: 3, Faults: []Kind{
			KillRandom, Freeze, Join, KillHeldWrite, FreezeOnApply, KillOnApply, SinkRestart, KillRandom, KillRandom,
		}},
	}
}

// Result is what a scenario (or a soak) measured.
type Result struct {
	Scenario  string  `json:"scenario"`
	Instances int     `json:"instances"`
	Seconds   float64 `json:"seconds"`
	Settled   bool    `json:"settled"` // the sync went quiet within Options.SettleDeadline

	Edits    int            `json:"edits"`    // user edits (one per field written, one per delete)
	Outcomes map[string]int `json:"outcomes"` // final, superseded, decided, held, lost
	Lost     int            `json:"lost"`     // edits lost, over every check
	// LostEdits are the lost edits, oldest first, each with its history.
	LostEdits  []LostEdit `json:"lost_edits,omitempty"`
	Diverged   []string   `json:"diverged"`    // records whose synced fields differ outside the DLQ
	DLQPending int        `json:"dlq_pending"` // pending DLQ entries at the end
	// DLQReasons counts the pending entries by reason: what the checks set aside.
	DLQReasons map[string]int `json:"dlq_reasons"`

	Events   int64 `json:"events"`    // change events the systems published
	Applies  int64 `json:"applies"`   // apply messages produced, every copy counted
	EventIDs int64 `json:"event_ids"` // distinct event ids among them
	Copies   int64 `json:"copies"`    // applies produced again with the same id and the same bytes
	// TwoContents are event ids produced with different bytes; TwoDecisions counts
	// those that differ beyond the apply's ts_ms.
	TwoContents  []string `json:"two_contents"`
	TwoDecisions int      `json:"two_decisions"`
	// TwoContentExample shows the messages of the first of TwoContents.
	TwoContentExample string `json:"two_content_example,omitempty"`

	Kills       int           `json:"kills"`
	Faults      []FaultRecord `json:"faults"`
	RecoveryP50 time.Duration `json:"recovery_p50_ns"`
	RecoveryMax time.Duration `json:"recovery_max_ns"`
	Unrecovered int           `json:"unrecovered"`
	// Fenced is how many batches of thawed zombies the fence refused.
	Fenced float64 `json:"fenced"`
}

// Failed reports whether the result breaks a guarantee: an edit lost, records
// diverged, an event id with two contents, a fault never recovered from, or a sync
// that never went quiet.
func (r *Result) Failed() bool {
	return r.Lost > 0 || len(r.Diverged) > 0 || len(r.TwoContents) > 0 || r.Unrecovered > 0 || !r.Settled
}

// Problems says what Failed found, one item each.
func (r *Result) Problems() []string {
	var out []string
	if r.Lost > 0 {
		out = append(out, fmt.Sprintf("%d user edits lost", r.Lost))
	}
	if len(r.Diverged) > 0 {
		out = append(out, fmt.Sprintf("%d records diverged: %v", len(r.Diverged), r.Diverged))
	}
	if len(r.TwoContents) > 0 {
		out = append(out, fmt.Sprintf("%d event ids produced with two contents (%d of them two decisions)", len(r.TwoContents), r.TwoDecisions))
	}
	if r.Unrecovered > 0 {
		out = append(out, fmt.Sprintf("%d faults not recovered from", r.Unrecovered))
	}
	if !r.Settled {
		out = append(out, "the sync did not go quiet after the edits stopped")
	}
	return out
}

// Run runs one scenario: it starts the world, lets the systems edit a few seconds,
// injects the faults in order, lets them edit a few seconds more, stops the edits,
// waits for quiet and checks. An error means the suite could not run (a process that
// would not start, the simulation failing), not that concord failed a check.
func Run(ctx context.Context, o Options, sc Scenario) (*Result, error) {
	o = o.withDefaults()
	if o.Binary == "" || o.Dir == "" {
		return nil, errors.New("faults: Options.Binary and Options.Dir are required")
	}
	if ok, why := HaveRedis(); !ok {
		return nil, errors.New(why)
	}
	seed := o.Seed*1000 + int64(len(sc.Name))*31 + int64(sc.Name[0])
	e, err := newEnv(ctx, &o, sc.Name, seed, max(1, sc.Instances))
	if err != nil {
		return nil, err
	}
	defer e.close()
	sleep(ctx, 3*time.Second) // records to work on
	for _, k := range sc.Faults {
		if err := e.inject(ctx, k); err != nil {
			return nil, err
		}
		sleep(ctx, e.hold(500*time.Millisecond, 2*time.Second))
	}
	sleep(ctx, 3*time.Second)
	return e.finish(ctx)
}

// finish stops the edits, waits for quiet, checks, and returns the result.
func (e *env) finish(ctx context.Context) (*Result, error) {
	e.logf("edits stopped; waiting for quiet")
	settled := e.settle(ctx)
	if err := e.simFailed(); err != nil {
		return nil, fmt.Errorf("faults: the simulated systems failed: %w", err)
	}
	chk, err := e.check(ctx)
	if err != nil {
		return nil, err
	}
	r := e.result(ctx, chk, settled)
	e.logf("checked: %d edits, %d lost, %d diverged, %d event ids with two contents", r.Edits, r.Lost, len(r.Diverged), len(r.TwoContents))
	return r, nil
}

// result gathers the figures of the env after a check.
func (e *env) result(ctx context.Context, chk *checkResult, settled bool) *Result {
	st := e.watch.stats()
	e.mu.Lock()
	defer e.mu.Unlock()
	r := &Result{
		Scenario: e.name, Instances: len(e.instances), Seconds: time.Since(e.start).Round(100 * time.Millisecond).Seconds(),
		Settled: settled, Edits: chk.edits, Outcomes: chk.outcomes, Diverged: chk.diverged, DLQPending: chk.dlqPending, DLQReasons: chk.dlqReasons,
		Events: e.events(ctx), Applies: st.applies, EventIDs: st.ids, Copies: st.copies,
		TwoContents: st.twoContents, TwoDecisions: st.twoDecisions,
		Kills: e.kills, Faults: slices.Clone(e.faults), Fenced: e.fenced, Lost: len(e.lost),
	}
	for _, seq := range slices.Sorted(maps.Keys(e.lost)) {
		r.LostEdits = append(r.LostEdits, e.lost[seq])
	}
	if len(r.TwoContents) > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "event id %s:\n", r.TwoContents[0])
		for _, m := range e.watch.contentsOf(r.TwoContents[0]) {
			fmt.Fprintf(&b, "  %s %s@%d/%d rule=%s origin=%s %s\n", clock(m.At), m.Topic, m.Partition, m.Offset, m.Rule, m.Origin, m.Payload)
		}
		r.TwoContentExample = b.String()
	}
	var recoveries []time.Duration
	for _, f := range r.Faults {
		switch {
		case !f.Measured:
		case !f.Recovered:
			r.Unrecovered++
		default:
			recoveries = append(recoveries, f.Recovery)
		}
	}
	r.RecoveryP50, r.RecoveryMax = percentile(recoveries, 0.5), percentile(recoveries, 1)
	return r
}

// percentile is the q-quantile of ds (nearest rank), 0 for none.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	i := int(q*float64(len(ds))+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}
