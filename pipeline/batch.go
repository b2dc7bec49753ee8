package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/concord-sync/concord/codecs"
	"github.com/concord-sync/concord/dlq"
	"github.com/concord-sync/concord/pipeline/state"
	"github.com/concord-sync/concord/resolver"
)

// item is one message of a batch after the first pass.
type item struct {
	msg    *kafka.Message
	system string // "" for a review decision
	record string // "" for messages without a change
	kind   codecs.Kind
	err    error        // poison
	review *dlq.Command // a reviewer's decision
}

// process runs one batch: decode, read the states of its records in one round trip,
// resolve every change in order, then produce, record DLQ entries, write the states
// in one round trip and commit. It returns when the batch's output was acknowledged.
func (w *worker) process(ctx context.Context, batch []kafka.Message) (time.Time, error) {
	res := w.resolver()
	now := w.p.opts.Now()
	items, records := w.scan(ctx, res, batch)
	res = res.WithColumnTypes(w.p.types.snapshot()) // with what the scan learned
	l, err := w.load(ctx, records)
	if err != nil {
		return time.Time{}, err
	}
	states := l.states
	out := newOutputs(w, res, now)
	var ev codecs.Event
	var ch resolver.Change
	for i := range items {
		it := &items[i]
		switch {
		case it.err != nil:
			out.poison(it)
		case it.review != nil:
			st := states[it.record]
			out.o.Reset()
			rv := reviewOf(it.review)
			res.ApplyReview(now, st, &rv, &out.o)
			out.collect(st, fmt.Sprintf("review@%s:%d", it.review.EntryID, it.review.Rev))
		case it.record == "":
			out.event(it.system, it.kind.String())
		default:
			// Decode again: the first pass kept only the record id, so decoding stays
			// allocation free and a batch never holds every event in memory.
			if err := w.decoders[it.system].Decode(message(it.msg), &ev); err != nil {
				return time.Time{}, fmt.Errorf("pipeline: a message decoded once failed the second time: %w", err)
			}
			if err := res.Canonicalize(it.system, &ev, &ch); err != nil {
				return time.Time{}, fmt.Errorf("pipeline: canonicalizing a decoded message: %w", err)
			}
			out.event(it.system, ev.Op.String())
			st := states[it.record]
			out.o.Reset()
			res.Resolve(now, st, &ch, &out.o)
			out.collect(st, it.system+"@"+ch.Position.String())
			out.timing(it.system, ev.TsMs, ch.TsUs)
		}
	}
	if out.err != nil {
		return time.Time{}, out.err
	}
	err = w.finish(ctx, out, l, batch)
	return out.produced, err
}

// scan is the first pass: it decodes each message to find its record, and classifies
// poison and messages without a change.
func (w *worker) scan(ctx context.Context, res *resolver.Resolver, batch []kafka.Message) ([]item, []string) {
	items := make([]item, len(batch))
	var records []string
	seen := map[string]bool{}
	var ev codecs.Event
	var ch resolver.Change
	for i := range batch {
		m := &batch[i]
		it := &items[i]
		it.msg, it.system = m, w.p.systems[m.Topic]
		switch {
		case m.Topic == w.p.ReviewTopic():
			if it.review, it.err = parseReview(m); it.err != nil {
				continue
			}
			it.record = it.review.Record
		default:
			if err := w.decoders[it.system].Decode(message(m), &ev); err != nil {
				it.err = err
				continue
			}
			it.kind = ev.Kind
			if ev.Kind != codecs.KindChange {
				continue
			}
			w.learnTypes(ctx, it.system)
			if err := res.Canonicalize(it.system, &ev, &ch); err != nil {
				it.err = err
				continue
			}
			it.record = ch.Record
		}
		if !seen[it.record] {
			seen[it.record] = true
			records = append(records, it.record)
		}
	}
	return items, records
}

// resolver is the resolver for the next batch: the live rules, widened by the
// clocks' uncertainties when configured, with the column types learned so far.
func (w *worker) resolver() *resolver.Resolver {
	res := w.p.opts.Rules.Resolver()
	if res.WidensByClockUncertainty() {
		res = res.Widened(w.p.clocks.uncertainties())
	}
	return res.WithColumnTypes(w.p.types.snapshot())
}

// learnTypes learns the column types of the system's message just decoded, and
// keeps them in the store when it can (a failure only costs a restart the types
// until the system's next event).
func (w *worker) learnTypes(ctx context.Context, system string) {
	w.columns = w.decoders[system].Columns(w.columns[:0])
	if len(w.columns) == 0 || !w.p.types.learn(system, w.columns) {
		return
	}
	w.p.log.Info("learned column types from the schema of a change event", zap.String("system", system), zap.Int("columns", len(w.columns)))
	if ts, ok := w.p.opts.Store.(TypeStore); ok {
		if err := ts.SaveColumnTypes(ctx, system, w.p.types.export(system)); err != nil {
			w.p.log.Warn("keeping learned column types", zap.String("system", system), zap.Error(err))
		}
	}
}

func message(m *kafka.Message) codecs.Message {
	return codecs.Message{Topic: m.Topic, Partition: int32(m.Partition), Offset: m.Offset, Key: m.Key, Value: m.Value}
}

// load reads the states of the records in one round trip; a record without state
// gets a new one.
func (w *worker) load(ctx context.Context, records []string) (loaded, error) {
	got, err := w.p.opts.Store.Get(ctx, w.fence.Partition, records)
	if err != nil {
		return loaded{}, fmt.Errorf("pipeline: reading record states: %w", err)
	}
	l := loaded{states: make(map[string]*resolver.State, len(records)), heldBefore: make(map[string][]string, len(records))}
	for i, r := range records {
		st := got[i]
		if st == nil {
			st = &resolver.State{Record: r}
		}
		l.states[r] = st
		l.heldBefore[r] = held(st)
	}
	return l, nil
}

// loaded are a batch's record states, and which systems held each record before.
type loaded struct {
	states     map[string]*resolver.State
	heldBefore map[string][]string
}

// held names the systems that hold the record, as they last showed it.
func held(st *resolver.State) []string {
	var out []string
	for i := range st.Systems {
		if ss := &st.Systems[i]; ss.Known && !ss.Deleted {
			out = append(out, ss.Name)
		}
	}
	return out
}

// finish makes the batch's effects durable in the order that makes a crash safe:
// apply events and poison messages, DLQ entries, states, offsets.
func (w *worker) finish(ctx context.Context, out *outputs, l loaded, batch []kafka.Message) error {
	if len(out.messages) > 0 {
		if err := w.p.writer.WriteMessages(ctx, out.messages...); err != nil {
			return fmt.Errorf("pipeline: producing %d messages: %w", len(out.messages), err)
		}
	}
	out.produced = time.Now()
	if len(out.dlq) > 0 {
		if err := w.p.opts.DLQ.Record(ctx, out.dlq); err != nil {
			return fmt.Errorf("pipeline: recording %d DLQ entries: %w", len(out.dlq), err)
		}
	}
	if err := w.p.opts.DLQ.Note(ctx, out.batchNote()); err != nil {
		return err
	}
	if err := w.save(ctx, out.res, out.now.UnixMilli(), l); err != nil {
		return err
	}
	if batch != nil {
		if err := w.commit(batch); err != nil {
			return fmt.Errorf("pipeline: committing offsets: %w", err)
		}
	}
	out.count()
	return nil
}

// save writes the states in one round trip, dropping tombstones past their retention
// and indexing when each record next has time-driven work.
func (w *worker) save(ctx context.Context, res *resolver.Resolver, nowMs int64, l loaded) error {
	writes := make([]state.Write, 0, len(l.states))
	records := make([]string, 0, len(l.states))
	for r := range l.states {
		records = append(records, r)
	}
	slices.Sort(records)
	systems := res.Systems()
	for _, r := range records {
		st := l.states[r]
		drop := res.Droppable(timeMs(nowMs), st)
		if drop && st.Version == 0 {
			continue // never stored: nothing to delete
		}
		writes = append(writes, state.Write{
			State: st, Delete: drop, DueMs: st.NextDeadlineMs(res),
			Systems: systems, Held: held(st), HeldBefore: l.heldBefore[r], DriftSinceMs: nowMs,
		})
	}
	if err := w.p.opts.Store.Put(ctx, w.fence, writes); err != nil {
		if errors.Is(err, state.ErrFenced) || errors.Is(err, state.ErrVersionConflict) {
			return err
		}
		return fmt.Errorf("pipeline: writing %d record states: %w", len(writes), err)
	}
	return nil
}

// expireDue does the time-driven work (apply timeouts, closing pairing windows) of
// records whose deadline has passed without a new event. The deadlines are indexed
// in the store, so a new owner of the partition picks them up after a restart.
func (w *worker) expireDue(ctx, gctx context.Context) bool {
	now := w.p.opts.Now()
	due, err := w.p.opts.Store.Due(context.WithoutCancel(ctx), w.fence.Partition, now.UnixMilli(), w.p.opts.BatchSize)
	if err != nil {
		w.log.Warn("reading due records; retrying at the next tick", zap.Error(err))
		return true
	}
	if len(due) == 0 {
		return true
	}
	err = w.retry(ctx, gctx, func(bctx context.Context) error {
		res := w.resolver()
		l, err := w.load(bctx, due)
		if err != nil {
			return err
		}
		states := l.states
		out := newOutputs(w, res, now)
		for _, r := range due {
			out.o.Reset()
			res.Expire(now, states[r], &out.o)
			out.collect(states[r], "expire@"+strconv.FormatInt(now.UnixMilli(), 10))
		}
		if out.err != nil {
			return out.err
		}
		return w.finish(bctx, out, l, nil)
	})
	if err != nil {
		w.log.Warn("expiring due records", zap.Error(err))
		return false
	}
	return true
}

func timeMs(ms int64) time.Time { return time.UnixMilli(ms) }

// parseReview reads a reviewer's decision from the review topic.
func parseReview(m *kafka.Message) (*dlq.Command, error) {
	var c dlq.Command
	if err := json.Unmarshal(m.Value, &c); err != nil {
		return nil, fmt.Errorf("%w: review topic: not a review command: %w", codecs.ErrPoison, err)
	}
	if c.EntryID == "" || c.Record == "" {
		return nil, fmt.Errorf("%w: review topic: a review command needs entry_id and record", codecs.ErrPoison)
	}
	return &c, nil
}

// reviewOf turns a review command into the resolver's Review.
func reviewOf(c *dlq.Command) resolver.Review {
	rv := resolver.Review{EntryID: c.EntryID, Rev: uint32(c.Rev), Delete: c.Delete, Release: c.Dismiss}
	for _, f := range slices.Sorted(maps.Keys(c.Values)) {
		v := []byte(c.Values[f])
		rv.Values = append(rv.Values, resolver.Value{Name: f, FP: resolver.Fingerprint(v), Value: v})
	}
	return rv
}
