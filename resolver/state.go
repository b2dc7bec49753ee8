package resolver

import (
	"slices"

	"github.com/concord-sync/concord/codecs"
)

// State is everything the resolver keeps about one record between events. The caller
// owns it: Resolve reads and updates it in place and never retains it. A zero State
// (with Record set) is a record nobody has shown yet.
//
// It holds fingerprints rather than values wherever it can: values are kept only for
// in-flight applies and pending changes (transient), and in the agreed image when a
// setting needs them (enforce_authority, deletes review/update_wins: see Resolver.KeepsValues).
type State struct {
	Record  string
	Version uint64  // compare-and-set version, maintained by the state store
	Key     []Value // the key fields' values, for applies decided without an event

	Agreed  []AgreedField // the last converged image
	Systems []SystemState // one per system that has shown or been sent the record
	Pending []Pending     // changes held in the pairing window
	Hold    *Hold         // DLQ hold on fields under review; nil when none

	Deleted   bool  // the agreed image is a delete
	DeletedMs int64 // when the record was agreed deleted (tombstone retention)

	LoopStartMs int64  // start of the loop-guard window
	LoopApplies uint32 // applies sent in that window

	// Sent counts the applies ever sent for the record: it numbers their event ids, so
	// no two applies share one, and it is deterministic (the same events give the same
	// count).
	Sent uint64
	// IDBase is what the first half of the record's event ids counts up from: the
	// id of the apply numbered Sent = n is IDBase+n (see decider.eventID). It is a
	// hash of the change that caused the state's first apply, set then (0 before), so
	// a record deleted, forgotten and made again (a new state) does not repeat the
	// ids of its earlier life; and a store can keep an apply's id as Sent-n.
	IDBase uint64
	// Unconfirmed is the open apply_unconfirmed DLQ entry of the record, "" for none:
	// later unconfirmed applies join it, so a record has at most one open entry.
	Unconfirmed string
}

// AgreedField is one field of the agreed image.
type AgreedField struct {
	Name   string
	FP     uint64 // fingerprint of the canonical value
	Writer string // system whose change set it
	TsUs   int64  // that change's timestamp, in microseconds since the epoch
	Value  []byte // kept only when Resolver.KeepsValues; nil otherwise
}

// SystemState is what one system last showed of the record and what was sent to it.
type SystemState struct {
	Name     string
	Pos      codecs.Position // last processed position (duplicate detection)
	Known    bool            // the system has shown the record (or a delete of it)
	Deleted  bool            // the last image it showed is a delete
	Seen     []SeenField     // the image it last showed, as fingerprints
	InFlight []Apply         // applies sent to it and not yet seen back, oldest first
	// Landed are the last applies seen written to it (at most maxLanded, for
	// lateEchoMs), fingerprints only: a JDBC sink is at-least-once, and after a
	// restart it writes again what it wrote since its last offset commit, maybe over
	// newer edits. Such a rewrite is recognised and never taken for a change.
	Landed []Landed
	// MarkerFP is the fingerprint of the origin marker the system last showed (0
	// for none): a rewrite that puts an older apply's id back is certain.
	MarkerFP uint64
}

// Landed is an apply a system has been seen to write: the fields it set and one
// fingerprint of the values it set them to (LandedFP), not one per field. A rewrite
// of it sets every one of its fields again, so an image either shows all of them at
// those values or is no rewrite of it; one fingerprint tells which, and keeps the
// state small (8 bytes for an apply of any size instead of 8 per field whose value
// has changed since).
type Landed struct {
	EventID string
	SentMs  int64
	Fields  []string // in the apply's order
	FP      uint64   // LandedFP of the fingerprints of the values, in that order
}

// LandedFP folds the fingerprint of one more value of a landed apply into fp (0 for
// the first): Landed.FP is the fold of its values' fingerprints in its fields' order.
func LandedFP(fp, value uint64) uint64 {
	// splitmix64's finalizer over the running fingerprint and the value's: order
	// matters, and every bit of each fingerprint reaches every bit of the result.
	z := fp*0x9e3779b97f4a7c15 ^ value
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// maxLanded bounds SystemState.Landed: a sink rewrites only what it wrote since its
// last offset commit, so a few per record are enough, and the state stays small.
const maxLanded = 4

// SeenField is a field of an image a system showed.
type SeenField struct {
	Name string
	FP   uint64
}

// Apply is an apply event sent to a system and not yet seen back.
type Apply struct {
	EventID string
	Delete  bool
	Origin  string // system whose change it carries
	TsUs    int64  // timestamp of that change
	SentMs  int64  // when it was decided (now at the time)
	Fields  []Value

	// Expired: not seen back within apply_timeout, or passed by an event taken for a
	// later apply's echo. It no longer counts as on its way (expected images,
	// concurrency), but its echo is still recognised, and what it overwrote repaired,
	// for as long as a tombstone is kept (Resolver.lateEchoMs).
	Expired bool
	// Uncertain: the system already showed every value the apply sets, so its write
	// may commit no visible change. Either a snapshot read showed them (the apply
	// landed before the snapshot, and no echo follows, or it lands later) or it was
	// sent as a winner re-applied to a system showing it, only because an earlier
	// apply may overwrite it. It still counts as on its way, echo matching may pass
	// it, and an event that changes nothing never confirms it.
	Uncertain bool
	// Recreate: sent to a system that had deleted the row, to create it again. Landing
	// late it is no stale write over that delete.
	Recreate bool
}

// live reports whether the apply is still expected to land.
func (a *Apply) live() bool { return !a.Expired }

// keyOnly reports whether the apply is a create carrying no field but the key: the
// JDBC sink's upsert of it is INSERT … ON CONFLICT DO NOTHING, which commits nothing
// when the row exists.
func (a *Apply) keyOnly() bool { return !a.Delete && len(a.Fields) == 0 }

// Value is a canonical field value with its fingerprint.
type Value struct {
	Name  string
	FP    uint64
	Value []byte // canonical JSON; see codecs.Column
}

// Pending is a change held in the pairing window.
type Pending struct {
	System     string
	TsUs       int64
	Position   codecs.Position
	DeadlineMs int64
	Fields     []Value
}

// Hold is the DLQ entry a record is under and the fields it holds. Held fields are not
// propagated until a reviewer decides; later changes to them are attached to the entry.
type Hold struct {
	EntryID string
	Fields  []string
	Record  bool // the whole record is held (a delete against an update, a loop)
	// Changes counts the DLQ decisions made into the entry (its revision in the DLQ):
	// a review decided on an older revision missed a later change and is not applied.
	Changes uint32
}

// system returns the state of the named system, adding it when absent.
func (s *State) system(name string) *SystemState {
	for i := range s.Systems {
		if s.Systems[i].Name == name {
			return &s.Systems[i]
		}
	}
	s.Systems = append(s.Systems, SystemState{Name: name})
	return &s.Systems[len(s.Systems)-1]
}

func (s *State) agreed(name string) *AgreedField {
	for i := range s.Agreed {
		if sameName(s.Agreed[i].Name, name) {
			return &s.Agreed[i]
		}
	}
	return nil
}

func (s *State) setAgreed(f AgreedField) {
	if a := s.agreed(f.Name); a != nil {
		*a = f
		return
	}
	s.Agreed = append(s.Agreed, f)
}

func (s *State) held(field string) bool {
	return s.Hold != nil && (s.Hold.Record || slices.Contains(s.Hold.Fields, field))
}

// Idle reports whether the state no longer needs to be kept in full: nothing in
// flight, nothing pending, nothing held. A deleted idle state is a tombstone.
func (s *State) Idle() bool {
	if len(s.Pending) > 0 || s.Hold != nil {
		return false
	}
	for i := range s.Systems {
		if s.Systems[i].lastLive() != nil {
			return false
		}
	}
	return true
}

// NextDeadlineMs returns the earliest time at which Expire has work for this record
// (a pending change to flush, an in-flight apply to time out or forget) or its
// tombstone can be dropped, or 0 when none.
func (s *State) NextDeadlineMs(rules *Resolver) int64 {
	var next int64
	consider := func(ms int64) {
		if next == 0 || ms < next {
			next = ms
		}
	}
	for _, p := range s.Pending {
		consider(p.DeadlineMs)
	}
	timeout := rules.applyTimeout.Milliseconds()
	for i := range s.Systems {
		for _, a := range s.Systems[i].InFlight {
			if a.live() {
				consider(a.SentMs + timeout)
			} else {
				consider(a.SentMs + rules.lateEchoMs())
			}
		}
		// Landed applies need no deadline: Resolve expires first, so one older than a
		// late echo is forgotten before any event is compared with it, and a timer
		// would only rewrite every record synced in the last tombstone_retention once
		// more, and index it meanwhile (a sorted-set entry per record, more than the
		// landed applies of an idle record take to store).
	}
	if s.Deleted && s.Idle() {
		consider(s.DeletedMs + rules.tombstone.Milliseconds()) // droppable then (Droppable)
	}
	return next
}

// seenAt is seen, looking at position hint first (see hasValue).
func (ss *SystemState) seenAt(name string, hint int) (uint64, bool) {
	if hint < len(ss.Seen) && sameName(ss.Seen[hint].Name, name) {
		return ss.Seen[hint].FP, true
	}
	return ss.seen(name)
}

func (ss *SystemState) seen(name string) (uint64, bool) {
	for _, f := range ss.Seen {
		if sameName(f.Name, name) {
			return f.FP, true
		}
	}
	return 0, false
}

// expected returns what the system will hold for a field once its in-flight applies
// land: the latest in-flight apply setting it, else what it last showed. present is
// false when the system will not have the record (never shown, deleted, or a delete
// in flight); known is false when the field's value is not known. An uncertain apply
// may already have landed or may still land: with uncertain false such applies are
// left out.
func (ss *SystemState) expected(name string, uncertain bool) (fp uint64, present, known bool) {
	live := false
	for i := len(ss.InFlight) - 1; i >= 0; i-- {
		a := &ss.InFlight[i]
		if !a.live() || a.Uncertain && !uncertain {
			continue
		}
		live = true
		if a.Delete {
			return 0, false, true
		}
		if v, ok := findValue(a.Fields, name); ok {
			return v.FP, true, true
		}
	}
	if !ss.Known || ss.Deleted {
		if live {
			return 0, true, false // a create is in flight that does not set this field
		}
		return 0, false, true
	}
	fp, ok := ss.seen(name)
	return fp, true, ok
}

// holds reports whether the system will hold the value for the field however its
// in-flight applies turn out (uncertain ones landed already or still to land).
func (ss *SystemState) holds(name string, fp uint64) bool {
	for _, uncertain := range [2]bool{true, false} {
		if got, present, known := ss.expected(name, uncertain); !present || !known || got != fp {
			return false
		}
	}
	return true
}

// present reports whether the system will hold the record once its applies land.
func (ss *SystemState) present() bool {
	if a := ss.lastLive(); a != nil {
		return !a.Delete
	}
	return ss.Known && !ss.Deleted
}

// lastLive returns the latest apply still expected to land, or nil.
func (ss *SystemState) lastLive() *Apply {
	for i := len(ss.InFlight) - 1; i >= 0; i-- {
		if ss.InFlight[i].live() {
			return &ss.InFlight[i]
		}
	}
	return nil
}

// inFlightSetting returns the latest un-acknowledged apply that sets the field, or nil.
func (ss *SystemState) inFlightSetting(name string) (*Apply, *Value) {
	for i := len(ss.InFlight) - 1; i >= 0; i-- {
		a := &ss.InFlight[i]
		if !a.live() {
			continue
		}
		if v, ok := findValue(a.Fields, name); ok {
			return a, v
		}
	}
	return nil, nil
}

// deleteInFlight returns the apply that will leave the system without the record:
// the latest live apply, when it is a delete.
func (ss *SystemState) deleteInFlight() *Apply {
	if a := ss.lastLive(); a != nil && a.Delete {
		return a
	}
	return nil
}

func findValue(vs []Value, name string) (*Value, bool) {
	for i := range vs {
		if sameName(vs[i].Name, name) {
			return &vs[i], true
		}
	}
	return nil, false
}

// hasValue reports whether vs has a value of the named field, looking at position
// hint first: a system's images list their fields in the same order event after event.
func hasValue(vs []Value, name string, hint int) bool {
	_, ok := findValueAt(vs, name, hint)
	return ok
}

// findValueAt is findValue, looking at position hint first (see hasValue).
func findValueAt(vs []Value, name string, hint int) (*Value, bool) {
	if hint < len(vs) && sameName(vs[hint].Name, name) {
		return &vs[hint], true
	}
	return findValue(vs, name)
}

// sameName is name == other for field names, quicker to say no: a record's fields are
// looked up by scanning its images, so most names compared differ, often only in
// their last byte (f1, f2, …) or in their length, and those are compared first.
func sameName(name, other string) bool {
	return len(name) == len(other) && (name == "" || name[len(name)-1] == other[len(name)-1]) && name == other
}

// shows reports whether the system last showed every one of the values.
func (ss *SystemState) shows(vals []Value) bool {
	if !ss.Known || ss.Deleted {
		return false
	}
	for _, v := range vals {
		if fp, ok := ss.seen(v.Name); !ok || fp != v.FP {
			return false
		}
	}
	return true
}

// markShown marks the applies still on their way whose values the system now shows
// as uncertain: their write may change nothing and so commit an event that proves
// nothing (an earlier apply, or the system's own edit, set the same values first),
// so they must not block the echo of a later apply.
func (ss *SystemState) markShown() {
	for i := range ss.InFlight {
		if a := &ss.InFlight[i]; a.live() && !a.Delete && !a.Uncertain && len(a.Fields) > 0 && ss.shows(a.Fields) {
			a.Uncertain = true
		}
	}
}

// writerOf names whose change an in-flight apply carries for one of its fields: one
// apply may carry values decided for several writers, and the agreed image names
// the field's own while the value is still agreed; else the apply's origin.
func (s *State) writerOf(a *Apply, v *Value) (string, int64) {
	if ag := s.agreed(v.Name); ag != nil && ag.FP == v.FP {
		return ag.Writer, ag.TsUs
	}
	return a.Origin, a.TsUs
}

// carriesOther reports whether an in-flight apply to system carries a change of
// another system in any of its fields.
func (s *State) carriesOther(a *Apply, system string) bool {
	if a.Delete || len(a.Fields) == 0 {
		return a.Origin != system
	}
	for i := range a.Fields {
		if w, _ := s.writerOf(a, &a.Fields[i]); w != system {
			return true
		}
	}
	return false
}
