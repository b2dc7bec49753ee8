package replay

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/concord-sync/concord/codecs"
	"github.com/concord-sync/concord/config"
	"github.com/concord-sync/concord/pipeline"
	"github.com/concord-sync/concord/pipeline/state"
	"github.com/concord-sync/concord/resolver"
)

// maxLine bounds one input line (a Kafka message is at most a few MB).
const maxLine = 16 << 20

// Replayer holds the resolver and per-record state of one replay.
type Replayer struct {
	cfg      *config.Config
	res      *resolver.Resolver
	decoders map[string]*codecs.Decoder
	states   map[string]*resolver.State
	nowMs    int64
	ev       codecs.Event
	ch       resolver.Change
	out      resolver.Output
	enc      *json.Encoder

	// Messages makes the replay print, instead of decisions, the Kafka messages
	// concord would produce (see MessageLine), built by the pipeline's own encoders.
	Messages bool
	// Collect, when set, is given every decision (and, for an apply, the message the
	// pipeline would produce) instead of printing it: what --diff compares.
	Collect func(d *resolver.Decision, apply *kafka.Message)

	// Store, when set, keeps the record states instead of memory, per partition
	// (replay --state redis, for histories larger than memory): each event's state
	// is read before and written after it. Use a namespace of its own, never the
	// running pipeline's.
	Store   state.Store
	fences  map[int32]state.Fence
	records int // records seen, for the progress line
}

// New returns a replayer for a validated configuration, writing decisions to w.
func New(cfg *config.Config, w io.Writer) (*Replayer, error) {
	res, err := resolver.New(cfg)
	if err != nil {
		return nil, err
	}
	r := &Replayer{
		cfg: cfg, res: res, decoders: map[string]*codecs.Decoder{},
		states: map[string]*resolver.State{}, enc: json.NewEncoder(w),
	}
	r.enc.SetEscapeHTML(false)
	for name, s := range cfg.Systems {
		r.decoders[name] = codecs.NewDecoder(codecs.Options{Unwrapped: s.Envelope == config.EnvelopeUnwrapped, MaxMessageBytes: cfg.Kafka.MaxMessageBytes})
	}
	return r, nil
}

// Run replays every line of in, then closes the pairing windows still open. A line
// that is not a replay line stops the run with an error naming the line; a message
// that does not decode is a poison decision, as in the pipeline.
func (r *Replayer) Run(in io.Reader) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for n := 1; sc.Scan(); n++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		if err := r.Line(sc.Bytes(), int64(n-1)); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading input: %w", err)
	}
	return r.Finish()
}

// Line replays one input line; offset is used when the line gives none.
func (r *Replayer) Line(line []byte, defaultOffset int64) error {
	rl, err := codecs.ParseReplayLine(line)
	if err != nil {
		return err
	}
	if _, ok := r.decoders[rl.System]; !ok {
		return fmt.Errorf("system %q is not in the configuration (%v)", rl.System, r.cfg.SystemNames())
	}
	if !rl.HasOffset {
		rl.Offset = defaultOffset
	}
	msg := codecs.Message{Topic: r.cfg.Systems[rl.System].Topic, Partition: rl.Partition, Offset: rl.Offset, Key: rl.Key, Value: rl.Value}
	return r.message(rl.System, msg)
}

// Message replays one Kafka message of a system.
func (r *Replayer) Message(system string, msg codecs.Message) error { return r.message(system, msg) }

func (r *Replayer) message(system string, msg codecs.Message) error {
	if err := r.decoders[system].Decode(msg, &r.ev); err != nil {
		return r.poison(system, msg, err)
	}
	if r.ev.Kind != codecs.KindChange {
		if r.Messages || r.Collect != nil {
			return nil // the pipeline produces nothing for it
		}
		return r.emit(decision{Kind: "ignored", Record: r.recordOfKey(system, msg.Key), System: system, Reason: r.ev.Kind.String()})
	}
	if err := r.res.Canonicalize(system, &r.ev, &r.ch); err != nil {
		if errors.Is(err, resolver.ErrEvent) {
			return r.poison(system, msg, err)
		}
		return err
	}
	// Replay has no wall clock: time is the latest source timestamp seen, so it
	// never runs backwards and the output does not depend on when replay runs.
	r.nowMs = max(r.nowMs, r.ev.TsMs)
	st, err := r.load(msg.Partition, r.ch.Record)
	if err != nil {
		return err
	}
	r.out.Reset()
	r.res.Resolve(time.UnixMilli(r.nowMs), st, &r.ch, &r.out)
	if err := r.emitAll(st); err != nil {
		return err
	}
	return r.save(msg.Partition, st)
}

func (r *Replayer) poison(system string, msg codecs.Message, err error) error {
	if r.Collect != nil {
		r.Collect(&resolver.Decision{Kind: resolver.KindPoison, System: system, Reason: err.Error()}, nil)
		return nil
	}
	if r.Messages {
		m := kafka.Message{Topic: msg.Topic, Partition: int(msg.Partition), Offset: msg.Offset, Key: msg.Key, Value: msg.Value}
		return r.emitMessage(pipeline.PoisonMessage(r.cfg, system, &m, err))
	}
	return r.emit(decision{Kind: "poison", Record: r.recordOfKey(system, msg.Key), System: system, Error: err.Error()})
}

// recordOfKey names the record of a message without a usable row, when its key
// decodes; "" otherwise (a truncate or a heartbeat has no record).
func (r *Replayer) recordOfKey(system string, key []byte) string {
	if key == nil {
		return ""
	}
	row, err := r.decoders[system].DecodeKey(key)
	if err != nil {
		return ""
	}
	record, err := r.res.RecordOfKey(system, row)
	if err != nil {
		return ""
	}
	return record
}

// load returns a record's state, a new one for a record not seen yet.
func (r *Replayer) load(partition int32, record string) (*resolver.State, error) {
	if r.Store == nil {
		st := r.states[record]
		if st == nil {
			st = &resolver.State{Record: record}
			r.states[record] = st
			r.records++
		}
		return st, nil
	}
	got, err := r.Store.Get(context.Background(), partition, []string{record})
	if err != nil {
		return nil, fmt.Errorf("replay: reading the state of %s: %w", record, err)
	}
	if got[0] == nil {
		r.records++
		return &resolver.State{Record: record}, nil
	}
	return got[0], nil
}

// save writes a state back to the Store (memory states are updated in place).
func (r *Replayer) save(partition int32, st *resolver.State) error {
	if r.Store == nil {
		return nil
	}
	ctx := context.Background()
	f, ok := r.fences[partition]
	if !ok {
		c, err := r.Store.Claim(ctx, state.Fence{Partition: partition, Generation: 1}, "")
		if err != nil {
			return fmt.Errorf("replay: claiming partition %d of the replay's state: %w", partition, err)
		}
		if r.fences == nil {
			r.fences = map[int32]state.Fence{}
		}
		f, r.fences[partition] = c.Fence, c.Fence
	}
	w := state.Write{State: st, DueMs: st.NextDeadlineMs(r.res)}
	if err := r.Store.Put(ctx, f, []state.Write{w}, nil); err != nil {
		return fmt.Errorf("replay: writing the state of %s: %w", st.Record, err)
	}
	return nil
}

// Finish closes every pairing window still open, in record order.
func (r *Replayer) Finish() error {
	window := r.cfg.Resolution.PairWindow.Duration
	if window <= 0 {
		return nil
	}
	if r.Store != nil {
		return r.finishStored(window)
	}
	records := make([]string, 0, len(r.states))
	for id := range r.states {
		records = append(records, id)
	}
	slices.Sort(records)
	end := time.UnixMilli(r.nowMs).Add(window)
	for _, id := range records {
		r.out.Reset()
		st := r.states[id]
		if len(st.Pending) == 0 {
			continue
		}
		r.res.Expire(end, st, &r.out)
		if err := r.emitAll(st); err != nil {
			return err
		}
	}
	return nil
}

// finishStored is Finish over the Store: the records of each partition with a
// deadline (the store's index), those with a pairing window open.
func (r *Replayer) finishStored(window time.Duration) error {
	end := time.UnixMilli(r.nowMs).Add(window)
	parts := slices.Sorted(maps.Keys(r.fences))
	for _, p := range parts {
		due, err := r.Store.Due(context.Background(), p, math.MaxInt64, 1<<30)
		if err != nil {
			return err
		}
		slices.Sort(due)
		for _, id := range due {
			st, err := r.load(p, id)
			if err != nil {
				return err
			}
			if len(st.Pending) == 0 {
				continue
			}
			r.out.Reset()
			r.res.Expire(end, st, &r.out)
			if err := r.emitAll(st); err != nil {
				return err
			}
			if err := r.save(p, st); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *Replayer) emitAll(st *resolver.State) error {
	now := time.UnixMilli(r.nowMs)
	for i := range r.out.Decisions {
		d := &r.out.Decisions[i]
		if r.Collect != nil {
			var apply *kafka.Message
			if d.Kind == resolver.KindApply {
				m, err := pipeline.ApplyMessage(r.cfg, r.res, st.Key, d, now)
				if err != nil {
					return err
				}
				apply = &m
			}
			r.Collect(d, apply)
			continue
		}
		if !r.Messages {
			if err := r.emit(r.render(d)); err != nil {
				return err
			}
			continue
		}
		// As the pipeline's batch does: each decision's apply, then its audit entry.
		if d.Kind == resolver.KindApply {
			m, err := pipeline.ApplyMessage(r.cfg, r.res, st.Key, d, now)
			if err != nil {
				return err
			}
			if err := r.emitMessage(m); err != nil {
				return err
			}
		}
		if a, ok := pipeline.AuditEntry(d, now); ok {
			m, err := pipeline.AuditMessage(r.cfg, &a)
			if err != nil {
				return err
			}
			if err := r.emitMessage(m); err != nil {
				return err
			}
		}
	}
	return nil
}

// MessageLine is one Kafka message in the output of a replay with Messages: key and
// value as the JSON their bytes hold (bytes that are not JSON, such as most audit
// record keys, as a JSON string of them; a tombstone's value as null).
type MessageLine struct {
	Topic   string            `json:"topic"`
	Key     json.RawMessage   `json:"key"`
	Value   json.RawMessage   `json:"value"`
	Headers map[string]string `json:"headers,omitempty"`
}

func (r *Replayer) emitMessage(m kafka.Message) error {
	line := MessageLine{Topic: m.Topic, Key: jsonOf(m.Key), Value: jsonOf(m.Value)}
	for _, h := range m.Headers {
		if line.Headers == nil {
			line.Headers = make(map[string]string, len(m.Headers))
		}
		line.Headers[h.Key] = string(h.Value)
	}
	return r.emit(line)
}

func jsonOf(b []byte) json.RawMessage {
	if b == nil {
		return json.RawMessage("null")
	}
	if json.Valid(b) {
		return b
	}
	s, _ := json.Marshal(string(b)) // cannot fail for a string
	return s
}

func (r *Replayer) emit(line any) error {
	if err := r.enc.Encode(line); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	return nil
}
