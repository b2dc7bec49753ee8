package resolver

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/concord-sync/concord/codecs"
	"github.com/concord-sync/concord/config"
)

// Resolver decides what every system must apply. It is built from a validated
// configuration and is immutable: any number of goroutines may call its methods at
// once, each with its own State and Output. A configuration reload builds a new one.
type Resolver struct {
	systems []systemRules // sorted by name
	keys    []string      // canonical key fields, in configured order
	owner   map[string]string

	unmappedShared   bool
	recordGranular   bool
	deletes          string
	propagateDeletes bool
	enforce          bool
	pairWindow       time.Duration
	tombstone        time.Duration
	applyTimeout     time.Duration
	prefer           string
	loopMax          uint32
	loopWindow       time.Duration
	tolerance        time.Duration
	pairTolerance    map[[2]string]time.Duration
	widenOpt         bool                     // resolution.widen_by_clock_uncertainty
	widen            map[string]time.Duration // per system: added to the tolerance
	types            ColumnTypes              // the targets' column types, where known
}

// ColumnTypes are the known types of the systems' columns: system -> column -> type,
// learned from the Connect schemas of each system's own events or configured
// (systems.<s>.columns). A column missing from it has an unknown type.
type ColumnTypes map[string]map[string]codecs.ColumnType

// WithColumnTypes returns the resolver with the targets' column types, so that it
// never sends a value a target column cannot hold (it goes to review with reason
// type_mismatch instead) and applies are encoded in the columns' types. The
// resolver stays pure: the types are an input, kept by the pipeline; types must not
// be changed afterwards.
func (r *Resolver) WithColumnTypes(types ColumnTypes) *Resolver {
	if len(types) == 0 {
		return r
	}
	c := *r
	c.types = types
	return &c
}

// ColumnType returns the type of a system's column: configured
// (systems.<s>.columns), else learned (WithColumnTypes), else the zero ColumnType,
// which the encoder infers from each value.
//
// For a system whose apply topic the Confluent JDBC sink reads, the type is the one
// that sink can bind (codecs.ColumnType.ForConfluent).
func (r *Resolver) ColumnType(system, column string) codecs.ColumnType {
	sr := r.system(system)
	if sr == nil {
		return codecs.ColumnType{}
	}
	t, ok := sr.cfg.ColumnType(column)
	if !ok {
		t = r.types[system][column]
	}
	if sr.cfg.Apply.Sink == config.SinkConfluent && t.Known() {
		t = t.ForConfluent()
	}
	return t
}

// typed reports whether any column of a system has a known type.
func (r *Resolver) typed(system string) bool {
	if len(r.types[system]) > 0 {
		return true
	}
	sr := r.system(system)
	return sr != nil && len(sr.cfg.Columns) > 0
}

type systemRules struct {
	name    string
	cfg     *config.System // column mapping (Column, FieldOf)
	keyCols []string       // columns of the key fields, in key order
	tsCol   string         // "" when the timestamp is source.ts_ms
	marker  string         // origin marker column, "" for none
	// fields is the field each column holds where that is not the column's own
	// name: "" for a column that holds no synced field (a key, timestamp or marker
	// column, or one a mapping shadows). Built once, so that a row's column costs one
	// lookup; cfg.FieldOf gives the same for the rest.
	fields map[string]string
	// few is fields as a list while it is short, scanned in place of the map: a
	// handful of names compared by length and last byte first (sameName) is cheaper
	// than a map lookup, and every column of every row is looked up.
	few []columnField
	// unavailable are the canonical values Debezium sends for an unchanged TOASTed
	// column: the placeholder as a string, and as bytes (base64) for binary columns.
	unavailable [2][]byte
}

// Deletes policies.
const (
	DeletesReview     = "review"
	DeletesDeleteWins = "delete_wins"
	DeletesUpdateWins = "update_wins"
)

// New builds a resolver from a configuration that has passed Validate.
func New(cfg *config.Config) (*Resolver, error) {
	if len(cfg.Systems) < 2 {
		return nil, errors.New("resolver: need at least two systems")
	}
	res := cfg.Resolution
	r := &Resolver{
		owner:            make(map[string]string, len(cfg.Authority)),
		unmappedShared:   res.UnmappedFields == "shared",
		recordGranular:   res.Granularity == "record",
		deletes:          res.Deletes,
		propagateDeletes: res.PropagateDeletes == nil || *res.PropagateDeletes,
		enforce:          res.EnforceAuthority,
		pairWindow:       res.PairWindow.Duration,
		tombstone:        res.TombstoneRetention.Duration,
		applyTimeout:     res.ApplyTimeout.Duration,
		prefer:           res.InitialLoadPrefer,
		loopMax:          uint32(max(res.LoopGuard.MaxApplies, 1)),
		loopWindow:       res.LoopGuard.Window.Duration,
		tolerance:        res.ClockSkewTolerance.Duration,
		pairTolerance:    make(map[[2]string]time.Duration),
		widenOpt:         res.WidenByClockUncertainty,
	}
	if r.deletes == "" {
		r.deletes = DeletesReview
	}
	for field, owner := range cfg.Authority {
		if owner == config.Shared {
			owner = ""
		}
		r.owner[field] = owner
	}
	for _, o := range res.ClockSkewOverrides {
		if len(o.Systems) == 2 {
			r.pairTolerance[pairKey(o.Systems[0], o.Systems[1])] = o.Tolerance.Duration
		}
	}
	names := make([]string, 0, len(cfg.Systems))
	for name := range cfg.Systems {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		sr, err := compileSystem(name, cfg.Systems[name])
		if err != nil {
			return nil, err
		}
		if r.keys == nil {
			r.keys = cfg.Systems[name].Key
		}
		r.systems = append(r.systems, sr)
	}
	return r, nil
}

func compileSystem(name string, s *config.System) (systemRules, error) {
	sr := systemRules{name: name, cfg: s, marker: s.OriginMarker}
	placeholder := s.UnavailablePlaceholder
	if placeholder == "" {
		placeholder = config.DefaultUnavailablePlaceholder
	}
	// In the canonical form the decoder gives (json.Marshal alone escapes <, > and &
	// as \u003c…, which no decoded value is).
	for i, v := range []any{placeholder, []byte(placeholder)} { // bytes: base64, as JsonConverter writes them
		raw, _ := json.Marshal(v)
		canonical, err := codecs.Canonicalize(raw)
		if err != nil {
			return sr, fmt.Errorf("resolver: systems.%s.unavailable_value_placeholder: %w", name, err)
		}
		sr.unavailable[i] = canonical
	}
	if len(s.Key) == 0 {
		return sr, fmt.Errorf("resolver: systems.%s.key: required", name)
	}
	for _, k := range s.Key {
		sr.keyCols = append(sr.keyCols, sr.column(k))
	}
	sr.tsCol, _ = s.TimestampColumn()
	sr.fields = make(map[string]string, 2*len(s.Fields)+len(sr.keyCols)+2)
	for field, column := range s.Fields {
		sr.fields[column] = s.FieldOf(column)
		sr.fields[field] = s.FieldOf(field)
	}
	for _, c := range append([]string{sr.tsCol, sr.marker}, sr.keyCols...) {
		sr.fields[c] = ""
	}
	if len(sr.fields) <= maxFewFields {
		for column, field := range sr.fields {
			sr.few = append(sr.few, columnField{column, field})
		}
	}
	return sr, nil
}

// columnField is an entry of systemRules.fields.
type columnField struct{ column, field string }

// maxFewFields is the most entries of systemRules.fields kept as a list.
const maxFewFields = 8

// fieldOf returns the synced field a column holds, or "" when it holds none.
func (sr *systemRules) fieldOf(column string) string {
	if len(sr.fields) <= maxFewFields {
		for i := range sr.few {
			if sameName(sr.few[i].column, column) {
				return sr.few[i].field
			}
		}
		return column
	}
	if field, ok := sr.fields[column]; ok {
		return field
	}
	return column
}

func (sr *systemRules) column(field string) string { return sr.cfg.Column(field) }

func pairKey(a, b string) [2]string {
	if a > b {
		a, b = b, a
	}
	return [2]string{a, b}
}

// Systems returns the configured system names, sorted.
func (r *Resolver) Systems() []string {
	names := make([]string, len(r.systems))
	for i := range r.systems {
		names[i] = r.systems[i].name
	}
	return names
}

// Column returns the column of a canonical field in a system.
func (r *Resolver) Column(system, field string) string {
	if sr := r.system(system); sr != nil {
		return sr.column(field)
	}
	return field
}

// KeyColumns returns a system's key columns, in key order.
func (r *Resolver) KeyColumns(system string) []string {
	if sr := r.system(system); sr != nil {
		return sr.keyCols
	}
	return nil
}

// KeepsValues reports whether the agreed image keeps values, not just fingerprints:
// needed to re-apply a value nobody is sending any more (enforce_authority, a record
// re-created after a delete lost, a whole-row last-write-wins, the values a system
// that deleted the record was never sent when deletes are not propagated).
func (r *Resolver) KeepsValues() bool {
	return r.enforce || r.deletes != DeletesDeleteWins || r.recordGranular || !r.propagateDeletes
}

// keepsValue reports whether the agreed image keeps a field's value: every field
// when KeepsValues, else the owned ones, whose owner's value a create into a system
// that lacks the record must carry (the creating row may hold a non-owner's value).
func (r *Resolver) keepsValue(field string) bool {
	if r.KeepsValues() {
		return true
	}
	class, _ := r.classify(field)
	return class == classOwned
}

// TombstoneRetention is how long a deleted record's state is kept once idle.
func (r *Resolver) TombstoneRetention() time.Duration { return r.tombstone }

func (r *Resolver) system(name string) *systemRules {
	for i := range r.systems {
		if r.systems[i].name == name {
			return &r.systems[i]
		}
	}
	return nil
}

func (r *Resolver) toleranceUs(a, b string) int64 {
	t, ok := r.pairTolerance[pairKey(a, b)]
	if !ok {
		t = r.tolerance
	}
	return (t + r.widen[a] + r.widen[b]).Microseconds()
}

// echoClockMargin is added to the clock-skew tolerance when telling whether an event
// was committed before an apply was sent. The measured clock offsets are learned from
// echoes, which this rule gates, so it cannot rest on them alone: a missed echo is
// worse than an edit taken for one.
const echoClockMargin = 5 * time.Second

// echoSlackMs is how much earlier than an apply was sent a system's event may be
// committed and still be its echo: the clock-skew tolerance and echoClockMargin,
// widened by the system's measured clock uncertainty when widening is on.
func (r *Resolver) echoSlackMs(system string) int64 {
	return (r.tolerance + echoClockMargin + r.widen[system]).Milliseconds()
}

// WidensByClockUncertainty reports whether resolution.widen_by_clock_uncertainty is
// on, so callers measure the uncertainties only when they are used.
func (r *Resolver) WidensByClockUncertainty() bool { return r.widenOpt }

// Widened returns the resolver with each system's clock uncertainty added to the
// clock-skew tolerance of every pair it is in, when
// resolution.widen_by_clock_uncertainty is on; else the resolver itself. The
// resolver stays pure: the uncertainties are an input, measured by the pipeline.
func (r *Resolver) Widened(uncertainty map[string]time.Duration) *Resolver {
	if !r.widenOpt || len(uncertainty) == 0 {
		return r
	}
	c := *r
	c.widen = uncertainty
	return &c
}

// fieldClass says how a canonical field is resolved.
type fieldClass uint8

const (
	classShared fieldClass = iota
	classOwned
	classUnmapped // not in the authority map and unmapped_fields: skip
)

func (r *Resolver) classify(field string) (fieldClass, string) {
	owner, ok := r.owner[field]
	switch {
	case !ok && !r.unmappedShared:
		return classUnmapped, ""
	case owner == "":
		return classShared, ""
	default:
		return classOwned, owner
	}
}
