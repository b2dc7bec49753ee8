package faults

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/concord-sync/concord/internal/sim"
	"github.com/concord-sync/concord/internal/world"
)

// The suite's systems are the demo's (cmd/concord/demo.yaml, cmd/concord/demo.go): a
// CRM with full before images applying Debezium envelopes, and billing with no before
// images, a TOASTed notes column, an updated_at column and a clock 300ms ahead and
// wandering up to 300ms more, applying flat rows; numeric, timestamptz and jsonb
// columns. Where the demo differs, the suite's checks would be weakened:
//   - its boolean and date columns are text here: their values cannot all be new, and
//     the suite follows every edit by its value;
//   - both numeric columns have scale 2: with the demo's 4 and 2, most CRM credit edits
//     go to the DLQ (type_mismatch) and the field would be set aside from then on;
//   - the clock-skew tolerance is 250ms, under billing's lead: a concurrent pair is a
//     conflict decided by last-write-wins (and checked as such) rather than a DLQ
//     entry that nobody reviews, which would set the field aside for the rest of the
//     run. Deletes against updates still go to review.
const (
	name          = "contacts"
	crmTopic      = "crm.public.contacts"
	billingTopic  = "billing.public.customers"
	crmApply      = name + ".apply.crm"
	billingApply  = name + ".apply.billing"
	auditTopic    = name + ".audit"
	reviewTopic   = name + ".review"
	poisonTopic   = name + ".poison"
	billingSkew   = 300 * time.Millisecond
	skewTolerance = "250ms"
)

var (
	inputTopics  = []string{billingTopic, crmTopic, reviewTopic}
	outputTopics = []string{crmApply, billingApply, auditTopic, poisonTopic}
	applyTopics  = []string{crmApply, billingApply}
	systemNames  = []string{"crm", "billing"}
)

// authority is the config's authority map; its fields are the synced ones the
// convergence check compares.
var authority = map[string]string{
	"email": "crm", "name": "crm", "since": "crm",
	"status": "billing", "plan": "billing", "active": "billing",
	"notes": "shared", "phone": "shared", "credit": "shared", "renewed_at": "shared", "prefs": "shared",
}

func syncedFields() []string { return slices.Sorted(maps.Keys(authority)) }

// concordConfig is the `concord run` configuration of a scenario. A zero session
// timeout leaves kafka.session_timeout and kafka.heartbeat_interval out (for builds
// from before they existed).
func concordConfig(brokers []string, redisAddr string, session, heartbeat time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\nkafka:\n  brokers: [%s]\n", name, strings.Join(brokers, ", "))
	if session > 0 {
		fmt.Fprintf(&b, "  session_timeout: %s\n  heartbeat_interval: %s\n", session, heartbeat)
	}
	fmt.Fprintf(&b, "redis:\n  addr: %s\n", redisAddr)
	b.WriteString(`systems:
  crm:
    topic: ` + crmTopic + `
    key: [id]
    timestamp: source.ts_ms
    fields: {email: email_address, name: full_name}
    apply: {topic: ` + crmApply + `, format: debezium}
    columns: {credit: "decimal(12,2)", renewed_at: zoned_timestamp, prefs: json}
  billing:
    topic: ` + billingTopic + `
    key: [id]
    timestamp: updated_at
    fields: {id: cust_id, status: payment_status}
    apply: {topic: ` + billingApply + `, format: flat}
    columns: {credit: "decimal(12,2)", renewed_at: zoned_timestamp, prefs: json}
resolution:
  clock_skew_tolerance: ` + skewTolerance + `
  granularity: field
  deletes: review
  loop_guard: {max_applies: 1000, window: 1m}
authority:
`)
	for _, f := range syncedFields() {
		fmt.Fprintf(&b, "  %s: %s\n", f, authority[f])
	}
	return b.String()
}

func writeConfig(path, text string) error { return os.WriteFile(path, []byte(text), 0o600) }

// simConfig is the simulated systems of a scenario, with the edit log on.
func simConfig(brokers []string, o *Options, seed int64) sim.Config {
	types := func(scale int) map[string]string {
		return map[string]string{
			"credit": fmt.Sprintf("numeric(12,%d)", scale), "renewed_at": world.PGTimestamptz, "prefs": world.PGJSONB,
		}
	}
	shared := []string{"notes", "phone", "credit", "renewed_at", "prefs"}
	return sim.Config{
		Brokers: brokers, Records: o.Records, Rate: o.Rate, Seed: seed,
		ConcurrentRatio: o.ConcurrentRatio, PartitionByID: true, EditLog: true,
		Systems: []sim.SystemSpec{
			{
				Name: "crm", Topic: crmTopic, ApplyTopic: crmApply, ApplyFormat: sim.FormatDebezium,
				KeyColumn: "id", FullBefore: true,
				Columns: map[string]string{"email": "email_address", "name": "full_name"},
				Owns:    []string{"email", "name", "since"}, Shared: shared,
				Types: types(2),
			},
			{
				Name: "billing", Topic: billingTopic, ApplyTopic: billingApply, ApplyFormat: sim.FormatFlat,
				KeyColumn: "cust_id", TimestampColumn: "updated_at", Skew: billingSkew, Drift: billingSkew,
				Columns: map[string]string{"status": "payment_status"},
				Owns:    []string{"status", "plan", "active"}, Shared: shared,
				Types: types(2), Toasted: []string{"notes"},
			},
		},
	}
}
