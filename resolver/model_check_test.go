package resolver_test

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/concord-sync/concord/config"
	"github.com/concord-sync/concord/resolver"
)

var modelSave = flag.String("model.save", "", "directory to write a failing (shrunk) history to, as <name>.json (variant and actions, a regression test once in testdata/model) and <name>.jsonl (the replay input)")

// TestModel runs random histories against the world model and checks every one
// (checkHistory). `-rapid.checks=N` sets how many; `-model.save=../testdata/model`
// keeps the shrunk failure as a regression case.
func TestModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		v := drawVariant(rt)
		acts := rapid.SliceOfN(actionGen(len(v.Systems)), 1, 60).Draw(rt, "actions")
		if err := checkHistory(v, acts); err != nil {
			saveFailure(rt, v, acts)
			rt.Fatal(err)
		}
	})
}

// TestModelRegressions re-runs every history kept in testdata/model: the shrunk
// failures of earlier runs and the cases of the issues that found them.
func TestModelRegressions(t *testing.T) {
	files, err := filepath.Glob("../testdata/model/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no histories in testdata/model")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var h savedHistory
			if err := json.Unmarshal(b, &h); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if err := checkHistory(h.Variant, h.Actions); err != nil {
				t.Fatalf("%s\n%s", h.About, err)
			}
		})
	}
}

// savedHistory is a history kept as a regression case.
type savedHistory struct {
	About   string   `json:"about"`
	Variant variant  `json:"variant"`
	Actions []action `json:"actions"`
}

func saveFailure(rt *rapid.T, v variant, acts []action) {
	if *modelSave == "" {
		return
	}
	m, _ := runHistory(v, acts)
	name := filepath.Join(*modelSave, "failure")
	b, _ := json.MarshalIndent(savedHistory{About: "shrunk by TestModel", Variant: v, Actions: acts}, "", " ")
	if err := os.WriteFile(name+".json", append(b, '\n'), 0o644); err != nil {
		rt.Logf("saving the failure: %v", err)
	}
	if m != nil {
		_ = os.WriteFile(name+".jsonl", []byte(strings.Join(m.replayLines(), "\n")+"\n"), 0o644)
	}
}

func drawVariant(rt *rapid.T) variant {
	n := rapid.IntRange(2, 3).Draw(rt, "systems")
	v := variant{
		Granularity: rapid.SampledFrom([]string{config.GranularityField, config.GranularityRecord}).Draw(rt, "granularity"),
		Deletes:     rapid.SampledFrom([]string{config.DeletesReview, config.DeletesDeleteWins, config.DeletesUpdateWins}).Draw(rt, "deletes"),
		NoPropagate: rapid.IntRange(0, 5).Draw(rt, "no_propagate") == 0,
		Unmapped:    rapid.SampledFrom([]string{config.UnmappedSkip, config.UnmappedShared}).Draw(rt, "unmapped"),
		Enforce:     rapid.Bool().Draw(rt, "enforce"),
		ToleranceMs: rapid.SampledFrom([]int{500, 100}).Draw(rt, "tolerance"),
		InitialLoad: rapid.IntRange(0, 3).Draw(rt, "initial_load") == 0,
	}
	if rapid.IntRange(0, 3).Draw(rt, "windowed") == 0 {
		v.PairWindowMs = rapid.SampledFrom([]int{50, 300}).Draw(rt, "pair_window")
	}
	if rapid.IntRange(0, 4).Draw(rt, "short_apply_timeout") == 0 {
		v.ApplyTimeoutMs = 2000
	}
	if v.InitialLoad && rapid.Bool().Draw(rt, "prefer") {
		v.Prefer = systemNames[rapid.IntRange(0, n-1).Draw(rt, "prefer_system")]
	}
	maxSkew := v.ToleranceMs / 2
	for i := range n {
		v.Systems = append(v.Systems, sysVariant{
			TsColumn:   rapid.Bool().Draw(rt, fmt.Sprintf("s%d_ts_column", i)),
			FullBefore: rapid.Bool().Draw(rt, fmt.Sprintf("s%d_full_before", i)),
			Marker:     rapid.IntRange(0, 3).Draw(rt, fmt.Sprintf("s%d_marker", i)) == 0,
			Own:        rapid.Bool().Draw(rt, fmt.Sprintf("s%d_own", i)),
			Flat:       rapid.IntRange(0, 3).Draw(rt, fmt.Sprintf("s%d_flat", i)) == 0,
			SkewMs:     rapid.IntRange(-maxSkew, maxSkew).Draw(rt, fmt.Sprintf("s%d_skew", i)),
			DriftMs:    rapid.SampledFrom([]int{0, 0, maxSkew}).Draw(rt, fmt.Sprintf("s%d_drift", i)),
			Toast:      rapid.IntRange(0, 3).Draw(rt, fmt.Sprintf("s%d_toast", i)) == 0,
		})
	}
	return v
}

func actionGen(systems int) *rapid.Generator[action] {
	return rapid.Custom(func(rt *rapid.T) action {
		// Deliveries and sink writes are drawn as often as edits, so that histories
		// interleave them every way, and are what the drain does at the end anyway.
		kind := rapid.SampledFrom([]actionKind{
			actEdit, actEdit, actEdit, actTouch, actOwn, actDelete,
			actDeliver, actDeliver, actDeliver, actDeliver, actSink, actSink, actSink, actSink,
			actTick, actCommit, actCommit, actRestart,
		}).Draw(rt, "kind")
		return action{
			Kind:   kind,
			System: rapid.IntRange(0, systems-1).Draw(rt, "system"),
			Record: rapid.IntRange(0, modelRecords-1).Draw(rt, "record"),
			Fields: uint8(rapid.IntRange(1, 31).Draw(rt, "fields")),
			Ms:     rapid.SampledFrom([]int{0, 1, 5, 20, 200, 1500}).Draw(rt, "ms"),
		}
	})
}

// checkHistory runs a history twice and checks it: the same decisions both times
// (determinism), echo attribution against the ground truth (checked as it runs),
// unique event ids, bounded applies, convergence outside the DLQ, and that every
// genuine write is final everywhere or superseded by a later one or by a recorded
// decision.
func checkHistory(v variant, acts []action) error {
	m, err := runHistory(v, acts)
	if err != nil {
		return explain(m, err)
	}
	again, err := runHistory(v, acts)
	if err != nil {
		return explain(again, fmt.Errorf("second run: %w", err))
	}
	if a, b := decisionsText(m), decisionsText(again); a != b {
		return explain(m, errors.New("not deterministic: the same history gave other decisions"))
	}
	for _, check := range []func() error{
		func() error {
			if m.failure != "" {
				return errors.New(m.failure)
			}
			return nil
		},
		m.checkUniqueIDs, m.checkBounded, m.checkConverged, m.checkNoSilentLoss,
	} {
		if err := check(); err != nil {
			return explain(m, err)
		}
	}
	return nil
}

func decisionsText(m *model) string {
	var b strings.Builder
	for _, d := range m.log {
		fmt.Fprintf(&b, "%d %+v\n", d.atMs, d.Decision)
	}
	return b.String()
}

func (m *model) checkUniqueIDs() error {
	seen := map[string]bool{}
	for _, d := range m.log {
		if d.Kind != resolver.KindApply {
			continue
		}
		if seen[d.EventID] {
			return fmt.Errorf("event id %s names two applies", d.EventID)
		}
		seen[d.EventID] = true
	}
	return nil
}

// checkBounded checks that applies stay proportional to what the users did: each
// genuine change reaches each other system a bounded number of times.
func (m *model) checkBounded() error {
	genuine := len(m.writes) + len(m.deliv)/4 + 1
	if limit := 4 * genuine * len(m.systems); m.applies > limit {
		return fmt.Errorf("%d applies for %d genuine writes: more than %d", m.applies, len(m.writes), limit)
	}
	return nil
}

// synced lists the canonical fields concord syncs in this variant.
func (m *model) synced() []string {
	fields := []string{"name", "status", "notes", "phone"}
	if m.v.Unmapped == config.UnmappedShared {
		fields = append(fields, "extra")
	}
	return fields
}

// held reports whether a field of a record waits in the DLQ at the end.
func (m *model) held(record, field string) bool {
	st := m.states[record]
	return st != nil && st.Hold != nil && (st.Hold.Record || slices.Contains(st.Hold.Fields, field))
}

// checkConverged checks that the systems hold the same values of every synced field
// outside the DLQ, and the same records (deletes not propagated aside).
func (m *model) checkConverged() error {
	for rec := range modelRecords {
		id := recordName(rec)
		if m.held(id, "*") {
			continue
		}
		var ref *mSystem
		var refRow map[string]string
		for _, s := range m.systems {
			row, ok := s.tbl.Row(id)
			if !ok {
				if !m.v.NoPropagate && m.anyHas(id) && !m.heldRecord(id) {
					return fmt.Errorf("record %s: %s has no row while others do", id, s.name)
				}
				continue
			}
			if ref == nil {
				ref, refRow = s, row
				continue
			}
			for _, f := range m.synced() {
				if m.held(id, f) {
					continue
				}
				a, b := refRow[ref.cols[f]], row[s.cols[f]]
				if a != b && !m.skippedOwned(id, f, ref.name, s.name) {
					return fmt.Errorf("record %s field %s diverged: %s=%s %s=%s", id, f, ref.name, a, s.name, b)
				}
			}
		}
	}
	return nil
}

// skippedOwned reports whether two systems may differ on an owned field: without
// enforce_authority a non-owner's change of it is skipped, and recorded so.
func (m *model) skippedOwned(id, field string, systems ...string) bool {
	owner := map[string]string{"name": "crm", "status": "billing"}[field]
	if owner == "" || m.v.Enforce {
		return false
	}
	for _, sys := range systems {
		if sys == owner {
			continue
		}
		for _, d := range m.log {
			if d.Kind == resolver.KindSkip && d.Record == id && d.System == sys && d.Field == field {
				return true
			}
		}
	}
	return false
}

func (m *model) anyHas(id string) bool {
	for _, s := range m.systems {
		if s.tbl.Has(id) {
			return true
		}
	}
	return false
}

func (m *model) heldRecord(id string) bool {
	st := m.states[id]
	return st != nil && st.Hold != nil && st.Hold.Record
}

// checkNoSilentLoss checks every genuine write: its value is final in every system
// holding the record, a later genuine write of the field or delete of the record
// superseded it, or a recorded decision accounts for it (a conflict it lost, a DLQ
// entry or hold on the field, a skip of a non-owner's change).
func (m *model) checkNoSilentLoss() error {
	for _, w := range m.writes {
		if w.field == "" || !slices.Contains(m.synced(), w.field) {
			continue
		}
		if m.final(w) || m.superseded(w) || m.accounted(w) {
			continue
		}
		return fmt.Errorf("%s's write of %s=%s on %s (at +%dms) was lost: not final, not superseded, no decision records it",
			w.system, w.field, w.value, w.record, w.atMs-modelStartMs)
	}
	return nil
}

func (m *model) final(w userWrite) bool {
	present := false
	for _, s := range m.systems {
		row, ok := s.tbl.Row(w.record)
		if !ok {
			continue
		}
		present = true
		if row[s.cols[w.field]] != w.value && !m.skippedOwned(w.record, w.field, s.name) {
			return false
		}
	}
	return present
}

// superseded reports whether a later genuine write of the field, or a later delete
// of the record, replaced the write. A delete that lost (update_wins, or held for
// review) supersedes nothing: the record lives on with its values.
func (m *model) superseded(w userWrite) bool {
	for _, l := range m.writes[w.seq+1:] {
		if l.record != w.record || l.atMs < w.atMs {
			continue
		}
		if l.field == w.field || l.field == "" && !m.deleteLost(l) {
			return true
		}
	}
	return false
}

// deleteLost reports whether a decision made a delete lose, or held it for review.
func (m *model) deleteLost(del userWrite) bool {
	for _, d := range m.log {
		if d.Record != del.record || d.atMs < del.atMs {
			continue
		}
		if d.Kind == resolver.KindConflict && d.Rule == resolver.RuleUpdateWins && d.Loser == del.system ||
			d.Kind == resolver.KindDLQ && (d.Reason == resolver.ReasonDeleteVsUpdate || d.Reason == resolver.ReasonDeleteHeld || d.Reason == resolver.ReasonPossibleRedelivery) {
			return true
		}
	}
	return false
}

func (m *model) accounted(w userWrite) bool {
	if m.held(w.record, w.field) {
		return true
	}
	for _, d := range m.log {
		if d.Record != w.record || d.atMs < w.atMs {
			continue
		}
		switch d.Kind {
		case resolver.KindConflict:
			if d.Loser == w.system && d.Rule == resolver.RuleUpdateWins && m.lostToUpdate(d, w) {
				return true
			}
			if d.Loser == w.system && d.Rule != resolver.RuleUpdateWins &&
				(slices.Contains(d.ConflictFields, w.field) || d.Rule == resolver.RuleDeleteWins) &&
				(d.Rule != resolver.RuleLWW || m.wrote(d.Winner, w.record, w.field)) {
				return true
			}
		case resolver.KindDLQ:
			if slices.Contains(d.ConflictFields, w.field) || d.Reason == resolver.ReasonDeleteVsUpdate || d.Reason == resolver.ReasonLoop || d.Reason == resolver.ReasonPossibleRedelivery {
				return true
			}
		case resolver.KindSkip:
			if d.System == w.system && d.Field == w.field && d.Reason == resolver.ReasonNotAuthoritative {
				return true
			}
		}
	}
	return false
}

// wrote reports whether a system's user ever wrote the field of the record (with
// granularity record, any field of it): a last-write-wins conflict only accounts for
// a loss when the winner did (an echo taken for the system's own write is not a
// write that can win).
func (m *model) wrote(system, record, field string) bool {
	whole := m.v.Granularity == config.GranularityRecord // the later row wins: writing the row is writing every field
	for _, w := range m.writes {
		if w.system == system && w.record == record && (w.field == field || whole) {
			return true
		}
	}
	return false
}

// lostToUpdate reports whether a write lost to the version an update_wins decision
// re-created the record with: the updating system's row, when the decision was made
// on its event, holding another value. (update_wins names the deleting system as the
// loser: only what the winning row overrides is lost by the rule.)
func (m *model) lostToUpdate(d logged, w userWrite) bool {
	if d.delivery < 0 || m.deliv[d.delivery].system != d.Winner || m.deliv[d.delivery].after == nil {
		return false
	}
	win := m.system(d.Winner)
	return m.deliv[d.delivery].after[win.cols[w.field]] != w.value
}

// explain adds to an error what a person needs to see: the variant, the tables, the
// states and every decision.
func explain(m *model, err error) error {
	if m == nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%v\nvariant: %+v\n", err, m.v)
	for _, s := range m.systems {
		fmt.Fprintf(&b, "table %s:\n", s.name)
		for _, id := range s.tbl.IDs() {
			row, _ := s.tbl.Row(id)
			fmt.Fprintf(&b, "  %s %v\n", id, row)
		}
	}
	for _, id := range sortedKeys(m.states) {
		st := m.states[id]
		fmt.Fprintf(&b, "state %s: hold=%+v deleted=%v\n", id, st.Hold, st.Deleted)
		for _, ss := range st.Systems {
			fmt.Fprintf(&b, "  %s known=%v deleted=%v inflight=%d\n", ss.Name, ss.Known, ss.Deleted, len(ss.InFlight))
		}
	}
	b.WriteString("history:\n")
	li := 0
	for i, d := range m.deliv {
		for ; li < len(m.log) && m.log[li].delivery < i; li++ {
			if m.log[li].delivery < 0 {
				fmt.Fprintf(&b, "      timer: %s\n", decisionLine(m.log[li].Decision))
			}
		}
		fmt.Fprintf(&b, "  #%d +%dms %s %s: %s\n", i, d.atMs-modelStartMs, d.system, causeString(d.cause), d.value)
		for ; li < len(m.log) && m.log[li].delivery == i; li++ {
			fmt.Fprintf(&b, "      -> %s\n", decisionLine(m.log[li].Decision))
		}
	}
	for ; li < len(m.log); li++ {
		fmt.Fprintf(&b, "      timer: %s\n", decisionLine(m.log[li].Decision))
	}
	return errors.New(b.String())
}

func decisionLine(d resolver.Decision) string {
	var f []string
	for _, v := range d.Fields {
		f = append(f, v.Name+"="+string(v.Value))
	}
	return fmt.Sprintf("%s rec=%s sys=%s target=%s del=%v {%s} rule=%s reason=%s fields=%v winner=%s loser=%s id=%.8s",
		d.Kind, d.Record, d.System, d.Target, d.Delete, strings.Join(f, " "), d.Rule, d.Reason, d.ConflictFields, d.Winner, d.Loser, d.EventID)
}
