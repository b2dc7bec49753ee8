package bench

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/valyala/fastjson"
	"go.uber.org/zap"

	"github.com/concord-sync/concord/internal/world"
	"github.com/concord-sync/concord/pipeline"
)

// billingApplyTopic is where concord's applies to billing go (the configuration's
// default apply topic, <name>.apply.<system>).
const billingApplyTopic = "bench.apply.billing"

// sink is the billing system's side of the sync as it really works: the JDBC sink
// connector writing concord's applies into billing's table, and the Debezium
// connector publishing the change each write commits, the echo, as internal/world
// models both. An echo thus exists only once concord has produced its apply, as in
// production; echoes pre-generated in the backlog could be read before the update
// they echo (the two input topics are read independently) and turn into conflicts
// and review entries whose number depended on how the readers interleaved.
type sink struct {
	mu       sync.Mutex
	table    *world.Table
	readers  []*pipeline.PartitionReader
	writer   *kafka.Writer
	consumed atomic.Int64 // applies read
	produced atomic.Int64 // change events handed to the writer (echoes and edits)
	echoed   atomic.Int64 // change events acknowledged
	noops    atomic.Int64 // applies that committed nothing (no echo)
	failed   atomic.Value // the first error, if any
	wg       sync.WaitGroup
	parts    int

	// A share of the applies (conflictRatio) meet a billing user's edit of f0 made
	// just before the sink writes them, 100 ms after now by billing's clock: within the
	// clock-skew tolerance of a live CRM edit, so a conflict concord sends to review;
	// a backlog's CRM edit, made before the run, is older than that, and the
	// conflict is decided by last-write-wins.
	conflictRatio float64
	rnd           *rand.Rand
	edits         int

	parser  fastjson.Parser   // under mu, as are the next three
	columns map[string]string // the column names read so far
	value   []byte
	encoded int // echoes checked against world's encoding (encode)
}

func newSink(broker string, partitions int, conflictRatio float64, seed uint64) (*sink, error) {
	cols := make([]string, fields)
	for f := range fields {
		cols[f] = "f" + strconv.Itoa(f)
	}
	s := &sink{
		table: world.NewTable(world.Spec{Name: "billing", Table: "customers", KeyColumn: "cust_id", Columns: cols}, true),
		parts: partitions, conflictRatio: conflictRatio, rnd: rand.New(rand.NewPCG(seed, 2)),
		columns: map[string]string{},
	}
	s.writer = &kafka.Writer{
		Addr: kafka.TCP(broker), Balancer: partitioned, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll, Async: true,
		Completion: func(msgs []kafka.Message, err error) {
			if err != nil {
				s.fail(fmt.Errorf("bench: producing echoes: %w", err))
				return
			}
			s.echoed.Add(int64(len(msgs)))
		},
	}
	for p := range partitions {
		r, err := pipeline.NewPartitionReader([]string{broker}, nil, p, map[string]int64{billingApplyTopic: -1}, 500, zap.NewNop())
		if err != nil {
			s.close()
			return nil, err
		}
		s.readers = append(s.readers, r)
	}
	return s, nil
}

func (s *sink) fail(err error) { s.failed.CompareAndSwap(nil, err) }

// err is the first failure of the sink, or nil.
func (s *sink) err() error {
	if err, ok := s.failed.Load().(error); ok {
		return err
	}
	return nil
}

// start writes every apply as it comes, until ctx ends: a fetch of applies at a
// time, as a Kafka Connect sink task is handed them, and their change events
// produced together.
func (s *sink) start(ctx context.Context) {
	for _, r := range s.readers {
		chunks := r.Start(ctx)
		s.wg.Go(func() {
			for {
				var chunk []pipeline.Fetched
				select {
				case chunk = <-chunks:
				case <-ctx.Done():
					return
				}
				var out []kafka.Message
				for i := range chunk {
					msgs, echo, err := s.write(&chunk[i].Message)
					if err != nil {
						s.fail(err)
						return
					}
					if !echo {
						s.noops.Add(1)
					}
					out = append(out, msgs...)
				}
				s.produced.Add(int64(len(out)))
				s.consumed.Add(int64(len(chunk)))
				if len(out) > 0 {
					if err := s.writer.WriteMessages(ctx, out...); err != nil && ctx.Err() == nil {
						s.fail(fmt.Errorf("bench: producing echoes: %w", err))
						return
					}
				}
			}
		})
	}
}

// write applies one apply message to the table and returns the change events that
// commits: a billing user's edit first, for a share of them, then the echo (none
// when the write commits nothing).
func (s *sink) write(m *kafka.Message) ([]kafka.Message, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.read(m)
	if err != nil {
		return nil, false, err
	}
	var eventID string
	for _, h := range m.Headers {
		if h.Key == "concord.event_id" {
			eventID = string(h.Value)
		}
	}
	now := time.Now().UnixMilli()
	var changes []*world.Change
	if _, setsF0 := a.Set["f0"]; setsF0 && s.table.Has(a.ID) && s.rnd.Float64() < s.conflictRatio {
		s.edits++
		edit := world.Row{"f0": strconv.Quote("billing-" + a.ID + "-" + strconv.Itoa(s.edits))}
		changes = append(changes, s.table.Upsert(a.ID, edit, now+100, world.Cause{Kind: world.User, Edit: s.edits}))
	}
	c, _ := s.table.Sink(&a, now, eventID)
	echo := c != nil
	if echo {
		changes = append(changes, c)
	}
	msgs := make([]kafka.Message, 0, len(changes))
	for _, c := range changes {
		value, err := s.encode(c, now)
		if err != nil {
			return nil, false, err
		}
		msgs = append(msgs, kafka.Message{Topic: billingTopic, Partition: recordPartition(a.ID, s.parts), Key: s.table.EncodeKey(a.ID), Value: value})
	}
	return msgs, echo, nil
}

// checked is how many applies are read both ways, the emulation of the JDBC sink
// and the bench's own decoding, and checked to agree; and how many echoes are
// encoded both ways, by internal/world and by appendEcho, and checked to be the
// same bytes.
const checked = 200

// read decodes an apply as the sink writes it. world's emulation of the JDBC sink
// and JsonConverter (Table.ReadApply) costs more CPU than concord itself spends on
// the event, on the cores the pipeline runs on; so the bench decodes the flat
// {"schema","payload"} value with fastjson, after checking on the first applies
// that both decodings agree.
func (s *sink) read(m *kafka.Message) (world.Apply, error) {
	k, err := s.parser.ParseBytes(m.Key)
	if err != nil {
		return world.Apply{}, fmt.Errorf("bench: the sink cannot read an apply's key: %w", err)
	}
	id := k.GetStringBytes("payload", "cust_id")
	if id == nil {
		return world.Apply{}, fmt.Errorf("bench: the sink cannot read an apply's key %s: no payload.cust_id string", m.Key)
	}
	a := world.Apply{ID: string(id), Delete: m.Value == nil}
	if !a.Delete {
		v, err := s.parser.ParseBytes(m.Value)
		if err != nil {
			return world.Apply{}, fmt.Errorf("bench: the sink cannot read an apply: %w", err)
		}
		payload, err := v.Get("payload").Object()
		if err != nil {
			return world.Apply{}, fmt.Errorf("bench: the sink cannot read an apply's payload: %w", err)
		}
		a.Set = make(world.Row, payload.Len())
		payload.Visit(func(col []byte, v *fastjson.Value) {
			if string(col) == "cust_id" {
				return
			}
			name, ok := s.columns[string(col)] // the same few names every time: made once
			if !ok {
				name = string(col)
				s.columns[name] = name
			}
			s.value = v.MarshalTo(s.value[:0])
			a.Set[name] = string(s.value)
		})
	}
	if s.consumed.Load() < checked {
		want, err := s.table.ReadApply(world.FormatFlat, m.Key, m.Value)
		if err != nil {
			return world.Apply{}, fmt.Errorf("bench: the sink cannot use an apply: %w", err)
		}
		if want.ID != a.ID || want.Delete != a.Delete || !maps.Equal(want.Set, a.Set) {
			return world.Apply{}, fmt.Errorf("bench: the sink read an apply as %+v, the JDBC sink's emulation as %+v", a, want)
		}
	}
	return a, nil
}

// encode is the Kafka value of a change the sink's write committed. For the same
// reason as read, it is written by appendEcho rather than by world's Table.EncodeValue
// (encoding/json over maps), and the first echoes are encoded both ways and must be
// the same bytes.
func (s *sink) encode(c *world.Change, processedMs int64) ([]byte, error) {
	fast, ok := appendEcho(nil, s.table.Spec(), c, processedMs)
	if ok && s.encoded >= checked {
		return fast, nil
	}
	want, err := s.table.EncodeValue(c, processedMs)
	if err != nil {
		return nil, err
	}
	if ok {
		s.encoded++
		if !bytes.Equal(fast, want) {
			return nil, fmt.Errorf("bench: the sink encoded an echo as\n%s\ninternal/world as\n%s", fast, want)
		}
	}
	return want, nil
}

// appendEcho appends what world's Table.EncodeValue writes for c of a table without
// Connect schemas: encoding/json of its envelope struct, the row images' columns in
// sorted order as encoding/json writes a map. It handles only ASCII strings that need
// no escaping and reports false for anything else, which the caller leaves to world.
func appendEcho(b []byte, spec world.Spec, c *world.Change, processedMs int64) ([]byte, bool) {
	if spec.Schemas {
		return b, false
	}
	ok := true
	str := func(v string) {
		for i := range len(v) {
			if ch := v[i]; ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\' {
				ok = false
			}
		}
		b = append(append(append(b, '"'), v...), '"')
	}
	image := func(r world.Row) {
		if r == nil {
			b = append(b, "null"...)
			return
		}
		cols := make([]string, 0, len(r)+1)
		for col := range r {
			cols = append(cols, col)
		}
		if _, ok := r[spec.KeyColumn]; !ok {
			cols = append(cols, spec.KeyColumn)
		}
		slices.Sort(cols)
		b = append(b, '{')
		for i, col := range cols {
			if i > 0 {
				b = append(b, ',')
			}
			str(col)
			b = append(b, ':')
			if col == spec.KeyColumn {
				str(c.ID)
			} else {
				b = append(b, r[col]...) // as sent: compact JSON, which the check on the first echoes holds to
			}
		}
		b = append(b, '}')
	}
	snapshot := "false"
	if c.Op == world.OpRead {
		snapshot = "true"
	}
	b = append(b, `{"before":`...)
	image(c.Before)
	b = append(b, `,"after":`...)
	image(c.After)
	b = append(b, `,"source":{"version":`...)
	str(world.DebeziumVersion)
	b = append(b, `,"connector":"postgresql","name":`...)
	str(spec.Name)
	b = strconv.AppendInt(append(b, `,"ts_ms":`...), c.ClockMs, 10)
	b = append(append(b, `,"snapshot":`...), `"`+snapshot+`"`...)
	b = append(b, `,"db":`...)
	str(spec.Name)
	b = append(b, `,"schema":`...)
	str(spec.Schema)
	b = append(b, `,"table":`...)
	str(spec.Table)
	b = strconv.AppendInt(append(b, `,"txId":`...), c.TxID, 10)
	b = strconv.AppendInt(append(b, `,"lsn":`...), c.LSN, 10)
	b = append(b, `},"op":`...)
	str(string(c.Op))
	b = strconv.AppendInt(append(b, `,"ts_ms":`...), processedMs, 10)
	b = append(b, `,"transaction":null}`...)
	return b, ok
}

// settled reports whether every apply produced so far has been read and its echo
// produced.
func (s *sink) settled(ctx context.Context, broker string) bool {
	if s.produced.Load() != s.echoed.Load() {
		return false
	}
	client := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 10 * time.Second}
	req := make([]kafka.OffsetRequest, s.parts)
	for p := range s.parts {
		req[p] = kafka.LastOffsetOf(p)
	}
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{billingApplyTopic: req}})
	if err != nil {
		return false
	}
	var total int64
	for _, p := range res.Topics[billingApplyTopic] {
		if p.Error != nil {
			return false
		}
		total += p.LastOffset
	}
	return total == s.consumed.Load()
}

func (s *sink) close() {
	for _, r := range s.readers {
		r.Close()
	}
	s.wg.Wait()
	_ = s.writer.Close()
}
