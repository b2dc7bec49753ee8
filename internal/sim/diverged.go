package sim

import "slices"

// Diverged returns, sorted, the records whose given canonical fields differ between
// two systems' tables (or that exist in one table only), setting aside what held
// marks as held in the DLQ: held[record][field], or held[record]["*"] for the whole
// record. It is the demo's diverged_records.
func (s *Sim) Diverged(a, b string, fields []string, held map[string]map[string]bool) []string {
	rowsA, rowsB := s.Rows(a), s.Rows(b)
	var out []string
	for r := range union(rowsA, rowsB) {
		if differ(rowsA[r], rowsB[r], fields, held[r]) {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}

func union(a, b map[string]map[string]string) map[string]bool {
	all := make(map[string]bool, len(a)+len(b))
	for r := range a {
		all[r] = true
	}
	for r := range b {
		all[r] = true
	}
	return all
}

func differ(a, b map[string]string, fields []string, held map[string]bool) bool {
	if held["*"] {
		return false
	}
	if (a == nil) != (b == nil) {
		return true
	}
	for _, f := range fields {
		if !held[f] && a[f] != b[f] {
			return true
		}
	}
	return false
}
