package resolver_test

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/concord-sync/concord/config"
	"github.com/concord-sync/concord/resolver"
)

// edit is one change a user made in a system, to check it is never silently lost.
type edit struct {
	system, record, field, value string
	decisions                    []resolver.Decision // what the resolver said about its event
}

// TestPropertyConvergence generates random interleavings of two systems editing
// shared records, with applies and echoes delivered in random order that keeps each
// system's own order, and checks that (a) every system ends with the same synced
// values except fields held in the DLQ, (b) every change is applied, loses by a
// recorded rule, or sits in the DLQ, and (c) applies are bounded by genuine changes.
func TestPropertyConvergence(t *testing.T) {
	for _, variant := range []struct {
		name   string
		modify func(*config.Config)
	}{
		{"field", func(*config.Config) {}},
		{"enforce_authority", func(c *config.Config) { c.Resolution.EnforceAuthority = true }},
		{"record", func(c *config.Config) { c.Resolution.Granularity = "record" }},
		{"pair_window", func(c *config.Config) { c.Resolution.PairWindow = config.Duration{Duration: 200 * time.Millisecond} }},
		{"delete_wins", func(c *config.Config) { c.Resolution.Deletes = "delete_wins" }},
		{"update_wins", func(c *config.Config) { c.Resolution.Deletes = "update_wins" }},
	} {
		t.Run(variant.name, func(t *testing.T) {
			rapid.Check(t, func(rt *rapid.T) {
				cfg := testConfig()
				variant.modify(cfg)
				runProperty(rt, cfg)
			})
		})
	}
}

func runProperty(rt *rapid.T, cfg *config.Config) {
	skew := rapid.Int64Range(-900, 900).Draw(rt, "billing_skew_ms")
	crm := newTable("crm", "id", "", rapid.Bool().Draw(rt, "crm_full_before"), 0)
	billing := newTable("billing", "cust_id", "updated_at", rapid.Bool().Draw(rt, "billing_full_before"), skew)
	w, err := newWorld(cfg, crm, billing)
	if err != nil {
		rt.Fatal(err)
	}
	records := []string{"r1", "r2", "r3"}
	fields := []string{"email", "name", "status", "notes", "phone"}
	deletes := rapid.Bool().Draw(rt, "with_deletes")
	var edits []*edit

	steps := rapid.IntRange(1, 120).Draw(rt, "steps")
	for i := range steps {
		switch action := rapid.IntRange(0, 9).Draw(rt, "action"); {
		case action <= 3: // a user edits a record
			sys := rapid.SampledFrom([]string{"crm", "billing"}).Draw(rt, "system")
			rec := rapid.SampledFrom(records).Draw(rt, "record")
			f := rapid.SampledFrom(fields).Draw(rt, "field")
			if !cfg.Resolution.EnforceAuthority && !mayWrite(cfg, sys, f) {
				f = "notes"
			}
			if deletes && rapid.IntRange(0, 9).Draw(rt, "delete") == 0 {
				e := &edit{system: sys, record: rec}
				w.tables[sys].write(rec, nil, w.nowMs, e)
				edits = append(edits, e)
				continue
			}
			val := strconv.Quote(fmt.Sprintf("%s-%s-%d", sys, f, i))
			col := w.r.Column(sys, f)
			if cur, ok := w.tables[sys].rows[rec]; ok && cur[col] == val {
				continue
			}
			e := &edit{system: sys, record: rec, field: f, value: val}
			w.tables[sys].write(rec, map[string]string{col: val}, w.nowMs, e)
			edits = append(edits, e)
		case action <= 6: // a system's change event reaches concord
			sys := rapid.SampledFrom([]string{"crm", "billing"}).Draw(rt, "cdc")
			if len(w.tables[sys].cdc) == 0 {
				continue
			}
			if err := w.deliver(sys); err != nil {
				rt.Fatal(err)
			}
		case action <= 8: // a sink applies what concord sent
			sys := rapid.SampledFrom([]string{"crm", "billing"}).Draw(rt, "sink")
			if len(w.tables[sys].inbox) > 0 {
				w.tables[sys].sink(w.r, w.nowMs)
			}
		default:
			w.nowMs += rapid.Int64Range(1, 400).Draw(rt, "advance_ms")
		}
		w.nowMs++
	}
	// Let everything in flight land and every pairing window close.
	if err := w.drain(); err != nil {
		rt.Fatal(err)
	}
	checkConverged(rt, w, cfg)
	checkNoSilentLoss(rt, w, edits, cfg.Resolution.PairWindow.Duration > 0)
	checkBoundedApplies(rt, w, len(edits)+countDeletes(w))
}

func mayWrite(cfg *config.Config, system, field string) bool {
	owner := cfg.Authority[field]
	return owner == config.Shared || owner == system
}

func checkConverged(rt *rapid.T, w *world, cfg *config.Config) {
	for rec, st := range w.states {
		crm, crmOK := w.canonicalRow("crm", rec)
		billing, billingOK := w.canonicalRow("billing", rec)
		if st.Hold != nil && st.Hold.Record {
			continue // the whole record is held for review
		}
		if crmOK != billingOK {
			rt.Fatalf("record %s exists in crm=%v billing=%v; decisions:\n%s", rec, crmOK, billingOK, dump(w, rec))
		}
		for f := range cfg.Authority {
			if st.Hold != nil && slices.Contains(st.Hold.Fields, f) {
				continue
			}
			if crm[f] != billing[f] && (crm[f] != "" && billing[f] != "" || !cfg.Resolution.EnforceAuthority) {
				if owner := cfg.Authority[f]; owner != config.Shared && (crm[f] == "" || billing[f] == "") {
					continue // an owned field the owner never set: nothing to enforce
				}
				rt.Fatalf("record %s field %s diverged: crm=%s billing=%s; hold=%+v\n%s", rec, f, crm[f], billing[f], st.Hold, dump(w, rec))
			}
		}
	}
}

// checkNoSilentLoss: every edit's event was decided visibly: its value was applied,
// or it lost or was skipped by a recorded rule, or it is in the DLQ, or it is what
// every system ends up holding anyway.
// Within the pairing window a system's successive changes to a field coalesce: only
// the last is decided, so with a window an edit its own system superseded counts.
func checkNoSilentLoss(rt *rapid.T, w *world, edits []*edit, coalesce bool) {
	for i, e := range edits {
		if e.field == "" {
			continue // a delete: convergence checks it
		}
		if accounted(w, e) || coalesce && supersededByAuthor(e, edits[i+1:]) {
			continue
		}
		rt.Fatalf("edit %+v was silently lost; its decisions: %+v\n%s\nedits: %s", *e, e.decisions, dump(w, e.record), editsOf(edits, e.record))
	}
}

func supersededByAuthor(e *edit, later []*edit) bool {
	for _, l := range later {
		if l.system == e.system && l.record == e.record && (l.field == e.field || l.field == "") {
			return true
		}
	}
	return false
}

func accounted(w *world, e *edit) bool {
	for _, d := range e.decisions {
		switch d.Kind {
		case resolver.KindApply:
			for _, f := range d.Fields {
				if f.Name == e.field {
					return true
				}
			}
		case resolver.KindConflict, resolver.KindDLQ:
			if slices.Contains(d.ConflictFields, e.field) {
				return true
			}
		case resolver.KindSkip:
			if d.Field == e.field {
				return true
			}
		}
	}
	// Decided later (pairing window) or agreed already: look for it in the whole log.
	for _, d := range w.log {
		if d.Record != e.record || d.Origin != e.system || d.Kind != resolver.KindApply {
			continue
		}
		for _, f := range d.Fields {
			if f.Name == e.field && string(f.Value) == e.value {
				return true
			}
		}
	}
	for _, d := range w.log {
		if d.Record == e.record && (d.Kind == resolver.KindConflict || d.Kind == resolver.KindDLQ) && slices.Contains(d.ConflictFields, e.field) {
			return true
		}
	}
	crm, _ := w.canonicalRow("crm", e.record)
	billing, _ := w.canonicalRow("billing", e.record)
	return crm[e.field] == e.value && billing[e.field] == e.value
}

func checkBoundedApplies(rt *rapid.T, w *world, genuine int) {
	applies := 0
	for _, d := range w.log {
		if d.Kind == resolver.KindApply {
			applies++
		}
	}
	if limit := 3*genuine + 2; applies > limit {
		rt.Fatalf("%d applies for %d genuine changes (limit %d): a loop", applies, genuine, limit)
	}
}

func countDeletes(w *world) int {
	n := 0
	for _, d := range w.log {
		if d.Kind == resolver.KindApply && d.Delete {
			n++
		}
	}
	return n
}

func dump(w *world, record string) string {
	s := ""
	for _, d := range w.log {
		if d.Record != record {
			continue
		}
		s += fmt.Sprintf("  %s sys=%s target=%s del=%v fields=%s rule=%s reason=%s conflict=%v winner=%s\n",
			d.Kind, d.System, d.Target, d.Delete, fieldsString(d.Fields), d.Rule, d.Reason, d.ConflictFields, d.Winner)
	}
	crm, _ := w.canonicalRow("crm", record)
	billing, _ := w.canonicalRow("billing", record)
	if st := w.states[record]; st != nil {
		s += fmt.Sprintf("  state: %+v\n", *st)
	}
	return s + fmt.Sprintf("  crm=%v\n  billing=%v\n", crm, billing)
}

func fieldsString(vs []resolver.Value) string {
	s := ""
	for _, v := range vs {
		s += v.Name + "=" + string(v.Value) + " "
	}
	return s
}

func editsOf(edits []*edit, record string) string {
	s := ""
	for _, e := range edits {
		if e.record == record {
			s += fmt.Sprintf("%s:%s=%s ", e.system, e.field, e.value)
		}
	}
	return s
}
