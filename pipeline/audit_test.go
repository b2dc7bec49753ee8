package pipeline_test

import (
	"strings"
	"testing"
	"time"

	"github.com/concord-sync/concord/pipeline"
	"github.com/concord-sync/concord/resolver"
)

// TestAuditSetsAsideWritesExplained: every decision that sets a system's write aside
// is in the audit trail, so a lost-looking edit is explained: a sink's rewrite of an
// apply, and agreed values repaired over a stale write (besides conflicts, reviews and
// authority skips).
func TestAuditSetsAsideWritesExplained(t *testing.T) {
	now := time.Now()
	a, ok := pipeline.AuditEntry(&resolver.Decision{Kind: resolver.KindDuplicate, Reason: resolver.ReasonRedelivery, Record: "1", System: "billing", EventID: "ab12"}, now)
	if !ok || a.Kind != "redelivery" || a.System != "billing" || !strings.Contains(a.Reason, "ab12") {
		t.Errorf("redelivery audit = %+v, %v", a, ok)
	}
	a, ok = pipeline.AuditEntry(&resolver.Decision{
		Kind: resolver.KindApply, Rule: resolver.RuleRepair, Reason: resolver.ReasonStaleWrite, Record: "1", Origin: "crm", Target: "billing",
		Fields: []resolver.Value{{Name: "notes"}},
	}, now)
	if !ok || a.Kind != "repair" || a.System != "billing" || a.Winner != "crm" || len(a.Fields) != 1 || a.Fields[0] != "notes" {
		t.Errorf("repair audit = %+v, %v", a, ok)
	}
	if _, ok := pipeline.AuditEntry(&resolver.Decision{Kind: resolver.KindApply, Rule: resolver.RuleSync}, now); ok {
		t.Error("a plain sync is audited one by one")
	}
}
