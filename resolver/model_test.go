package resolver_test

// The model-based test: the resolver against a model of the outside world that does
// not share its assumptions (internal/world): PostgreSQL tables, Debezium's change
// event of every commit, and JDBC sinks that write concord's apply messages as the
// real sink does. Random histories of two and three systems under every
// configuration variant are driven to quiescence and checked at the value level
// against what really happened (model_check_test.go).

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/concord-sync/concord/codecs"
	"github.com/concord-sync/concord/config"
	"github.com/concord-sync/concord/internal/world"
	"github.com/concord-sync/concord/pipeline"
	"github.com/concord-sync/concord/resolver"
)

// variant is the configuration of one history.
type variant struct {
	Systems      []sysVariant `json:"systems"`
	Granularity  string       `json:"granularity"`
	Deletes      string       `json:"deletes"`
	NoPropagate  bool         `json:"no_propagate,omitempty"`
	Unmapped     string       `json:"unmapped"`
	Enforce      bool         `json:"enforce,omitempty"`
	PairWindowMs int          `json:"pair_window_ms,omitempty"`
	ToleranceMs  int          `json:"tolerance_ms"`
	Prefer       string       `json:"prefer,omitempty"`
	InitialLoad  bool         `json:"initial_load,omitempty"` // tables start with rows, read by each connector's snapshot
	// ApplyTimeoutMs, when set, is a short apply_timeout, so that sinks slower than it
	// make applies expire and their echoes arrive late.
	ApplyTimeoutMs int `json:"apply_timeout_ms,omitempty"`
}

// sysVariant is one system's shape in a history.
type sysVariant struct {
	TsColumn   bool `json:"ts_column,omitempty"`   // timestamp: updated_at, bumped by a trigger
	FullBefore bool `json:"full_before,omitempty"` // REPLICA IDENTITY FULL
	Marker     bool `json:"marker,omitempty"`      // origin_marker column
	Own        bool `json:"own,omitempty"`         // an unmapped column of its own
	Flat       bool `json:"flat,omitempty"`        // apply format flat (with schema)
	SkewMs     int  `json:"skew_ms,omitempty"`
	DriftMs    int  `json:"drift_ms,omitempty"` // the clock wanders by up to this much, write by write
	Toast      bool `json:"toast,omitempty"`    // notes is TOASTed: unchanged, it comes as Debezium's placeholder
}

// actionKind is what one step of a history does.
type actionKind uint8

const (
	actEdit    actionKind = iota // a user edits (or creates) a record
	actTouch                     // a user's update that changes nothing (the trigger bumps updated_at)
	actOwn                       // a user edits only the system's own unmapped column
	actDelete                    // a user deletes a record
	actDeliver                   // concord consumes the system's next change event
	actSink                      // the system's sink writes its next apply
	actTick                      // time passes; due pairing windows close
	actCommit                    // the system's sink commits its consumer offset
	actRestart                   // the system's sink task restarts: it writes again what it wrote since its last commit
)

var actionNames = [...]string{"edit", "touch", "own", "delete", "deliver", "sink", "tick", "commit", "restart"}

func (k actionKind) String() string { return actionNames[k] }

// action is one step of a history.
type action struct {
	Kind   actionKind `json:"k"`
	System int        `json:"s"`
	Record int        `json:"r"`
	Fields uint8      `json:"f"`  // which of the system's editable fields an edit sets (bit set)
	Ms     int        `json:"ms"` // time that passes before the step
}

func (a action) String() string {
	return fmt.Sprintf("%s(s%d r%d f%b +%dms)", a.Kind, a.System, a.Record, a.Fields, a.Ms)
}

const (
	modelRecords = 3
	modelStartMs = 1_700_000_000_000
)

var systemNames = [...]string{"crm", "billing", "erp"}

// modelFields are the canonical fields: name is crm's, status billing's, notes and
// phone shared, extra in no authority entry (synced only with unmapped_fields: shared).
var modelFields = []string{"name", "status", "notes", "phone", "extra"}

// config builds the history's configuration the way a user would write it, parsed and
// validated by the config package.
func (v *variant) config() (*config.Config, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "name: model\nkafka: {brokers: [localhost:9092]}\nredis: {addr: localhost:6379}\nsystems:\n")
	for i, sv := range v.Systems {
		name := systemNames[i]
		fmt.Fprintf(&b, "  %s:\n    topic: %s\n    key: [id]\n", name, topicOf(i))
		if sv.TsColumn {
			b.WriteString("    timestamp: updated_at\n")
		}
		cols := columnsOf(i)
		b.WriteString("    fields: {")
		first := true
		for _, f := range append([]string{"id"}, modelFields...) {
			if col := cols[f]; col != "" && col != f {
				if !first {
					b.WriteString(", ")
				}
				first = false
				fmt.Fprintf(&b, "%s: %s", f, col)
			}
		}
		b.WriteString("}\n")
		format := "debezium"
		if sv.Flat {
			format = "flat"
		}
		fmt.Fprintf(&b, "    apply: {format: %s}\n", format)
		if sv.Marker {
			b.WriteString("    origin_marker: concord_event\n")
		}
	}
	if v.ApplyTimeoutMs > 0 {
		fmt.Fprintf(&b, "resolution:\n  apply_timeout: %dms\n", v.ApplyTimeoutMs)
	} else {
		b.WriteString("resolution:\n")
	}
	fmt.Fprintf(&b, "  clock_skew_tolerance: %dms\n  granularity: %s\n  deletes: %s\n  propagate_deletes: %t\n  unmapped_fields: %s\n  enforce_authority: %t\n  pair_window: %dms\n  loop_guard: {max_applies: 1000, window: 1m}\n",
		v.ToleranceMs, v.Granularity, v.Deletes, !v.NoPropagate, v.Unmapped, v.Enforce, v.PairWindowMs)
	if v.Prefer != "" {
		fmt.Fprintf(&b, "  initial_load_prefer: %s\n", v.Prefer)
	}
	b.WriteString("authority: {name: crm, status: billing, notes: shared, phone: shared}\n")
	cfg, err := config.Parse([]byte(b.String()))
	if err != nil {
		return nil, fmt.Errorf("variant config: %w\n%s", err, b.String())
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("variant config: %w\n%s", err, b.String())
	}
	return cfg, nil
}

func topicOf(i int) string {
	return [...]string{"crm.public.contacts", "billing.public.customers", "erp.public.parties"}[i]
}

// columnsOf maps canonical fields to a system's columns: the systems name their key
// and some fields differently.
func columnsOf(i int) map[string]string {
	switch i {
	case 0:
		return map[string]string{"id": "id", "name": "full_name", "status": "status", "notes": "notes", "phone": "phone", "extra": "extra"}
	case 1:
		return map[string]string{"id": "cust_id", "name": "name", "status": "payment_status", "notes": "notes", "phone": "phone", "extra": "extra"}
	default:
		return map[string]string{"id": "erp_id", "name": "name", "status": "status", "notes": "memo", "phone": "tel", "extra": "extra"}
	}
}

// mSystem is one modelled system: its table, the change events Debezium has
// published and concord has not consumed yet, and its sink's backlog.
type mSystem struct {
	i        int
	name     string
	v        sysVariant
	tbl      *world.Table
	cols     map[string]string // canonical field -> column
	editable []string          // canonical fields its users edit (own column included)
	own      string            // its own unmapped column, "" for none
	dec      *codecs.Decoder
	format   string
	events   []mEvent
	inbox    []mApply
	written  []mApply // written by the sink since its last offset commit
	offset   int64
	unproven map[string]bool // records whose last sink write changed nothing and was not taken for an echo
	ticks    int64           // writes so far, for the clock's drift
}

// mEvent is a published change event with its ground truth.
type mEvent struct {
	key, value []byte
	change     *world.Change
	prior      world.Row // the row before the commit; nil when there was none
}

// mApply is an apply message on a system's apply topic.
type mApply struct {
	key, value []byte
	eventID    string
}

// userWrite is a genuine write of a field (or a delete) by a system's user.
type userWrite struct {
	system string
	record string
	field  string // canonical; "" for a delete
	value  string
	atMs   int64
	seq    int
}

// logged is a decision with what caused it.
type logged struct {
	resolver.Decision
	atMs     int64
	delivery int // index of the delivered event, -1 for a timer
}

// model is one history's world and concord's resolver state over it.
type model struct {
	v       variant
	cfg     *config.Config
	r       *resolver.Resolver
	systems []*mSystem
	states  map[string]*resolver.State
	nowMs   int64
	values  int
	writes  []userWrite
	log     []logged
	applies int
	deliv   []delivery
	ev      codecs.Event
	ch      resolver.Change
	out     resolver.Output
	failure string // the first attribution failure, checked as the history runs
	// sent is what every apply sent sets (as its target's sink reads it), by event
	// id; claimed marks the applies an event was taken for the echo of.
	sent    map[string]world.Apply
	claimed map[string]bool
}

// delivery is one change event concord consumed, for the replay file.
type delivery struct {
	system     string
	offset     int64
	atMs       int64
	key, value []byte
	cause      world.Cause
	after      world.Row // the row the event shows, nil for a delete
}

func newModel(v variant) (*model, error) {
	cfg, err := v.config()
	if err != nil {
		return nil, err
	}
	r, err := resolver.New(cfg)
	if err != nil {
		return nil, err
	}
	m := &model{
		v: v, cfg: cfg, r: r, states: map[string]*resolver.State{}, nowMs: modelStartMs,
		sent: map[string]world.Apply{}, claimed: map[string]bool{},
	}
	for i, sv := range v.Systems {
		s := &mSystem{
			i: i, name: systemNames[i], v: sv, cols: columnsOf(i), dec: codecs.NewDecoder(codecs.Options{}),
			format: "debezium", unproven: map[string]bool{},
		}
		if sv.Flat {
			s.format = "flat"
		}
		spec := world.Spec{Name: s.name, KeyColumn: s.cols["id"], FullBefore: sv.FullBefore}
		spec.Table = strings.Split(topicOf(i), ".")[2]
		for _, f := range modelFields {
			if f == "extra" && v.Unmapped != config.UnmappedShared {
				continue
			}
			spec.Columns = append(spec.Columns, s.cols[f])
			if m.mayEdit(s.name, f) {
				s.editable = append(s.editable, f)
			}
		}
		if sv.Own && v.Unmapped != config.UnmappedShared {
			s.own = s.name + "_only"
			spec.Columns = append(spec.Columns, s.own)
		}
		if sv.TsColumn {
			spec.TimestampColumn = "updated_at"
			spec.Columns = append(spec.Columns, "updated_at")
		}
		if sv.Marker {
			spec.Columns = append(spec.Columns, "concord_event")
		}
		if sv.Toast {
			spec.Toasted = []string{s.cols["notes"]}
		}
		s.tbl = world.NewTable(spec, !v.InitialLoad)
		m.systems = append(m.systems, s)
	}
	if v.InitialLoad {
		m.initialRows()
		// Every connector takes its snapshot before concord writes anything: a create
		// sent to a system whose rows concord has not read would be upserted over a
		// row it already holds (README: initial loads).
		for _, s := range m.systems {
			m.snapshot(s)
		}
	}
	return m, nil
}

// mayEdit reports whether a system's users edit a field: owned fields only their
// owner (anyone with enforce_authority), shared ones everybody.
func (m *model) mayEdit(system, field string) bool {
	switch field {
	case "name":
		return system == "crm" || m.v.Enforce
	case "status":
		return system == "billing" || m.v.Enforce
	}
	return true
}

// initialRows fills the tables before their connectors start: r0 is the same in
// every system, r1 differs in notes, r2 exists in the first system only.
func (m *model) initialRows() {
	for _, s := range m.systems {
		for rec := range 2 {
			set := world.Row{}
			for _, f := range modelFields {
				col, ok := s.column(f)
				if !ok {
					continue
				}
				val := fmt.Sprintf("init-%s-r%d", f, rec)
				if rec == 1 && f == "notes" {
					val += "-" + s.name
				}
				set[col] = strconv.Quote(val)
				m.writes = append(m.writes, userWrite{system: s.name, record: recordName(rec), field: f, value: strconv.Quote(val), atMs: m.nowMs, seq: len(m.writes)})
			}
			s.tbl.Upsert(recordName(rec), set, m.clock(s), world.Cause{Kind: world.User})
		}
	}
	m.edit(m.systems[0], 2, 0xff)
}

// column returns the system's column of a canonical field, if its table has one.
func (s *mSystem) column(field string) (string, bool) {
	col := s.cols[field]
	return col, slices.Contains(s.tbl.Columns(), col)
}

func recordName(i int) string { return "r" + strconv.Itoa(i) }

// clock is the system's clock: skewed, and wandering (deterministically) by up to
// its drift from one write to the next, as a clock stepped by NTP does.
func (m *model) clock(s *mSystem) int64 {
	c := m.nowMs + int64(s.v.SkewMs)
	if s.v.DriftMs > 0 {
		s.ticks++
		c += (s.ticks * 7919) % int64(s.v.DriftMs)
	}
	return c
}

// step runs one action. Actions that cannot happen (a sink with nothing to write,
// a delete of a missing row) do nothing.
func (m *model) step(a action) error {
	m.nowMs += int64(a.Ms)
	s := m.systems[a.System%len(m.systems)]
	rec := a.Record % modelRecords
	switch a.Kind {
	case actEdit:
		m.edit(s, rec, a.Fields)
	case actTouch:
		if s.tbl.Has(recordName(rec)) {
			prior := m.prior(s, rec)
			m.publish(s, s.tbl.Upsert(recordName(rec), world.Row{}, m.clock(s), world.Cause{Kind: world.User}), prior)
		}
	case actOwn:
		if s.own != "" && s.tbl.Has(recordName(rec)) {
			prior := m.prior(s, rec)
			m.publish(s, s.tbl.Upsert(recordName(rec), world.Row{s.own: m.value(s, s.own)}, m.clock(s), world.Cause{Kind: world.User}), prior)
		}
	case actDelete:
		prior := m.prior(s, rec)
		if c, ok := s.tbl.Delete(recordName(rec), m.clock(s), world.Cause{Kind: world.User}); ok {
			m.writes = append(m.writes, userWrite{system: s.name, record: recordName(rec), atMs: m.nowMs, seq: len(m.writes)})
			m.publish(s, c, prior)
		}
	case actDeliver:
		return m.deliver(s)
	case actSink:
		return m.sink(s)
	case actTick:
		m.nowMs += int64(m.v.PairWindowMs)
		m.expireDue()
	case actCommit:
		s.written = nil
	case actRestart:
		// A JDBC sink is at-least-once: a restarted task resumes from its last
		// committed offset (Kafka Connect's WorkerSinkTask), so it writes again
		// every apply it wrote since.
		s.inbox = append(slices.Clone(s.written), s.inbox...)
		s.written = nil
	}
	return nil
}

// edit has a user of s write some of its editable fields of a record; a missing row
// is created with every editable field.
func (m *model) edit(s *mSystem, rec int, fields uint8) {
	id := recordName(rec)
	exists := s.tbl.Has(id)
	set := world.Row{}
	for j, f := range s.editable {
		if exists && fields&(1<<j) == 0 {
			continue
		}
		col, _ := s.column(f)
		val := m.value(s, f)
		set[col] = val
		m.writes = append(m.writes, userWrite{system: s.name, record: id, field: f, value: val, atMs: m.nowMs, seq: len(m.writes)})
	}
	if len(set) == 0 && s.own == "" {
		return
	}
	if s.own != "" && (!exists || len(set) == 0) {
		set[s.own] = m.value(s, s.own)
	}
	if !exists { // an INSERT writes NULL into the columns it does not set
		for _, f := range modelFields {
			if col, ok := s.column(f); ok && set[col] == "" {
				m.writes = append(m.writes, userWrite{system: s.name, record: id, field: f, value: world.Null, atMs: m.nowMs, seq: len(m.writes)})
			}
		}
	}
	prior := m.prior(s, rec)
	m.publish(s, s.tbl.Upsert(id, set, m.clock(s), world.Cause{Kind: world.User, Edit: len(m.writes)}), prior)
}

// value returns a value no one has written before.
func (m *model) value(s *mSystem, field string) string {
	m.values++
	return strconv.Quote(s.name + "-" + field + "-" + strconv.Itoa(m.values))
}

// prior returns the row of a record before a write, nil when there is none.
func (m *model) prior(s *mSystem, rec int) world.Row {
	row, _ := s.tbl.Row(recordName(rec))
	return row
}

// publish queues a committed change's event for concord (nil: not captured); prior
// is the row before the commit.
func (m *model) publish(s *mSystem, c *world.Change, prior world.Row) {
	if c == nil {
		return
	}
	value, err := s.tbl.EncodeValue(c, m.nowMs)
	if err != nil {
		panic(err) // the model only writes JSON
	}
	s.events = append(s.events, mEvent{key: s.tbl.EncodeKey(c.ID), value: value, change: c, prior: prior})
}

func (m *model) snapshot(s *mSystem) {
	if s.tbl.Capturing() {
		return
	}
	for _, c := range s.tbl.Snapshot(m.clock(s)) {
		m.publish(s, c, c.After)
	}
}

// deliver has concord consume the system's oldest unconsumed change event, decode it
// as the pipeline does, and resolve it; the applies go to the targets' apply topics.
func (m *model) deliver(s *mSystem) error {
	if len(s.events) == 0 {
		return nil
	}
	e := s.events[0]
	s.events = s.events[1:]
	s.offset++
	m.deliv = append(m.deliv, delivery{system: s.name, offset: s.offset, atMs: m.nowMs, key: e.key, value: e.value, cause: e.change.Cause, after: e.change.After})
	msg := codecs.Message{Topic: topicOf(s.i), Offset: s.offset, Key: e.key, Value: e.value}
	if err := s.dec.Decode(msg, &m.ev); err != nil {
		return fmt.Errorf("concord could not decode %s's event %s: %w", s.name, e.value, err)
	}
	if err := m.r.Canonicalize(s.name, &m.ev, &m.ch); err != nil {
		return fmt.Errorf("canonicalize %s's event %s: %w", s.name, e.value, err)
	}
	st := m.state(m.ch.Record)
	m.out.Reset()
	m.r.Resolve(time.UnixMilli(m.nowMs), st, &m.ch, &m.out)
	first := len(m.log)
	m.route(st, len(m.deliv)-1)
	m.checkAttribution(s, e, m.log[first:])
	return nil
}

// checkAttribution holds concord's echo claims against the ground truth: the event of
// a sink write is the echo of exactly the apply written; no other event is an echo.
func (m *model) checkAttribution(s *mSystem, e mEvent, ds []logged) {
	var echoes []string
	for _, d := range ds {
		if d.Kind == resolver.KindEcho {
			echoes = append(echoes, d.EventID)
		}
	}
	want := []string(nil)
	if c := e.change.Cause; c.Kind == world.Sink && !m.claimed[c.EventID] {
		want = []string{c.EventID}
	}
	if len(echoes) == 1 && e.change.Cause.Kind != world.Snapshot && m.indistinguishable(s, e, echoes[0]) {
		want = echoes // see indistinguishable
	}
	if len(echoes) == 0 && e.change.Cause.Kind == world.Sink && m.changesNothing(s, e) {
		want = nil // a write that changes nothing proves nothing (Apply.Uncertain)
		s.unproven[e.change.ID] = true
	} else if len(echoes) == 0 && e.change.Cause.Kind == world.Sink && e.change.Op == world.OpDelete && s.unproven[e.change.ID] {
		// A delete right after a write that proved nothing cannot be told from the
		// system's own delete, which that write, if still to come, would undo.
		want = nil
	}
	if e.change.Cause.Kind == world.Sink && len(echoes) > 0 {
		delete(s.unproven, e.change.ID)
	}
	for _, id := range echoes {
		m.claimed[id] = true
	}
	if !slices.Equal(echoes, want) && m.failure == "" {
		m.failure = fmt.Sprintf("echo attribution: %s's %c event of %s (delivery %d, %s) was taken as the echo of %v, want %v",
			s.name, e.change.Op, e.change.ID, len(m.deliv)-1, causeString(e.change.Cause), echoes, want)
	}
}

// indistinguishable reports whether a write (a user's, or the sink's of another
// apply) commits exactly the row the sink's write of an apply would have: the apply
// sets values the row already holds, and the write changes nothing else. No reader
// of the change events can tell the two apart (only an origin marker could), so
// taking one for the other is allowed here; what it leads to is still checked, value
// by value, at the end.
func (m *model) indistinguishable(s *mSystem, e mEvent, eventID string) bool {
	a, ok := m.sent[eventID]
	if ok && a.Delete && e.change.Op == world.OpDelete {
		return true // a delete is a delete: the sink's then deletes nothing
	}
	if !ok || a.Delete || e.change.Op == world.OpDelete || e.change.Op == world.OpUpdate && e.prior == nil {
		return false
	}
	for col, v := range e.change.After {
		if col == s.tbl.Spec().TimestampColumn || v == world.Unavailable {
			continue
		}
		want, set := a.Set[col]
		if !set {
			want = world.Null // an insert leaves the columns it is not given NULL
			if e.prior != nil {
				want = e.prior[col]
			}
		}
		if v != want {
			return false
		}
	}
	return true
}

// changesNothing reports whether a committed update leaves every column as it was
// (the trigger's timestamp aside).
func (m *model) changesNothing(s *mSystem, e mEvent) bool {
	if e.change.Op != world.OpUpdate || e.prior == nil {
		return false
	}
	for col, v := range e.change.After {
		if col != s.tbl.Spec().TimestampColumn && v != world.Unavailable && e.prior[col] != v {
			return false
		}
	}
	return true
}

func causeString(c world.Cause) string {
	switch c.Kind {
	case world.User:
		return "a user's write"
	case world.Sink:
		return "the sink's write of " + c.EventID
	default:
		return "a snapshot read"
	}
}

func (m *model) state(record string) *resolver.State {
	st := m.states[record]
	if st == nil {
		st = &resolver.State{Record: record}
		m.states[record] = st
	}
	return st
}

// route logs the decisions in m.out and sends the applies to their targets.
func (m *model) route(st *resolver.State, delivery int) {
	for _, d := range m.out.Decisions {
		if d.Kind == resolver.KindApply {
			msg, err := pipeline.ApplyMessage(m.cfg, m.r, st.Key, &d, time.UnixMilli(m.nowMs))
			if err != nil {
				panic(fmt.Sprintf("encoding an apply: %v", err))
			}
			t := m.system(d.Target)
			t.inbox = append(t.inbox, mApply{key: msg.Key, value: msg.Value, eventID: d.EventID})
			if a, err := world.DecodeApply(t.format, t.cols["id"], msg.Key, msg.Value); err == nil {
				m.sent[d.EventID] = a
			}
			m.applies++
		}
		d.Fields = cloneValues(d.Fields)
		d.ConflictFields = slices.Clone(d.ConflictFields)
		d.Versions = slices.Clone(d.Versions)
		for i := range d.Versions {
			d.Versions[i].Fields = cloneValues(d.Versions[i].Fields)
		}
		d.Base = cloneValues(d.Base)
		m.log = append(m.log, logged{Decision: d, atMs: m.nowMs, delivery: delivery})
	}
}

func (m *model) system(name string) *mSystem {
	for _, s := range m.systems {
		if s.name == name {
			return s
		}
	}
	panic("no system " + name)
}

// sink has the system's JDBC sink write its oldest apply message.
func (m *model) sink(s *mSystem) error {
	if len(s.inbox) == 0 {
		return nil
	}
	a := s.inbox[0]
	s.inbox = s.inbox[1:]
	s.written = append(s.written, a)
	ap, err := world.DecodeApply(s.format, s.cols["id"], a.key, a.value)
	if err != nil {
		return fmt.Errorf("%s's sink refused apply %s: %w (key %s, value %s)", s.name, a.eventID, err, a.key, a.value)
	}
	prior, _ := s.tbl.Row(ap.ID)
	c, _ := s.tbl.Sink(&ap, m.clock(s), a.eventID)
	m.publish(s, c, prior)
	return nil
}

// expireDue does the pipeline timer's work: Expire for every record with a deadline due.
func (m *model) expireDue() {
	for _, id := range sortedKeys(m.states) {
		st := m.states[id]
		if due := st.NextDeadlineMs(m.r); due != 0 && due <= m.nowMs {
			m.out.Reset()
			m.r.Expire(time.UnixMilli(m.nowMs), st, &m.out)
			m.route(st, -1)
		}
	}
}

func sortedKeys[V any](mp map[string]V) []string { return slices.Sorted(maps.Keys(mp)) }

// drain lets the sync run undisturbed until nothing moves: every event consumed, every apply written, every pairing window closed. It fails
// when that does not end (a loop).
func (m *model) drain() error {
	for range 200 {
		moved := false
		for _, s := range m.systems {
			for len(s.events) > 0 || len(s.inbox) > 0 {
				moved = true
				m.nowMs += 3
				if err := m.deliver(s); err != nil {
					return err
				}
				if err := m.sink(s); err != nil {
					return err
				}
			}
		}
		pending := false
		for _, st := range m.states {
			pending = pending || len(st.Pending) > 0
		}
		m.nowMs += int64(m.v.PairWindowMs) + 1
		m.expireDue()
		if !moved && !pending {
			return nil
		}
	}
	return fmt.Errorf("still moving after 200 rounds of draining: a loop")
}

// run executes a history: the actions, then the drain.
func runHistory(v variant, acts []action) (*model, error) {
	m, err := newModel(v)
	if err != nil {
		return nil, err
	}
	for i, a := range acts {
		if err := m.step(a); err != nil {
			return m, fmt.Errorf("action %d %v: %w", i, a, err)
		}
	}
	return m, m.drain()
}

// replayLines renders the consumed change events as a `concord replay` input file,
// with each event's ground truth in a model.cause header.
func (m *model) replayLines() []string {
	lines := make([]string, 0, len(m.deliv))
	for _, d := range m.deliv {
		line := map[string]any{
			"system": d.system, "offset": d.offset, "key": json.RawMessage(d.key), "value": json.RawMessage(d.value),
			"headers": map[string]string{"model.cause": causeString(d.cause), "model.at_ms": strconv.FormatInt(d.atMs, 10)},
		}
		b, err := json.Marshal(line)
		if err != nil {
			panic(err)
		}
		lines = append(lines, string(b))
	}
	return lines
}
