package faults

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// SoakOptions configure Soak.
type SoakOptions struct {
	Duration time.Duration // how long the systems edit and faults are injected
	// FaultRate is faults per minute (default 4); 0 injects none. Faults come one at
	// a time: each waits for the recovery from the one before, so a high rate is a
	// ceiling rather than a promise.
	FaultRate float64
	Instances int // concord instances in the group (default 3)
	// CheckEvery pauses the edits for a check this often (default 2m); there is
	// always a check at the end. A check sees a loss only in the last edit of a
	// record's field (an earlier one is superseded), so checks should come before
	// most fields are edited again.
	CheckEvery time.Duration
	// Faults, when set, is the mix to draw from (each kind equally likely) instead of
	// every kind the group's size allows.
	Faults []Kind
	// Progress, when set, is called about once a second from another goroutine.
	Progress func(Progress)
}

// Kinds lists every fault kind, in the order the mix draws them.
func Kinds() []Kind {
	return []Kind{KillRandom, KillHeldWrite, KillOnApply, RedisTerm, RedisKill, BrokerErrors, CutConnections, Freeze, FreezeOnApply, Join, SinkRestart}
}

// Progress is what a soak has done so far.
type Progress struct {
	Elapsed  time.Duration
	Events   int64 // change events the systems published
	Faults   int
	Kills    int
	Lost     int // edits found lost by the checks so far
	Diverged int // records diverged at the last check
	Checks   int
}

// soakMix is the soak's faults and their weights; with one instance there is no
// group to freeze or join.
func soakMix(instances int) map[Kind]int {
	mix := map[Kind]int{
		KillRandom: 3, KillHeldWrite: 2, KillOnApply: 2,
		RedisTerm: 1, RedisKill: 1, BrokerErrors: 1, CutConnections: 1, SinkRestart: 1,
	}
	if instances > 1 {
		mix[Freeze], mix[FreezeOnApply], mix[Join] = 1, 1, 1
	}
	return mix
}

// Soak runs one world for so.Duration, injecting the fault mix at so.FaultRate and
// checking every so.CheckEvery and at the end (the edits pause for each check). When
// ctx is cancelled it stops injecting and still checks at the end. The result counts
// every lost edit found by any check.
func Soak(ctx context.Context, o Options, so SoakOptions) (*Result, error) {
	o = o.withDefaults()
	if o.Binary == "" || o.Dir == "" {
		return nil, errors.New("faults: Options.Binary and Options.Dir are required")
	}
	if ok, why := HaveRedis(); !ok {
		return nil, errors.New(why)
	}
	if so.Instances <= 0 {
		so.Instances = 3
	}
	if so.CheckEvery <= 0 {
		so.CheckEvery = 2 * time.Minute
	}
	if so.FaultRate < 0 {
		so.FaultRate = 0
	}
	mix := soakMix(so.Instances)
	if len(so.Faults) > 0 {
		mix = map[Kind]int{}
		for _, k := range so.Faults {
			if !slices.Contains(Kinds(), k) {
				return nil, fmt.Errorf("faults: unknown fault kind %q (one of %v)", k, Kinds())
			}
			mix[k] = 1
		}
	}
	kinds, weights := weighted(mix)
	e, err := newEnv(ctx, &o, "soak", o.Seed, so.Instances)
	if err != nil {
		return nil, err
	}
	defer e.close()
	var checks, diverged int
	if so.Progress != nil {
		done := make(chan struct{})
		defer close(done)
		go func() {
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
				}
				e.mu.Lock()
				p := Progress{Elapsed: time.Since(e.start), Faults: len(e.faults), Kills: e.kills, Lost: len(e.lost), Diverged: diverged, Checks: checks}
				e.mu.Unlock()
				p.Events = e.events(ctx)
				so.Progress(p)
			}
		}()
	}
	end := e.start.Add(so.Duration)
	nextCheck := e.start.Add(so.CheckEvery)
	for ctx.Err() == nil && time.Now().Before(end) {
		gap := time.Until(end)
		if so.FaultRate > 0 {
			gap = min(gap, time.Duration(-math.Log(1-e.rng.Float64())*60/so.FaultRate*float64(time.Second)))
		}
		sleep(ctx, gap)
		if ctx.Err() != nil || !time.Now().Before(end) {
			break
		}
		if so.FaultRate > 0 {
			if err := e.inject(ctx, kinds[pick(e.rng.IntN(total(weights)), weights)]); err != nil && ctx.Err() == nil {
				return nil, err
			}
		}
		if time.Now().After(nextCheck) && time.Until(end) > so.CheckEvery/4 {
			r, err := e.finish(ctx)
			if err != nil {
				return nil, err
			}
			e.mu.Lock()
			checks, diverged = checks+1, len(r.Diverged)
			e.mu.Unlock()
			e.sim.PauseEditing(false)
			e.logf("edits resumed")
			nextCheck = time.Now().Add(so.CheckEvery)
		}
	}
	r, err := e.finish(context.WithoutCancel(ctx))
	if err == nil {
		e.mu.Lock()
		checks, diverged = checks+1, len(r.Diverged)
		e.mu.Unlock()
	}
	return r, err
}

// weighted lists a mix's kinds in a fixed order (so a seed gives the same faults)
// with their weights.
func weighted(mix map[Kind]int) ([]Kind, []int) {
	var kinds []Kind
	var weights []int
	for _, k := range Kinds() {
		if w := mix[k]; w > 0 {
			kinds, weights = append(kinds, k), append(weights, w)
		}
	}
	return kinds, weights
}

func total(ws []int) int {
	n := 0
	for _, w := range ws {
		n += w
	}
	return n
}

// pick returns the index whose cumulative weight covers u.
func pick(u int, ws []int) int {
	for i, w := range ws {
		if u < w {
			return i
		}
		u -= w
	}
	return len(ws) - 1
}
