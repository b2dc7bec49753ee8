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

	"github.com/redis/go-redis/v9"
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

	// A change, decoded and canonicalized once by the scan: its values are copies in
	// the worker's arena, valid for the batch.
	ch   resolver.Change
	op   codecs.Op
	tsMs int64 // source.ts_ms
}

// decide runs the decisions of one batch and makes them durable: decode, read the
// states of its records in one round trip, resolve every change in order, record the
// DLQ entries, then write the states with the batch's outgoing messages and input
// positions (the outbox) in one atomic round trip. Nothing is produced before that
// write: see state.Outbox for why a batch is thus decided once. When the write's
// outcome is unknown (a timeout, a cut connection), the batch is returned with the
// error, for decideOnce to check.
func (w *worker) decide(ctx context.Context, batch []kafka.Message) (*decided, error) {
	start := time.Now()
	res := w.resolver()
	now := w.p.opts.Now()
	items, records := w.scan(ctx, res, batch)
	res = res.WithColumnTypes(w.p.types.snapshot()) // with what the scan learned
	l, err := w.load(ctx, records)
	if err != nil {
		return nil, err
	}
	states := l.states
	out := newOutputs(w, res, now)
	for i := range items {
		it := &items[i]
		switch {
		case it.err != nil:
			out.poison(it)
		case it.review != nil:
			st := states[it.record]
			out.o.Reset()
			rv := ReviewOf(it.review)
			res.ApplyReview(now, st, &rv, out.o)
			out.collect(st, cause{what: "review", at: it.review.EntryID + ":" + strconv.FormatInt(it.review.Rev, 10)})
		case it.record == "":
			out.event(it.system, it.kind.String())
		default:
			out.event(it.system, it.op.String())
			st := states[it.record]
			out.o.Reset()
			res.Resolve(now, st, &it.ch, out.o)
			out.collect(st, cause{what: it.system, pos: it.ch.Position})
			out.timing(it.system, it.tsMs, it.ch.TsUs)
		}
	}
	if out.err != nil {
		return nil, out.err
	}
	w.decideTime.Observe(time.Since(start).Seconds())
	return w.record(ctx, out, l, batch)
}

// scan is the first pass: it decodes and canonicalizes each message, keeping the
// change (its values copied into the worker's arena: the decoder's buffers are reused
// by the next message), and classifies poison and messages without a change.
func (w *worker) scan(ctx context.Context, res *resolver.Resolver, batch []kafka.Message) ([]item, []string) {
	items := make([]item, len(batch))
	w.arena.reset()
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
			if it.review, it.err = ParseReview(m.Value); it.err != nil {
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
			it.record, it.op, it.tsMs = ch.Record, ev.Op, ev.TsMs
			it.ch = w.arena.change(&ch)
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

// load returns the states of the records: from the worker's cache, else read from
// the store in one round trip; a record without state gets a new one.
func (w *worker) load(ctx context.Context, records []string) (loaded, error) {
	l := loaded{states: make(map[string]*resolver.State, len(records)), heldBefore: make(map[string][]string, len(records))}
	missing := w.missing[:0]
	for _, r := range records {
		if st := w.cache.states[r]; st != nil {
			l.states[r] = st
		} else {
			missing = append(missing, r)
		}
	}
	w.missing = missing
	if len(missing) > 0 {
		got, err := w.p.opts.Store.Get(ctx, w.fence.Partition, missing)
		if err != nil {
			return loaded{}, fmt.Errorf("pipeline: reading record states: %w", err)
		}
		for i, r := range missing {
			st := got[i]
			if st == nil {
				st = &resolver.State{Record: r}
			}
			l.states[r] = st
		}
	}
	names := w.heldNames[:0]
	for r, st := range l.states {
		start := len(names)
		names = appendHeld(names, st)
		l.heldBefore[r] = names[start:len(names):len(names)]
	}
	w.heldNames = names
	return l, nil
}

// stateCache keeps the states this worker last wrote, so that a record's next batch
// need not read and decode it again. It is exact while the worker's claim holds: the
// fence lets no one else write the partition's states (every Put of an older claim is
// refused), and the worker drops the whole cache whenever a batch fails, since its
// states were changed in place by decisions that may not have been written. A new
// claim starts a new worker with an empty cache. It holds at most max states,
// dropping arbitrary ones (Go's map order) when full.
type stateCache struct {
	states map[string]*resolver.State
	max    int
}

func (c *stateCache) clear() { clear(c.states) }

func (c *stateCache) put(st *resolver.State) {
	if c.max <= 0 {
		return
	}
	if c.states == nil {
		c.states = make(map[string]*resolver.State)
	}
	if _, ok := c.states[st.Record]; !ok && len(c.states) >= c.max {
		for r := range c.states {
			delete(c.states, r)
			if len(c.states) < c.max*3/4 {
				break
			}
		}
	}
	c.states[st.Record] = st
}

// loaded are a batch's record states, and which systems held each record before.
type loaded struct {
	states     map[string]*resolver.State
	heldBefore map[string][]string
}

// appendHeld appends the systems that hold the record, as they last showed it.
func appendHeld(dst []string, st *resolver.State) []string {
	for i := range st.Systems {
		if ss := &st.Systems[i]; ss.Known && !ss.Deleted {
			dst = append(dst, ss.Name)
		}
	}
	return dst
}

// decided is a batch whose decisions are durable (or whose write's outcome is not
// known yet): what it must produce, count and commit.
type decided struct {
	out   *outputs
	box   *state.Outbox
	batch []kafka.Message // nil for the time-driven work of expireDue
	// note is the batch's DLQ note when it still has to be recorded: it went with
	// the states' write and failed there while the states were written.
	note *dlq.Batch
}

// record makes a batch's effects durable in the order that makes a crash safe: DLQ
// entries (they live in other hash slots, and recording one twice is harmless), then
// the batch's note and the states with the outbox, the note ahead of the states in
// their round trip when the processor has notesWithStates. Nothing is produced yet.
func (w *worker) record(ctx context.Context, out *outputs, l loaded, batch []kafka.Message) (*decided, error) {
	start := time.Now()
	defer func() { w.writeTime.Observe(time.Since(start).Seconds()) }()
	if len(out.dlq) > 0 {
		if err := w.p.opts.DLQ.Record(ctx, out.dlq); err != nil {
			return nil, fmt.Errorf("pipeline: recording %d DLQ entries: %w", len(out.dlq), err)
		}
	}
	note := out.batchNote()
	if w.p.notes == nil {
		if err := w.p.opts.DLQ.Note(ctx, note); err != nil {
			return nil, err
		}
	}
	d := &decided{out: out, box: w.outbox(out.messages, batch), batch: batch}
	noteErr, err := w.save(ctx, out.res, out.now.UnixMilli(), l, d.box, note)
	if err != nil {
		if errors.Is(err, state.ErrFenced) || errors.Is(err, state.ErrVersionConflict) {
			return nil, err
		}
		return d, err // written or not: decideOnce finds out
	}
	if noteErr != nil {
		w.log.Warn("noting the batch with its states failed; noting it again before producing", zap.Error(noteErr))
		d.note = &note
	}
	w.decided(d.box)
	return d, nil
}

// outbox is the outbox of a batch producing msgs: the next number, and the input
// positions after the batch.
func (w *worker) outbox(msgs []kafka.Message, batch []kafka.Message) *state.Outbox {
	box := &state.Outbox{Seq: w.seq + 1, Offsets: maps.Clone(w.positions)}
	if box.Offsets == nil {
		box.Offsets = map[string]int64{}
	}
	for i := range batch {
		if next := batch[i].Offset + 1; next > box.Offsets[batch[i].Topic] {
			box.Offsets[batch[i].Topic] = next
		}
	}
	if len(msgs) > 0 {
		box.Messages = make([]state.Message, len(msgs))
		for i := range msgs {
			box.Messages[i] = stateMessage(&msgs[i])
		}
	}
	return box
}

// decided moves the worker past a batch whose outbox was written.
func (w *worker) decided(box *state.Outbox) {
	w.seq, w.positions = box.Seq, box.Offsets
	w.sent = nil // the write replaced the outbox of the batch before
}

// decideOnce returns the batch decided by decide, retrying failures of Kafka and
// Redis, and deciding again only a batch whose write is known not to have happened.
func (w *worker) decideOnce(ctx, gctx context.Context, decide func(context.Context) (*decided, error)) (*decided, error) {
	var d, unsure *decided
	err := w.retry(ctx, gctx, func(bctx context.Context) error {
		if unsure != nil {
			// Claim the partition again before looking: a write whose reply was lost
			// may still be on its way (sent, not yet run by the server), and must not
			// land after the batch is decided again. The new epoch fences it; the
			// claim returns the outbox as it is then, for good.
			c, err := w.p.opts.Store.Claim(bctx, state.Fence{Partition: w.fence.Partition, Generation: w.fence.Generation}, "")
			if err != nil {
				return err
			}
			// The number alone could be another owner's next batch, written after this
			// worker lost the partition; the epoch names the claim that wrote it.
			landed := c.Outbox.Seq == unsure.box.Seq && c.Outbox.Epoch == w.fence.Epoch
			w.fence = c.Fence
			if landed {
				w.decided(unsure.box)
				d = unsure
				return nil
			}
			unsure = nil // not written, and now never: decide again
		}
		var err error
		if d, err = decide(bctx); err != nil {
			w.cache.clear() // its states may hold decisions not written
			unsure, d = d, nil
		}
		return err
	})
	return d, err
}

// deliver produces a decided batch's messages, hands its input positions to the
// committer (commit.go) and counts it. The next owner of the partition produces the
// outbox still in the store again (the same bytes: duplicates by event id) and skips
// the inputs of the batch it belongs to, whatever the group had committed.
func (w *worker) deliver(ctx context.Context, d *decided) error {
	if d.note != nil {
		if err := w.p.opts.DLQ.Note(ctx, *d.note); err != nil {
			return err
		}
		d.note = nil
	}
	out := d.out
	if len(out.messages) > 0 {
		start := time.Now()
		err := w.p.producer.Produce(ctx, out.messages)
		w.produceTime.Observe(time.Since(start).Seconds())
		if err != nil {
			return fmt.Errorf("pipeline: producing %d messages: %w", len(out.messages), err)
		}
	}
	out.produced = time.Now()
	if d.batch != nil {
		w.commits.set(d.box.Offsets)
	}
	if len(d.box.Messages) > 0 {
		w.sent = d.box
	}
	out.count()
	return nil
}

// run decides a batch once and delivers it, retrying until done; it returns false
// when the partition must be given up.
func (w *worker) runBatch(ctx, gctx context.Context, decide func(context.Context) (*decided, error)) (*decided, bool) {
	d, err := w.decideOnce(ctx, gctx, decide)
	if err != nil {
		return nil, false
	}
	if err := w.retry(ctx, gctx, func(bctx context.Context) error { return w.deliver(bctx, d) }); err != nil {
		return nil, false
	}
	return d, true
}

// commitOffsets are the positions of the partition's input topics, for CommitOffsets.
func (w *worker) commitOffsets(positions map[string]int64) map[string]map[int]int64 {
	next := make(map[string]map[int]int64, len(positions))
	for t, off := range positions {
		if off >= 0 {
			next[t] = map[int]int64{w.part: off}
		}
	}
	return next
}

// stateMessage and kafkaMessage convert between a produced message and its copy in
// the outbox.
func stateMessage(m *kafka.Message) state.Message {
	sm := state.Message{Topic: m.Topic, Partition: int32(m.Partition), Key: m.Key, Value: m.Value}
	if len(m.Headers) > 0 {
		sm.Headers = make([]state.Header, len(m.Headers))
		for i, h := range m.Headers {
			sm.Headers[i] = state.Header{Key: h.Key, Value: h.Value}
		}
	}
	return sm
}

func kafkaMessage(m *state.Message) kafka.Message {
	km := kafka.Message{Topic: m.Topic, Partition: int(m.Partition), Key: m.Key, Value: m.Value}
	if len(m.Headers) > 0 {
		km.Headers = make([]kafka.Header, len(m.Headers))
		for i, h := range m.Headers {
			km.Headers[i] = kafka.Header{Key: h.Key, Value: h.Value}
		}
	}
	return km
}

// save writes the states and the outbox in one round trip, dropping tombstones past
// their retention and indexing when each record next has time-driven work. With
// p.notes, the batch's note goes ahead in the same round trip; noteErr is its
// failure when the states were written all the same.
func (w *worker) save(ctx context.Context, res *resolver.Resolver, nowMs int64, l loaded, box *state.Outbox, note dlq.Batch) (noteErr, err error) {
	writes := make([]state.Write, 0, len(l.states))
	records := make([]string, 0, len(l.states))
	for r := range l.states {
		records = append(records, r)
	}
	slices.Sort(records)
	systems := res.Systems()
	names := w.heldNames // after load's: heldBefore's stay as they are
	for _, r := range records {
		st := l.states[r]
		drop := res.Droppable(timeMs(nowMs), st)
		if drop && st.Version == 0 {
			continue // never stored: nothing to delete
		}
		start := len(names)
		names = appendHeld(names, st)
		writes = append(writes, state.Write{
			State: st, Delete: drop, DueMs: st.NextDeadlineMs(res),
			Systems: systems, Held: names[start:len(names):len(names)], HeldBefore: l.heldBefore[r], DriftSinceMs: nowMs,
		})
	}
	if w.p.notes != nil && note.Noted() {
		noteErr, err = w.p.notes.states.PutAfter(ctx, w.fence, writes, box, func(pipe redis.Pipeliner) error {
			return w.p.notes.dlq.QueueNote(ctx, pipe, note)
		})
	} else {
		err = w.p.opts.Store.Put(ctx, w.fence, writes, box)
	}
	if err != nil {
		if errors.Is(err, state.ErrFenced) || errors.Is(err, state.ErrVersionConflict) {
			return nil, err
		}
		return nil, fmt.Errorf("pipeline: writing %d record states: %w", len(writes), err)
	}
	for r, st := range l.states {
		if st.Version == 0 { // deleted, or a tombstone never stored
			delete(w.cache.states, r)
		} else {
			w.cache.put(st)
		}
	}
	return noteErr, nil
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
	_, ok := w.runBatch(ctx, gctx, func(bctx context.Context) (*decided, error) {
		res := w.resolver()
		l, err := w.load(bctx, due)
		if err != nil {
			return nil, err
		}
		states := l.states
		out := newOutputs(w, res, now)
		c := cause{what: "expire", at: strconv.FormatInt(now.UnixMilli(), 10)}
		for _, r := range due {
			out.o.Reset()
			res.Expire(now, states[r], out.o)
			out.collect(states[r], c)
		}
		if out.err != nil {
			return nil, out.err
		}
		return w.record(bctx, out, l, nil)
	})
	if !ok {
		w.log.Warn("expiring due records: partition given up")
	}
	return ok
}

func timeMs(ms int64) time.Time { return time.UnixMilli(ms) }

// ParseReview reads a reviewer's decision from a message value of the review topic.
func ParseReview(value []byte) (*dlq.Command, error) {
	var c dlq.Command
	if err := json.Unmarshal(value, &c); err != nil {
		return nil, fmt.Errorf("%w: review topic: not a review command: %w", codecs.ErrPoison, err)
	}
	if c.EntryID == "" || c.Record == "" {
		return nil, fmt.Errorf("%w: review topic: a review command needs entry_id and record", codecs.ErrPoison)
	}
	return &c, nil
}

// ReviewOf turns a review command into the resolver's Review.
func ReviewOf(c *dlq.Command) resolver.Review {
	rv := resolver.Review{EntryID: c.EntryID, Rev: uint32(c.Rev), Delete: c.Delete, Release: c.Dismiss}
	for _, f := range slices.Sorted(maps.Keys(c.Values)) {
		v := []byte(c.Values[f])
		rv.Values = append(rv.Values, resolver.Value{Name: f, FP: resolver.Fingerprint(v), Value: v})
	}
	return rv
}

// arena holds copies of a batch's changes: their values and value bytes, in slices
// reused from batch to batch, so that keeping every change of a batch costs no
// allocation once the slices have grown to a batch's size. A slice that grows leaves
// the earlier copies in its old array, unchanged.
type arena struct {
	vals []resolver.Value
	buf  []byte
}

func (a *arena) reset() { a.vals, a.buf = a.vals[:0], a.buf[:0] }

// change returns a copy of ch whose values live in the arena.
func (a *arena) change(ch *resolver.Change) resolver.Change {
	c := *ch
	c.Key, c.After, c.Before = a.values(ch.Key), a.values(ch.After), a.values(ch.Before)
	if ch.Unmapped != nil {
		c.Unmapped = slices.Clone(ch.Unmapped)
	}
	return c
}

func (a *arena) values(vs []resolver.Value) []resolver.Value {
	if vs == nil {
		return nil
	}
	start := len(a.vals)
	for _, v := range vs {
		if v.Value != nil {
			at := len(a.buf)
			a.buf = append(a.buf, v.Value...)
			v.Value = a.buf[at:len(a.buf):len(a.buf)]
		}
		a.vals = append(a.vals, v)
	}
	return a.vals[start:len(a.vals):len(a.vals)]
}
