package pipeline

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/concord-sync/concord/codecs"
	"github.com/concord-sync/concord/config"
	"github.com/concord-sync/concord/dlq"
	"github.com/concord-sync/concord/resolver"
)

// Headers of apply events and poison messages (DESIGN.md sections 2 and 4).
const (
	HeaderOrigin    = "concord.origin"
	HeaderEventID   = "concord.event_id"
	HeaderRule      = "concord.rule"
	HeaderReason    = "concord.reason"
	HeaderTopic     = "concord.topic"
	HeaderPartition = "concord.partition"
	HeaderOffset    = "concord.offset"
	HeaderSystem    = "concord.system"
	// On a poison message too large to copy: what was left out, and the value's size.
	HeaderOmitted    = "concord.omitted"
	HeaderValueBytes = "concord.value_bytes"
)

// outputs collects what a batch must produce and record. Everything in it is owned
// memory: decisions borrow from decoder buffers, so they are encoded as they come.
type outputs struct {
	w        *worker
	res      *resolver.Resolver
	now      time.Time
	o        *resolver.Output // the worker's, reused from batch to batch
	messages []kafka.Message
	dlq      []dlq.Change
	audit    []dlq.AuditEntry
	counts   []resolver.Decision // kinds and rules only, counted once the batch commits
	events   [][2]string         // system, op of every message, counted once the batch commits
	poisoned []string            // systems of poison messages
	lags     []lagSample         // applies carrying a change of known commit time
	echoes   []echoSample        // round trips, for the clock offsets
	produced time.Time           // when the batch's messages were acknowledged
	buf      []byte              // the bytes of the batch's applies (see appendApplyMessage)
	headers  []kafka.Header      // and their headers
	scratch  codecs.Apply        // the encoder's input, reused
	err      error               // the first apply that could not be encoded: fails the batch
}

type lagSample struct {
	from, to string
	commitMs int64
}

type echoSample struct {
	system       string
	tsUs, sentMs int64
}

// timing notes, for the change just resolved, its applies' sync lag (from the
// change's source commit time) and its echoes' round trips.
func (out *outputs) timing(system string, commitMs, tsUs int64) {
	for i := range out.o.Decisions {
		d := &out.o.Decisions[i]
		switch {
		case d.Kind == resolver.KindApply && d.Origin == system && commitMs > 0:
			out.lags = append(out.lags, lagSample{from: system, to: d.Target, commitMs: commitMs})
		case d.Kind == resolver.KindEcho:
			out.echoes = append(out.echoes, echoSample{system: system, tsUs: tsUs, sentMs: d.SentMs})
		}
	}
}

func (out *outputs) event(system, op string) { out.events = append(out.events, [2]string{system, op}) }

func newOutputs(w *worker, res *resolver.Resolver, now time.Time) *outputs {
	return &outputs{w: w, res: res, now: now, o: &w.output}
}

// cause names the event behind a batch's decisions: system@position for a change,
// review@entry:rev, expire@ms. Its text is only built for a DLQ entry.
type cause struct {
	what string          // the system, "review" or "expire"
	pos  codecs.Position // a change's position, when at is empty
	at   string
}

func (c cause) String() string {
	if c.at != "" {
		return c.what + "@" + c.at
	}
	return c.what + "@" + c.pos.String()
}

// collect turns the decisions in o into messages and DLQ changes.
func (out *outputs) collect(st *resolver.State, c cause) {
	for i := range out.o.Decisions {
		d := &out.o.Decisions[i]
		switch d.Kind {
		case resolver.KindApply:
			m, err := out.apply(st, d)
			if err != nil {
				out.err = cmp.Or(out.err, err)
				continue
			}
			out.messages = append(out.messages, m)
		case resolver.KindDLQ:
			out.dlq = append(out.dlq, out.dlqChange(d, c.String()))
		case resolver.KindSkip:
			if d.Reason == resolver.ReasonUnmapped {
				out.w.p.noteUnmapped(d.System, d.Field)
			}
		}
		out.auditDecision(d)
		out.counts = append(out.counts, resolver.Decision{Kind: d.Kind, Rule: d.Rule, Reason: d.Reason, System: d.System, Field: d.Field})
	}
}

// apply encodes an apply decision in the target system's format and column names,
// into the batch's buffers.
func (out *outputs) apply(st *resolver.State, d *resolver.Decision) (kafka.Message, error) {
	var m kafka.Message
	var err error
	m, out.buf, out.headers, err = appendApplyMessage(out.buf, out.headers, &out.scratch, out.w.p.cfg, out.res, st.Key, d, out.now)
	return m, err
}

// ApplyMessage is the Kafka message of an apply decision: keyed by the target's key
// columns (key holds the record's canonical key values), the value in the target's
// format and column names, the origin marker column when the target has one, and the
// concord.* headers. now is the apply event's ts_ms.
//
// Each column is typed as the target's column (res.ColumnType); the resolver never
// decides a value its column cannot hold, so an error (wrapping
// codecs.ErrTypeMismatch) means a value got past that check.
func ApplyMessage(cfg *config.Config, res *resolver.Resolver, key []resolver.Value, d *resolver.Decision, now time.Time) (kafka.Message, error) {
	m, _, _, err := appendApplyMessage(nil, nil, new(codecs.Apply), cfg, res, key, d, now)
	return m, err
}

// appendApplyMessage is ApplyMessage with the message's bytes appended to buf and
// its headers to headers (a batch's, so that its applies cost a few allocations in
// all rather than several each), and scratch for the encoder's input. The message's
// slices are clipped: appending to one never reaches the next.
func appendApplyMessage(buf []byte, headers []kafka.Header, scratch *codecs.Apply, cfg *config.Config, res *resolver.Resolver,
	key []resolver.Value, d *resolver.Decision, now time.Time,
) (kafka.Message, []byte, []kafka.Header, error) {
	sys := cfg.Systems[d.Target]
	enc := codecs.ApplyEncoder{Format: sys.Apply.Format, Schema: sys.Apply.WithSchema(), Name: cfg.Name, Table: sys.Topic}
	a := scratch
	*a = codecs.Apply{Delete: d.Delete, TsMs: now.UnixMilli(), Key: a.Key[:0], Fields: a.Fields[:0]}
	column := func(name string, value []byte) codecs.TypedColumn {
		return codecs.TypedColumn{Name: name, Value: value, Type: res.ColumnType(d.Target, name)}
	}
	for _, k := range key {
		a.Key = append(a.Key, column(res.Column(d.Target, k.Name), k.Value))
	}
	for _, f := range d.Fields {
		a.Fields = append(a.Fields, column(res.Column(d.Target, f.Name), f.Value))
	}
	if sys.OriginMarker != "" && !d.Delete {
		start := len(buf)
		buf = strconv.AppendQuote(buf, d.EventID)
		a.Fields = append(a.Fields, column(sys.OriginMarker, clip(buf, start)))
	}
	start := len(buf)
	buf, ok, err := enc.AppendValue(buf, a)
	if err != nil {
		return kafka.Message{}, buf[:start], headers, fmt.Errorf("pipeline: apply %s to %s: %w", d.EventID, d.Target, err)
	}
	value := clip(buf, start)
	if !ok {
		value = nil // a flat delete is a tombstone
	}
	start = len(buf)
	if buf, err = enc.AppendKey(buf, a); err != nil {
		return kafka.Message{}, buf[:start], headers, fmt.Errorf("pipeline: key of apply %s to %s: %w", d.EventID, d.Target, err)
	}
	k := clip(buf, start)
	hstart := len(headers)
	for _, h := range [...]struct{ key, value string }{
		{HeaderOrigin, d.Origin}, {HeaderEventID, d.EventID}, {HeaderRule, string(d.Rule)}, {HeaderReason, d.Reason},
	} {
		start := len(buf)
		buf = append(buf, h.value...)
		headers = append(headers, kafka.Header{Key: h.key, Value: clip(buf, start)})
	}
	return kafka.Message{Topic: sys.Apply.Topic, Key: k, Value: value, Headers: headers[hstart:len(headers):len(headers)]}, buf, headers, nil
}

// clip is buf from start, with no room to append into what follows.
func clip(buf []byte, start int) []byte { return buf[start:len(buf):len(buf)] }

// auditDecision adds an automatic decision's rule to the audit trail (see AuditEntry).
func (out *outputs) auditDecision(d *resolver.Decision) {
	a, ok := AuditEntry(d, out.now)
	if !ok {
		return
	}
	out.audit = append(out.audit, a)
	// The slice's copy, not &a: a pointer to a would move it to the heap for every
	// decision, audited or not.
	if m, err := AuditMessage(out.w.p.cfg, &out.audit[len(out.audit)-1]); err == nil {
		out.messages = append(out.messages, m)
	}
}

// AuditEntry is the audit-trail entry of a decision, when it is audited: conflicts
// decided by rule, entries sent to review, changes skipped for authority, a sink's
// rewrite of an apply not taken for the system's change, and agreed values repaired
// over a stale write: every decision that sets a system's write aside. (Plain
// syncs, echoes and duplicates are counted in the metrics, not audited one by one;
// unmapped fields are logged once and counted.)
func AuditEntry(d *resolver.Decision, now time.Time) (dlq.AuditEntry, bool) {
	a := dlq.AuditEntry{At: now, Record: d.Record, System: d.System, Rule: string(d.Rule), Reason: d.Reason}
	switch {
	case d.Kind == resolver.KindConflict:
		a.Kind, a.Fields, a.Winner = "conflict", d.ConflictFields, d.Winner
		if d.Loser != "" {
			a.Losers = []string{d.Loser}
		}
	case d.Kind == resolver.KindDLQ && isConflict(d.Reason):
		a.Kind, a.Fields, a.EntryID = "dlq", d.ConflictFields, d.EntryID
	case d.Kind == resolver.KindSkip && d.Reason == resolver.ReasonNotAuthoritative:
		a.Kind, a.Fields = "skip", []string{d.Field}
	case d.Kind == resolver.KindDuplicate && d.Reason == resolver.ReasonRedelivery:
		// A sink wrote an apply again: the write is not the system's change.
		a.Kind, a.Reason = "redelivery", "the sink wrote apply "+d.EventID+" again; not taken for "+d.System+"'s change"
	case d.Kind == resolver.KindApply && d.Rule == resolver.RuleRepair:
		// The agreed values go back over a stale write (a rewrite proven by the marker).
		a.Kind, a.System, a.Winner = "repair", d.Target, d.Origin
		for _, f := range d.Fields {
			a.Fields = append(a.Fields, f.Name)
		}
	default:
		return a, false
	}
	return a, true
}

// AuditMessage is the message of an audit entry on the audit topic, keyed by record.
func AuditMessage(cfg *config.Config, a *dlq.AuditEntry) (kafka.Message, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return kafka.Message{}, err
	}
	return kafka.Message{Topic: AuditTopic(cfg), Key: []byte(a.Record), Value: b}, nil
}

func (out *outputs) dlqChange(d *resolver.Decision, cause string) dlq.Change {
	if d.Reason == resolver.ReasonApplyUnconfirmed {
		cause = "unconfirmed@" + d.EventID
	}
	c := dlq.Change{
		EntryID: d.EntryID, Record: d.Record, Reason: d.Reason, Fields: d.ConflictFields,
		Cause: cause, Target: d.Target, EventID: d.EventID, At: out.now, Partition: out.w.fence.Partition,
	}
	for _, v := range d.Versions {
		c.Versions = append(c.Versions, dlq.Version{System: v.System, TsUs: v.TsUs, Deleted: v.Deleted, Values: values(v.Fields)})
	}
	if len(d.Base) > 0 {
		c.Base = values(d.Base)
	}
	return c
}

// values copies canonical values into a map (they borrow decoder memory).
func values(vs []resolver.Value) map[string]json.RawMessage {
	if len(vs) == 0 {
		return nil
	}
	m := make(map[string]json.RawMessage, len(vs))
	for _, v := range vs {
		if v.Value == nil {
			m[v.Name] = json.RawMessage("null")
			continue
		}
		m[v.Name] = append(json.RawMessage(nil), v.Value...)
	}
	return m
}

// poison sends a message that cannot be decoded to the poison topic (see
// PoisonMessage); its partition keeps flowing.
func (out *outputs) poison(it *item) {
	m := it.msg
	out.w.log.Warn("poison message", zap.String("system", it.system), zap.String("topic", m.Topic),
		zap.Int("partition", m.Partition), zap.Int64("offset", m.Offset), zap.Error(it.err))
	out.messages = append(out.messages, PoisonMessage(out.w.p.cfg, it.system, m, it.err))
	source := it.system
	if source == "" {
		source = reviewSource // a message on the review topic that is not a review command
	}
	out.poisoned = append(out.poisoned, source)
	out.event(source, "poison")
}

// reviewSource is the system label of what comes from the review topic.
const reviewSource = "review"

// PoisonMessage is the message on <name>.poison for m, a message of system that
// cannot be decoded: its key and value as they came, with headers saying why and
// where it came from.
//
// A message too large to copy (beyond kafka.max_message_bytes less room for the
// headers: the poison topic and the producer take no more) is reported without its
// value, which stays where the headers say: concord.omitted says so and
// concord.value_bytes how large it was. Copying it would fail the produce and stop
// the partition.
func PoisonMessage(cfg *config.Config, system string, m *kafka.Message, err error) kafka.Message {
	p := kafka.Message{
		Topic: PoisonTopic(cfg),
		Key:   m.Key,
		Value: m.Value,
		Headers: []kafka.Header{
			{Key: HeaderReason, Value: []byte(err.Error())},
			{Key: HeaderSystem, Value: []byte(system)},
			{Key: HeaderTopic, Value: []byte(m.Topic)},
			{Key: HeaderPartition, Value: []byte(strconv.Itoa(m.Partition))},
			{Key: HeaderOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
		},
	}
	limit := max(cfg.Kafka.MaxMessageBytes, 1<<20) - poisonHeadroom
	if len(m.Key)+len(m.Value) > limit {
		omitted := "value"
		p.Value = []byte{}
		if len(m.Key) > limit/2 {
			p.Key, omitted = nil, "key,value"
		}
		p.Headers = append(p.Headers,
			kafka.Header{Key: HeaderOmitted, Value: []byte(omitted)},
			kafka.Header{Key: HeaderValueBytes, Value: []byte(strconv.Itoa(len(m.Value)))})
	}
	return p
}

// poisonHeadroom is kept free of a poison copy for its headers and the record's
// framing.
const poisonHeadroom = 64 << 10

// count updates the metrics once the batch is committed.
func (out *outputs) count() {
	m := out.w.p.opts.Metrics
	if len(out.lags) > 0 {
		offsets := out.w.p.clocks.offsets()
		for _, l := range out.lags {
			m.SyncLag.WithLabelValues(l.from, l.to).Observe(syncLag(out.produced, l.commitMs, offsets[l.from]).Seconds())
		}
	}
	for _, e := range out.echoes {
		out.w.p.clocks.observe(e.system, e.tsUs, e.sentMs, out.now)
	}
	for _, s := range out.poisoned {
		m.Poison.WithLabelValues(s).Inc()
	}
	for _, d := range out.counts {
		m.Decisions.WithLabelValues(d.Kind.String(), ruleLabel(d.Rule)).Inc()
		switch {
		case d.Kind == resolver.KindConflict:
			m.Conflicts.WithLabelValues(string(d.Rule)).Inc()
		case d.Kind == resolver.KindDLQ && isConflict(d.Reason):
			m.Conflicts.WithLabelValues(string(resolver.RuleReview)).Inc()
		case d.Kind == resolver.KindSkip && d.Reason == resolver.ReasonUnmapped:
			m.Unmapped.WithLabelValues(d.System, out.w.p.unmappedLabel(d.System, d.Field)).Inc()
		case d.Kind == resolver.KindEcho:
			m.Echoes.WithLabelValues(d.System).Inc()
		case d.Kind == resolver.KindDuplicate:
			m.Duplicates.WithLabelValues(d.System).Inc()
		}
	}
	// Events last: once concord_events_total shows a batch, everything it decided is
	// counted too (the demo and the tests wait on it).
	for _, e := range out.events {
		m.Events.WithLabelValues(e[0], e[1]).Inc()
	}
}

// isConflict reports whether a DLQ reason is a conflict sent to review (not a change
// attached to an entry or an apply that was never confirmed).
func isConflict(reason string) bool {
	switch reason {
	case resolver.ReasonAttached, resolver.ReasonApplyUnconfirmed, resolver.ReasonDeleteHeld, resolver.ReasonReviewStale:
		return false
	}
	return true
}

// batchNote is what the DLQ notes of the batch: its audit entries and counts.
func (out *outputs) batchNote() dlq.Batch {
	b := dlq.Batch{Audit: out.audit, Events: int64(len(out.events)), At: out.now}
	for _, d := range out.counts {
		if d.Kind == resolver.KindConflict || d.Kind == resolver.KindDLQ && isConflict(d.Reason) {
			b.Conflicts++
		}
	}
	return b
}

// syncLag is the time from a change's commit to the apply carrying it: the commit
// time is on the source system's clock, so the system's estimated offset against
// concord's clock is taken off first, and a lag a clock ahead of concord would
// still make negative counts as zero, never as a negative sample that drags the
// histogram's sum (and every average built on it) below the truth.
func syncLag(produced time.Time, commitMs int64, offset time.Duration) time.Duration {
	return max(produced.Sub(time.UnixMilli(commitMs).Add(-offset)), 0)
}
