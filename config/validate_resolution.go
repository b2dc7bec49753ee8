package config

import (
	"fmt"
	"slices"
)

// authority checks that each entry names a synced field and a system (or shared).
func (v *validator) authority() {
	keyFields := v.allKeyFields()
	for _, field := range sortedKeys(v.c.Authority) {
		owner, key := v.c.Authority[field], "authority."+field
		switch {
		case field == "":
			v.add("authority", "empty field name")
		case slices.Contains(keyFields, field):
			v.add(key, "%q is a key field; key fields identify the record and are never resolved", field)
		case owner != Shared && !v.isSystem(owner):
			v.add(key, "%q is not a system (%s) or %q", owner, v.systemList(), Shared)
		}
		if clock := v.clockOf(field); clock != "" {
			v.add(key, "%q is the timestamp column of systems.%s, its own clock, which is never synced", field, clock)
		}
	}
}

// allKeyFields returns every system's key fields (they differ only in an invalid Config).
func (v *validator) allKeyFields() []string {
	var fields []string
	for _, s := range v.c.Systems {
		if s != nil {
			fields = append(fields, s.Key...)
		}
	}
	return fields
}

// clockOf returns the system whose timestamp column holds canonical field, or "".
func (v *validator) clockOf(field string) string {
	for _, name := range v.c.SystemNames() {
		s := v.c.Systems[name]
		if s == nil {
			continue
		}
		if column, ok := s.TimestampColumn(); ok && s.FieldOf(column) == field {
			return name
		}
	}
	return ""
}

func (v *validator) resolution() {
	const key = "resolution."
	r := &v.c.Resolution
	v.checkEnum(key+"granularity", r.Granularity, GranularityField, GranularityRecord)
	v.checkEnum(key+"deletes", r.Deletes, DeletesReview, DeletesDeleteWins, DeletesUpdateWins)
	v.checkEnum(key+"unmapped_fields", r.UnmappedFields, UnmappedSkip, UnmappedShared)
	v.checkDuration(key+"clock_skew_tolerance", r.ClockSkewTolerance)
	v.checkDuration(key+"pair_window", r.PairWindow)
	v.checkDuration(key+"tombstone_retention", r.TombstoneRetention)
	v.checkPositive(key+"apply_timeout", r.ApplyTimeout)
	v.checkPositive(key+"loop_guard.window", r.LoopGuard.Window)
	if r.LoopGuard.MaxApplies < 1 {
		v.add(key+"loop_guard.max_applies", "must be at least 1 (got %d)", r.LoopGuard.MaxApplies)
	}
	if p := r.InitialLoadPrefer; p != "" && !v.isSystem(p) {
		v.add(key+"initial_load_prefer", "%q is not a system (%s)", p, v.systemList())
	}
	v.overrides(r.ClockSkewOverrides)
}

// overrides checks that each clock-skew override names a distinct pair of known systems.
func (v *validator) overrides(overrides []SkewOverride) {
	seen := map[[2]string]int{}
	for i, o := range overrides {
		key := fmt.Sprintf("resolution.clock_skew_overrides[%d]", i)
		v.checkDuration(key+".tolerance", o.Tolerance)
		if !v.pair(key+".systems", o.Systems) {
			continue
		}
		pair := [2]string{min(o.Systems[0], o.Systems[1]), max(o.Systems[0], o.Systems[1])}
		if prev, dup := seen[pair]; dup {
			v.add(key+".systems", "the pair %s/%s is already set by resolution.clock_skew_overrides[%d]", pair[0], pair[1], prev)
			continue
		}
		seen[pair] = i
	}
}

// pair checks that systems names exactly two distinct known systems.
func (v *validator) pair(key string, systems []string) bool {
	if len(systems) != 2 {
		v.add(key, "must name exactly two systems, found %d", len(systems))
		return false
	}
	ok := true
	for _, s := range systems {
		if !v.isSystem(s) {
			v.add(key, "%q is not a system (%s)", s, v.systemList())
			ok = false
		}
	}
	if ok && systems[0] == systems[1] {
		v.add(key, "names %s twice; it must name two different systems", systems[0])
		ok = false
	}
	return ok
}
