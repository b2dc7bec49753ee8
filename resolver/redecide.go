package resolver

import (
	"slices"
)

// Redecision is how the current rules decide a held conflict, as a reviewer would
// decide its DLQ entry: Pick (one system's version of everything, a delete
// included), or Fields (per field, the system whose version wins).
type Redecision struct {
	Pick   string
	Fields map[string]string
	Rules  map[string]Rule // field (or "" for a Pick) -> the rule that decided it
}

// Redecide says how the rules decide a held conflict between the systems' versions
// of fields (a DLQ entry's latest versions, after an authority change, a new
// tolerance or delete strategy), or false when they still cannot:
//
//   - clock_skew (with later changes attached): per field, the owner's version of an
//     owned field; for a shared field, the latest version when it is later than every
//     other by more than the pair's clock-skew tolerance. A field with no owner's
//     version, an unmapped field, or versions within the tolerance stay undecided.
//   - delete_vs_update: resolution.deletes delete_wins picks the deleting system,
//     update_wins the one system that updated.
//
// Every other reason (a loop, an unconfirmed apply, a possible redelivery, a type
// mismatch, an initial divergence) is not a rule's to decide: false. So is an entry
// holding the whole record whose fields would go to different systems. Redecide is
// pure: the caller applies the result through the ordinary review path.
func (r *Resolver) Redecide(reasons []string, fields []string, versions []Version, wholeRecord bool) (Redecision, bool) {
	for _, reason := range reasons {
		switch reason {
		case ReasonClockSkew, ReasonAttached, ReasonDeleteVsUpdate:
		default:
			return Redecision{}, false
		}
	}
	if slices.Contains(reasons, ReasonDeleteVsUpdate) {
		return r.redecideDelete(versions)
	}
	if len(reasons) == 0 || !slices.Contains(reasons, ReasonClockSkew) {
		return Redecision{}, false
	}
	d := Redecision{Fields: map[string]string{}, Rules: map[string]Rule{}}
	for _, f := range fields {
		sys, rule, ok := r.redecideField(f, versions)
		if !ok {
			return Redecision{}, false
		}
		d.Fields[f], d.Rules[f] = sys, rule
	}
	if wholeRecord {
		// One system's version of the whole record, or nothing.
		var pick string
		for _, sys := range d.Fields {
			if pick != "" && sys != pick {
				return Redecision{}, false
			}
			pick = sys
		}
		if pick == "" {
			return Redecision{}, false
		}
		return Redecision{Pick: pick, Rules: map[string]Rule{"": RuleLWW}}, true
	}
	return d, true
}

func (r *Resolver) redecideField(field string, versions []Version) (string, Rule, bool) {
	var with []Version // the versions that have the field
	for _, v := range versions {
		if _, ok := findValue(v.Fields, field); ok && !v.Deleted {
			with = append(with, v)
		}
	}
	switch class, owner := r.classify(field); class {
	case classOwned:
		for _, v := range with {
			if v.System == owner {
				return owner, RuleAuthority, true
			}
		}
		return "", "", false
	case classUnmapped:
		return "", "", false
	}
	if len(with) < 2 {
		return "", "", false
	}
	latest := with[0]
	for _, v := range with[1:] {
		if v.TsUs > latest.TsUs {
			latest = v
		}
	}
	for _, v := range with {
		if v.System != latest.System && latest.TsUs-v.TsUs <= r.toleranceUs(latest.System, v.System) {
			return "", "", false
		}
	}
	return latest.System, RuleLWW, true
}

func (r *Resolver) redecideDelete(versions []Version) (Redecision, bool) {
	var deleters, updaters []string
	for _, v := range versions {
		if v.Deleted {
			deleters = append(deleters, v.System)
		} else {
			updaters = append(updaters, v.System)
		}
	}
	switch {
	case r.deletes == DeletesDeleteWins && len(deleters) > 0:
		return Redecision{Pick: deleters[0], Rules: map[string]Rule{"": RuleDeleteWins}}, true
	case r.deletes == DeletesUpdateWins && len(updaters) == 1:
		return Redecision{Pick: updaters[0], Rules: map[string]Rule{"": RuleUpdateWins}}, true
	}
	return Redecision{}, false
}
