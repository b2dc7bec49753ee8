package resolver

import "github.com/concord-sync/concord/codecs"

// Change is one system's change to one record in canonical field names: what the
// resolver decides on. Resolver.Canonicalize builds it from a decoded Debezium event.
type Change struct {
	System   string
	Record   string
	Key      []Value   // the key fields' values, canonical names, key order
	Op       codecs.Op // c, u, d or r
	After    []Value   // synced fields of the after image; nil for a delete
	Before   []Value   // synced fields of the before image; nil when absent
	TsUs     int64     // the system's timestamp for this change (configured source)
	CommitMs int64     // source.ts_ms: when the source database committed it (0 when unknown)
	Position codecs.Position
	Marker   string   // origin marker column value (an apply's event id), if any
	Unmapped []string // fields changed or shown that no authority entry covers
}

// Kind is what a decision is.
type Kind uint8

// Decision kinds (DESIGN.md section 8).
const (
	KindApply Kind = iota
	KindConflict
	KindDLQ
	KindSkip
	KindEcho
	KindDuplicate
	KindIgnored
	KindPoison
)

var kindNames = [...]string{"apply", "conflict", "dlq", "skip", "echo", "duplicate", "ignored", "poison"}

func (k Kind) String() string { return kindNames[k] }

// Rule names why a value won (the concord.rule header of apply events).
type Rule string

// Rules of section 4.
const (
	RuleSync             Rule = "sync"
	RuleAuthority        Rule = "authority"
	RuleLWW              Rule = "lww"
	RuleReview           Rule = "review"
	RuleDeleteWins       Rule = "delete_wins"
	RuleUpdateWins       Rule = "update_wins"
	RuleEnforceAuthority Rule = "enforce_authority"
	RuleInitialLoad      Rule = "initial_load"
	RuleRepair           Rule = "repair" // agreed values re-applied over a stale write
)

// Reasons for skips, DLQ entries and ignored messages.
const (
	ReasonNotAuthoritative = "not_authoritative"
	ReasonUnmapped         = "unmapped"
	ReasonClockSkew        = "clock_skew"         // shared field changed within the tolerance
	ReasonDeleteVsUpdate   = "delete_vs_update"   // concurrent delete and update, deletes: review
	ReasonInitialDivergent = "initial_divergence" // snapshot disagrees, nothing decides
	ReasonLoop             = "loop"
	ReasonApplyUnconfirmed = "apply_unconfirmed"
	ReasonAttached         = "attached" // a later change to a held field joined the entry
	ReasonDeleteHeld       = "delete_held"
	ReasonStaleWrite       = "stale_write" // an apply landed after newer values were agreed
	// ReasonValueUnavailable: a decision needs a value the source did not send (an
	// unchanged TOASTed column) and concord does not keep.
	ReasonValueUnavailable = "value_unavailable"
	// ReasonPossibleRedelivery: a write that is either concord's own apply landing
	// late or the system's own change, and nothing tells which.
	ReasonPossibleRedelivery = "possible_redelivery"
	// ReasonTypeMismatch: a value the target's column cannot hold without loss (a
	// scale or range it lacks, text that is not a number); Target names the system.
	ReasonTypeMismatch = "type_mismatch"
	// ReasonRedelivery: a sink wrote an apply it had written before again (after a
	// restart), and it set nothing but agreed values: a duplicate.
	ReasonRedelivery = "redelivery"
)

// Decision is one output of the resolver. Which fields are set depends on Kind:
//
//   - KindApply: Target, Delete, Fields (canonical names; only what the apply sets),
//     Origin, Rule, Reason, EventID.
//   - KindConflict: Fields' names (ConflictFields), Winner, Loser, Rule.
//   - KindDLQ: EntryID, ConflictFields, Reason, Versions (each system's version of the
//     held fields), Base (the agreed value before the conflict, where known).
//   - KindSkip: Field, Reason.
//   - KindEcho, KindDuplicate: nothing more. KindIgnored, KindPoison: Reason.
//
// Record and System (the system of the causing event) are set on every decision that
// has them. Decisions borrow memory from the Output and the Change: they are valid until
// the next call that appends to the same Output.
type Decision struct {
	Kind   Kind
	Record string
	System string

	Target  string
	Delete  bool
	Fields  []Value
	Origin  string
	Rule    Rule
	Reason  string
	EventID string

	ConflictFields []string
	Winner         string
	Loser          string // the system whose concurrent change lost

	EntryID  string
	Versions []Version
	Base     []Value

	// SentMs is, on an echo, when the acknowledged apply was decided (concord's
	// clock): with the echo's timestamp it bounds the system's clock offset.
	SentMs int64

	Field string
}

// Version is one system's version of the fields in a DLQ entry.
type Version struct {
	System  string
	TsUs    int64
	Deleted bool
	Fields  []Value
}

// Output collects decisions. Reuse one Output across calls (Reset between events) to
// keep the hot path free of allocations.
type Output struct {
	Decisions []Decision

	scratch []Value // the event's changed fields
	fields  []Value // apply fields being assembled by fanOut
	targets []target
	// decided is the memory of the values a decider decides (decider.decided), reused
	// by the next one: no decision may borrow it, and a decider run inside another
	// (closeWindowForDelete's flushes) is given memory of its own.
	decided []Value
}

// Reset empties the output, keeping its memory.
func (o *Output) Reset() { o.Decisions = o.Decisions[:0] }

func (o *Output) add(d Decision) { o.Decisions = append(o.Decisions, d) }
