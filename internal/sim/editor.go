package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/concord-sync/concord/internal/world"
)

const (
	// pairGap bounds the time between the two edits of a concurrent pair.
	pairGap = 2 * time.Millisecond
	// probes is how many random records an action tries before it settles for another kind.
	probes = 8
	// minTick is the editor's shortest wake-up interval; faster rates edit in bursts.
	minTick = 2 * time.Millisecond
)

// pairing is two systems that both edit a shared field.
type pairing struct {
	a, b  *table
	field string
}

// editor plays the users of every system. It is owned by one goroutine: its random
// source and counters are not shared.
type editor struct {
	cfg      Config
	rng      *rand.Rand
	log      *zap.Logger
	editors  []*table  // systems whose users edit something
	pairings []pairing // candidates for concurrent pairs
	values   int64     // makes every generated value unique
	onPair   func()
	paused   *atomic.Bool // Sim.PauseEditing; nil: never paused
}

func newEditor(cfg Config, tables []*table, log *zap.Logger, onPair func()) *editor {
	e := &editor{
		cfg:    cfg,
		rng:    rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(cfg.Seed)^0x5eed)),
		log:    log,
		onPair: onPair,
	}
	for i, a := range tables {
		if len(a.spec.editable()) > 0 {
			e.editors = append(e.editors, a)
		}
		for _, b := range tables[i+1:] {
			for _, f := range a.spec.Shared {
				if slices.Contains(b.spec.Shared, f) {
					e.pairings = append(e.pairings, pairing{a: a, b: b, field: f})
				}
			}
		}
	}
	return e
}

// run makes edit actions at cfg.Rate until ctx is done or stop is closed. Behind
// schedule (a full publish queue), it catches up by at most a tenth of a second of edits.
func (e *editor) run(ctx context.Context, stop <-chan struct{}) error {
	if e.cfg.Rate <= 0 || len(e.editors) == 0 {
		return nil
	}
	tick := max(time.Duration(float64(time.Second)/e.cfg.Rate), minTick)
	burst := max(1, int64(e.cfg.Rate/10))
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	start, done := time.Now(), int64(0)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-stop:
			return nil
		case <-ticker.C:
		}
		if e.paused != nil && e.paused.Load() {
			start, done = time.Now(), 0 // resumed, edit on schedule from then on
			continue
		}
		due := int64(time.Since(start).Seconds()*e.cfg.Rate) - done
		if due > burst {
			done += due - burst
			due = burst
		}
		for range due {
			if err := e.act(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			done++
		}
	}
}

// act makes one edit action: a concurrent pair, a delete or an edit.
func (e *editor) act(ctx context.Context) error {
	u := e.rng.Float64()
	switch {
	case u < e.cfg.ConcurrentRatio:
		if done, err := e.pair(ctx); done || err != nil {
			return err
		}
	case u < e.cfg.ConcurrentRatio+e.cfg.DeleteRatio:
		if done, err := e.delete(ctx); done || err != nil {
			return err
		}
	}
	t := e.editors[e.rng.IntN(len(e.editors))]
	return e.edit(ctx, t, e.record(), nil)
}

// edit creates record id in t with every editable field, or updates fields of it (1-3
// random editable fields when fields is nil).
func (e *editor) edit(ctx context.Context, t *table, id string, fields []string) error {
	created, err := t.upsert(ctx, id, func(exists bool) row {
		all := t.spec.editable()
		switch {
		case !exists:
			fields = all
		case fields == nil:
			e.rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
			fields = all[:min(len(all), 1+e.rng.IntN(3))]
		}
		set := make(row, len(fields))
		for _, f := range fields {
			set[t.spec.column(f)] = e.value(t, f)
		}
		return set
	})
	if err != nil {
		return err
	}
	t.stats.edits.Add(1)
	if created {
		t.stats.creates.Add(1)
	}
	return nil
}

// delete deletes a random existing record of a random system. It returns false when
// it found none to delete.
func (e *editor) delete(ctx context.Context) (bool, error) {
	t := e.editors[e.rng.IntN(len(e.editors))]
	for range probes {
		deleted, err := t.remove(ctx, e.record())
		if err != nil || deleted {
			if deleted {
				t.stats.edits.Add(1)
				t.stats.deletes.Add(1)
			}
			return deleted, err
		}
	}
	return false, nil
}

// pair has two systems edit the same shared field of a record both hold, within
// pairGap of each other, in random order. It returns false when it found no such record.
func (e *editor) pair(ctx context.Context) (bool, error) {
	if len(e.pairings) == 0 {
		return false, nil
	}
	p := e.pairings[e.rng.IntN(len(e.pairings))]
	id, found := "", false
	for range probes {
		if id = e.record(); p.a.has(id) && p.b.has(id) {
			found = true
			break
		}
	}
	if !found {
		return false, nil
	}
	first, second := p.a, p.b
	if e.rng.IntN(2) == 0 {
		first, second = second, first
	}
	gap := time.Duration(e.rng.Int64N(int64(pairGap) + 1))
	if err := e.edit(ctx, first, id, []string{p.field}); err != nil {
		return true, err
	}
	if gap > 0 {
		timer := time.NewTimer(gap)
		select {
		case <-ctx.Done():
			timer.Stop()
			return true, nil
		case <-timer.C:
		}
	}
	if err := e.edit(ctx, second, id, []string{p.field}); err != nil {
		return true, err
	}
	e.onPair()
	e.log.Debug("concurrent pair", zap.String("record", id), zap.String("field", p.field),
		zap.String("first", first.spec.Name), zap.String("second", second.spec.Name), zap.Duration("gap", gap))
	return true, nil
}

// record returns a random record ID.
func (e *editor) record() string {
	return "r-" + strconv.Itoa(e.rng.IntN(e.cfg.Records))
}

// value returns a new JSON string value for field f of t: "<system>-<field>-<n>".
//
// A column of a declared type gets a value of that type, in the canonical form
// concord decodes it to (codecs.Column): a numeric(P,S) a decimal with 0 to S
// fractional digits (so a column of a larger scale than another system's sometimes
// holds what that one cannot), a timestamptz a microsecond UTC time, a date, a
// boolean, a jsonb document. Text columns get unique text.
func (e *editor) value(t *table, f string) string {
	e.values++
	n := e.values
	var p, s int
	switch typ := t.spec.Types[t.spec.column(f)]; {
	case typ == world.PGTimestamptz:
		at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n)*time.Minute + time.Duration(e.rng.IntN(1e6))*time.Microsecond)
		return strconv.Quote(at.Format(time.RFC3339Nano))
	case typ == world.PGDate:
		return strconv.Quote(time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(n%25000)).Format(time.DateOnly))
	case typ == world.PGBoolean:
		return strconv.FormatBool(e.rng.IntN(2) == 0)
	case typ == world.PGJSONB:
		// In concord's canonical form of a document (members sorted, compact): the
		// table stores it as PostgreSQL prints jsonb, which concord reads back to this.
		return strconv.Quote(fmt.Sprintf(`{"n":%d,"tags":["%s",%d],"tier":"t%d"}`, n, t.spec.Name, e.rng.IntN(9), e.rng.IntN(3)))
	case scanNumeric(typ, &p, &s):
		digits := 1 + e.rng.IntN(s+1) // 0..s fractional digits
		unscaled := n*1000 + int64(e.rng.IntN(1000))
		frac := digits - 1
		text := strconv.FormatInt(unscaled, 10)
		for len(text) <= frac {
			text = "0" + text
		}
		if frac > 0 {
			text = strings.TrimRight(strings.TrimRight(text[:len(text)-frac]+"."+text[len(text)-frac:], "0"), ".")
		}
		return strconv.Quote(text)
	}
	return strconv.Quote(t.spec.Name + "-" + f + "-" + strconv.FormatInt(n, 10))
}

func scanNumeric(typ string, p, s *int) bool {
	_, err := fmt.Sscanf(typ, "numeric(%d,%d)", p, s)
	return err == nil
}
