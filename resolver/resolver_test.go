package resolver_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/concord-sync/concord/codecs"
	"github.com/concord-sync/concord/config"
	"github.com/concord-sync/concord/resolver"
)

// ev is one change event in a table test, in the system's own column names.
// Columns are "col=json" strings; crm's key column is id, billing's is cust_id.
type ev struct {
	system string
	op     codecs.Op
	tsMs   int64    // source.ts_ms, and billing's updated_at
	after  []string // nil for a delete
	before []string // nil when absent
	pos    uint64   // 0: next position of the system
	marker string   // origin marker column value
	snap   bool
	want   []string // summaries of the decisions, in order
}

type harness struct {
	t     *testing.T
	r     *resolver.Resolver
	st    *resolver.State
	pos   map[string]uint64
	nowMs int64
	last  string // event id of the last apply
}

func newHarness(t *testing.T, modify func(*config.Config)) *harness {
	t.Helper()
	cfg := testConfig()
	if modify != nil {
		modify(cfg)
	}
	r, err := resolver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, r: r, st: &resolver.State{Record: "7"}, pos: map[string]uint64{}}
}

func (h *harness) row(system string, cols []string, tsMs int64) codecs.Row {
	key := map[string]string{"crm": "id", "billing": "cust_id"}[system]
	row := codecs.Row{{Name: key, Value: []byte("7")}}
	for _, c := range cols {
		name, val, _ := strings.Cut(c, "=")
		row = append(row, codecs.Column{Name: name, Value: []byte(val)})
	}
	if system == "billing" {
		row = append(row, codecs.Column{Name: "updated_at", Value: []byte(fmt.Sprint(tsMs))})
	}
	return row
}

// run feeds one event and returns its decisions, summarised.
func (h *harness) run(e ev) []string {
	h.t.Helper()
	pos := e.pos
	if pos == 0 {
		h.pos[e.system]++
		pos = h.pos[e.system]
	}
	event := codecs.Event{
		Kind: codecs.KindChange, Op: e.op, TsMs: e.tsMs, Snapshot: e.snap,
		Position: codecs.Position{Kind: codecs.PosPostgres, A: pos},
	}
	if e.after != nil {
		event.After = h.row(e.system, e.after, e.tsMs)
		switch e.marker {
		case "":
		case "$last":
			event.After = append(event.After, codecs.Column{Name: "concord_event", Value: []byte(`"` + h.last + `"`)})
		default:
			event.After = append(event.After, codecs.Column{Name: "concord_event", Value: []byte(`"` + e.marker + `"`)})
		}
	}
	if e.before != nil {
		event.Before = h.row(e.system, e.before, e.tsMs-1)
	}
	if e.op == codecs.OpDelete {
		event.Before = h.row(e.system, e.before, e.tsMs)
	}
	var ch resolver.Change
	if err := h.r.Canonicalize(e.system, &event, &ch); err != nil {
		h.t.Fatalf("Canonicalize: %v", err)
	}
	// concord processes an event shortly after its commit: applies are sent then,
	// and their echoes are committed after that.
	h.nowMs = max(h.nowMs, e.tsMs+50)
	var out resolver.Output
	h.r.Resolve(time.UnixMilli(h.nowMs), h.st, &ch, &out)
	for _, d := range out.Decisions {
		if d.Kind == resolver.KindApply {
			h.last = d.EventID
		}
	}
	return summarize(out.Decisions)
}

func (h *harness) expire(at time.Duration) []string {
	var out resolver.Output
	h.r.Expire(time.UnixMilli(h.nowMs).Add(at), h.st, &out)
	return summarize(out.Decisions)
}

func summarize(ds []resolver.Decision) []string {
	var s []string
	for _, d := range ds {
		switch d.Kind {
		case resolver.KindApply:
			op := "upsert"
			if d.Delete {
				op = "delete"
			}
			var f []string
			for _, v := range d.Fields {
				f = append(f, v.Name+"="+string(v.Value))
			}
			slices.Sort(f)
			s = append(s, fmt.Sprintf("apply %s->%s %s %s rule=%s", d.Origin, d.Target, op, strings.Join(f, " "), d.Rule))
		case resolver.KindConflict:
			s = append(s, fmt.Sprintf("conflict %v winner=%s rule=%s", d.ConflictFields, d.Winner, d.Rule))
		case resolver.KindDLQ:
			s = append(s, fmt.Sprintf("dlq %v %s", d.ConflictFields, d.Reason))
		case resolver.KindSkip:
			s = append(s, fmt.Sprintf("skip %s %s", d.Field, d.Reason))
		default:
			s = append(s, d.Kind.String())
		}
	}
	return s
}

const (
	c = codecs.OpCreate
	u = codecs.OpUpdate
	d = codecs.OpDelete
	r = codecs.OpRead
)

// created is the common start: crm creates record 7 and billing sees the apply.
var created = []ev{
	{
		system: "crm", op: c, tsMs: 1000, after: []string{`email_address="a@x"`, `notes="n0"`},
		want: []string{`apply crm->billing upsert email="a@x" notes="n0" rule=sync`},
	},
	{
		system: "billing", op: c, tsMs: 1100, after: []string{`email="a@x"`, `notes="n0"`},
		want: []string{"echo"},
	},
}

func seq(evs ...ev) []ev { return append(slices.Clone(created), evs...) }

func TestResolveRules(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*config.Config)
		events []ev
	}{
		{name: "plain change maps columns both ways", events: seq(
			ev{
				system: "billing", op: u, tsMs: 2000, after: []string{`email="a@x"`, `notes="n1"`, `payment_status="paid"`},
				want: []string{`apply billing->crm upsert notes="n1" status="paid" rule=sync`},
			},
		)},
		{name: "duplicate position produces nothing", events: seq(
			ev{system: "crm", op: u, tsMs: 900, pos: 1, after: []string{`email_address="zzz"`}, want: []string{"duplicate"}},
		)},
		{name: "changed fields come from the before image when present", events: seq(
			// notes differs from what crm last showed (n0) but not from the before
			// image: an earlier event was lost to us, the before image is the truth.
			ev{
				system: "crm", op: u, tsMs: 2000, after: []string{`email_address="new@x"`, `notes="n1"`},
				before: []string{`email_address="a@x"`, `notes="n1"`},
				want:   []string{`apply crm->billing upsert email="new@x" rule=sync`},
			},
		)},
		{name: "echo by origin marker", modify: func(c *config.Config) { c.Systems["billing"].OriginMarker = "concord_event" }, events: []ev{
			created[0],
			// A trigger upper-cased notes as the sink wrote: no fingerprint match, but
			// the marker names the apply; the trigger's change is a genuine change.
			{
				system: "billing", op: c, tsMs: 1100, after: []string{`email="a@x"`, `notes="N0"`}, marker: "$last",
				want: []string{"echo", `apply billing->crm upsert notes="N0" rule=sync`},
			},
		}},
		{name: "an event committed well before the apply was sent is not its echo", events: []ev{
			{
				system: "crm", op: c, tsMs: 60_000, after: []string{`email_address="a@x"`, `notes="n0"`},
				want: []string{`apply crm->billing upsert email="a@x" notes="n0" rule=sync`},
			},
			// billing's own create of the same values, committed a minute before: a
			// change of its own (concurrent with the apply), not the apply's echo.
			{
				system: "billing", op: c, tsMs: 1000, after: []string{`email="a@x"`, `notes="n0"`},
				want: []string{"conflict [email] winner=crm rule=authority", "skip email not_authoritative"},
			},
			// The sink's write then changes nothing, which proves nothing: billing
			// already shows what the apply sets, so the apply is uncertain, stays
			// on its way without blocking later echoes, and expires quietly.
			{system: "billing", op: u, tsMs: 60_100, after: []string{`email="a@x"`, `notes="n0"`}},
		}},
		{name: "with an origin marker an event naming no in-flight apply is never matched by value", modify: func(c *config.Config) { c.Systems["billing"].OriginMarker = "concord_event" }, events: []ev{
			created[0],
			{
				system: "billing", op: c, tsMs: 1100, after: []string{`email="a@x"`, `notes="n0"`},
				want: []string{"conflict [email] winner=crm rule=authority", "skip email not_authoritative"},
			},
			{system: "billing", op: u, tsMs: 1200, after: []string{`email="a@x"`, `notes="n0"`}, marker: "$last", want: []string{"echo"}},
		}},
		{name: "an unavailable value is neither a change nor propagated, and the state keeps the value", events: seq(
			// billing's notes is an unchanged TOASTed column: Debezium sends its
			// placeholder, in the string form and (for bytes columns) base64.
			ev{
				system: "billing", op: u, tsMs: 2000, after: []string{`email="a@x"`, `notes="__debezium_unavailable_value"`, `payment_status="paid"`},
				want: []string{`apply billing->crm upsert status="paid" rule=sync`},
			},
			ev{system: "crm", op: u, tsMs: 2100, after: []string{`email_address="a@x"`, `notes="n0"`, `status="paid"`}, want: []string{"echo"}},
			ev{
				system: "billing", op: u, tsMs: 3000, after: []string{`email="a@x"`, `notes="X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ=="`, `payment_status="due"`},
				want: []string{`apply billing->crm upsert status="due" rule=sync`},
			},
			// notes is still n0 in the agreed image: crm's unchanged n0 is no change.
			ev{system: "crm", op: u, tsMs: 3100, after: []string{`email_address="a@x"`, `notes="n0"`, `status="due"`}, want: []string{"echo"}},
		)},
		{name: "a configured placeholder is the unavailable value", modify: func(c *config.Config) {
			c.Systems["billing"].UnavailablePlaceholder = "<toasted>"
		}, events: seq(
			ev{
				system: "billing", op: u, tsMs: 2000, after: []string{`email="a@x"`, `notes="<toasted>"`, `payment_status="paid"`},
				want: []string{`apply billing->crm upsert status="paid" rule=sync`},
			},
			ev{
				system: "billing", op: u, tsMs: 3000, after: []string{`email="a@x"`, `notes="__debezium_unavailable_value"`, `payment_status="paid"`},
				want: []string{`apply billing->crm upsert notes="__debezium_unavailable_value" rule=sync`},
			},
		)},
		{name: "non-owner change is skipped", events: seq(
			ev{system: "billing", op: u, tsMs: 2000, after: []string{`email="b@x"`, `notes="n0"`}, want: []string{"skip email not_authoritative"}},
		)},
		{name: "enforce_authority re-applies the owner's value", modify: func(c *config.Config) { c.Resolution.EnforceAuthority = true }, events: seq(
			ev{
				system: "billing", op: u, tsMs: 2000, after: []string{`email="b@x"`, `notes="n0"`},
				want: []string{"skip email not_authoritative", `apply crm->billing upsert email="a@x" rule=enforce_authority`},
			},
		)},
		{name: "unmapped field skipped", events: seq(
			ev{system: "crm", op: u, tsMs: 2000, after: []string{`email_address="a@x"`, `notes="n0"`, `shoe_size=44`}, want: []string{"skip shoe_size unmapped"}},
		)},
		{name: "unmapped field shared", modify: func(c *config.Config) { c.Resolution.UnmappedFields = "shared" }, events: seq(
			ev{
				system: "crm", op: u, tsMs: 2000, after: []string{`email_address="a@x"`, `notes="n0"`, `shoe_size=44`},
				want: []string{`apply crm->billing upsert shoe_size=44 rule=sync`},
			},
		)},
		{name: "concurrent shared change, later write wins and goes back to its origin", events: seq(
			ev{system: "crm", op: u, tsMs: 2000, after: []string{`email_address="a@x"`, `notes="crm"`}, want: []string{`apply crm->billing upsert notes="crm" rule=sync`}},
			ev{system: "billing", op: u, tsMs: 3000, after: []string{`email="a@x"`, `notes="billing"`}, want: []string{
				"conflict [notes] winner=billing rule=lww",
				`apply billing->billing upsert notes="billing" rule=lww`,
				`apply billing->crm upsert notes="billing" rule=lww`,
			}},
		)},
		{name: "concurrent shared change, earlier write loses", events: seq(
			ev{system: "crm", op: u, tsMs: 3000, after: []string{`email_address="a@x"`, `notes="crm"`}, want: []string{`apply crm->billing upsert notes="crm" rule=sync`}},
			ev{system: "billing", op: u, tsMs: 2000, after: []string{`email="a@x"`, `notes="billing"`}, want: []string{"conflict [notes] winner=crm rule=lww"}},
		)},
		{name: "within the clock-skew tolerance goes to the DLQ, later changes attach", events: seq(
			ev{system: "crm", op: u, tsMs: 2000, after: []string{`email_address="a@x"`, `notes="crm"`}, want: []string{`apply crm->billing upsert notes="crm" rule=sync`}},
			ev{system: "billing", op: u, tsMs: 2400, after: []string{`email="a@x"`, `notes="billing"`}, want: []string{"dlq [notes] clock_skew"}},
			ev{system: "billing", op: u, tsMs: 5000, after: []string{`email="a@x"`, `notes="billing2"`}, want: []string{"dlq [notes] attached"}},
		)},
		{name: "equal timestamps are within tolerance even with zero tolerance", modify: func(c *config.Config) { c.Resolution.ClockSkewTolerance.Duration = 0 }, events: seq(
			ev{system: "crm", op: u, tsMs: 2000, after: []string{`email_address="a@x"`, `notes="crm"`}, want: []string{`apply crm->billing upsert notes="crm" rule=sync`}},
			ev{system: "billing", op: u, tsMs: 2000, after: []string{`email="a@x"`, `notes="billing"`}, want: []string{"dlq [notes] clock_skew"}},
		)},
		{name: "per-pair tolerance override", modify: func(c *config.Config) {
			c.Resolution.ClockSkewOverrides = []config.SkewOverride{{Systems: []string{"billing", "crm"}, Tolerance: config.Duration{Duration: 50 * time.Millisecond}}}
		}, events: seq(
			ev{system: "crm", op: u, tsMs: 2000, after: []string{`email_address="a@x"`, `notes="crm"`}, want: []string{`apply crm->billing upsert notes="crm" rule=sync`}},
			ev{system: "billing", op: u, tsMs: 2100, after: []string{`email="a@x"`, `notes="billing"`}, want: []string{
				"conflict [notes] winner=billing rule=lww", `apply billing->billing upsert notes="billing" rule=lww`, `apply billing->crm upsert notes="billing" rule=lww`,
			}},
		)},
		{name: "concurrent change of an owned field: the owner wins", events: seq(
			ev{system: "billing", op: u, tsMs: 2000, after: []string{`email="a@x"`, `notes="n0"`, `payment_status="paid"`}, want: []string{`apply billing->crm upsert status="paid" rule=sync`}},
			ev{system: "crm", op: u, tsMs: 3000, after: []string{`email_address="a@x"`, `notes="n0"`, `status="void"`}, want: []string{
				"conflict [status] winner=billing rule=authority", "skip status not_authoritative",
			}},
		)},
		{name: "record granularity: the later row wins every field", modify: func(c *config.Config) { c.Resolution.Granularity = "record" }, events: seq(
			ev{system: "crm", op: u, tsMs: 2000, after: []string{`email_address="a@x"`, `notes="crm"`}, want: []string{`apply crm->billing upsert notes="crm" rule=sync`}},
			ev{system: "billing", op: u, tsMs: 3000, after: []string{`email="a@x"`, `notes="n0"`, `phone="555"`}, want: []string{
				"conflict [phone notes] winner=billing rule=lww",
				`apply billing->billing upsert notes="n0" rule=lww`,
				`apply billing->crm upsert notes="n0" phone="555" rule=lww`,
			}},
		)},
		{name: "delete propagates", events: seq(
			ev{system: "crm", op: d, tsMs: 2000, before: []string{}, want: []string{"apply crm->billing delete  rule=sync"}},
			ev{system: "billing", op: d, tsMs: 2100, before: []string{}, want: []string{"echo"}},
		)},
		{name: "delete against a concurrent update goes to review", events: seq(
			ev{system: "crm", op: u, tsMs: 2000, after: []string{`email_address="a@x"`, `notes="crm"`}, want: []string{`apply crm->billing upsert notes="crm" rule=sync`}},
			ev{system: "billing", op: d, tsMs: 2100, before: []string{}, want: []string{"dlq [email notes] delete_vs_update"}},
		)},
		{name: "delete_wins", modify: func(c *config.Config) { c.Resolution.Deletes = "delete_wins" }, events: seq(
			ev{system: "crm", op: u, tsMs: 2000, after: []string{`email_address="a@x"`, `notes="crm"`}, want: []string{`apply crm->billing upsert notes="crm" rule=sync`}},
			ev{system: "billing", op: d, tsMs: 2100, before: []string{}, want: []string{
				"conflict [email notes] winner=billing rule=delete_wins",
				"apply billing->billing delete  rule=delete_wins", "apply billing->crm delete  rule=delete_wins",
			}},
		)},
		{name: "update_wins re-creates the row where it was deleted", modify: func(c *config.Config) { c.Resolution.Deletes = "update_wins" }, events: seq(
			ev{system: "crm", op: u, tsMs: 2000, after: []string{`email_address="a@x"`, `notes="crm"`}, want: []string{`apply crm->billing upsert notes="crm" rule=sync`}},
			ev{system: "billing", op: d, tsMs: 2100, before: []string{}, want: []string{
				"conflict [email notes] winner=crm rule=update_wins",
				`apply crm->billing upsert email="a@x" notes="crm" rule=update_wins`,
			}},
		)},
		{name: "update against a concurrent delete goes to review", events: seq(
			ev{system: "crm", op: d, tsMs: 2000, before: []string{}, want: []string{"apply crm->billing delete  rule=sync"}},
			ev{system: "billing", op: u, tsMs: 2100, after: []string{`email="a@x"`, `notes="late"`}, want: []string{"dlq [email notes] delete_vs_update"}},
		)},
		{name: "snapshot read that agrees produces nothing", events: seq(
			ev{system: "billing", op: r, snap: true, tsMs: 1200, after: []string{`email="a@x"`, `notes="n0"`}},
		)},
		{name: "snapshot divergence on a shared field without row timestamps goes to review", events: seq(
			ev{system: "crm", op: r, snap: true, tsMs: 1200, after: []string{`email_address="a@x"`, `notes="other"`}, want: []string{"dlq [notes] initial_divergence"}},
		)},
		{name: "snapshot divergence decided by initial_load_prefer", modify: func(c *config.Config) { c.Resolution.InitialLoadPrefer = "billing" }, events: []ev{
			{
				system: "crm", op: r, snap: true, tsMs: 1000, after: []string{`email_address="a@x"`, `notes="crm"`},
				want: []string{`apply crm->billing upsert email="a@x" notes="crm" rule=sync`},
			},
			{system: "billing", op: r, snap: true, tsMs: 1000, after: []string{`email="a@x"`, `notes="billing"`}, want: []string{
				"conflict [notes] winner=billing rule=initial_load",
				`apply billing->billing upsert notes="billing" rule=initial_load`,
				`apply billing->crm upsert notes="billing" rule=initial_load`,
			}},
		}},
		{name: "snapshot divergence on an owned field: the owner's value", events: []ev{
			{
				system: "crm", op: r, snap: true, tsMs: 1000, after: []string{`email_address="a@x"`},
				want: []string{`apply crm->billing upsert email="a@x" rule=sync`},
			},
			{system: "billing", op: r, snap: true, tsMs: 1000, after: []string{`email="b@x"`}, want: []string{
				"conflict [email] winner=crm rule=authority",
			}},
		}},
		{name: "two systems create the same record concurrently", events: []ev{
			created[0],
			{system: "billing", op: c, tsMs: 3000, after: []string{`email="b@x"`, `notes="billing"`}, want: []string{
				"conflict [email] winner=crm rule=authority", "skip email not_authoritative",
				"conflict [notes] winner=billing rule=lww",
				`apply billing->billing upsert notes="billing" rule=lww`,
				`apply billing->crm upsert notes="billing" rule=lww`,
			}},
		}},
		{name: "loop guard holds a bouncing record", modify: func(c *config.Config) { c.Resolution.LoopGuard.MaxApplies = 2 }, events: seq(
			ev{system: "crm", op: u, tsMs: 2000, after: []string{`email_address="a@x"`, `notes="1"`}, want: []string{`apply crm->billing upsert notes="1" rule=sync`}},
			ev{system: "crm", op: u, tsMs: 2001, after: []string{`email_address="a@x"`, `notes="2"`}, want: []string{"dlq [notes] loop"}},
			ev{system: "crm", op: u, tsMs: 2002, after: []string{`email_address="a@x"`, `notes="3"`}, want: []string{"dlq [notes] attached"}},
		)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.modify)
			for i, e := range tc.events {
				got := h.run(e)
				if !slices.Equal(got, e.want) {
					t.Fatalf("event %d (%s %c):\n got %q\nwant %q", i, e.system, e.op, got, e.want)
				}
			}
		})
	}
}

func TestApplyUnconfirmedAfterTimeout(t *testing.T) {
	h := newHarness(t, nil)
	h.run(created[0])
	if got := h.expire(14 * time.Minute); len(got) != 0 {
		t.Fatalf("before apply_timeout: %q", got)
	}
	got := h.expire(15 * time.Minute)
	if want := []string{"dlq [email notes] apply_unconfirmed"}; !slices.Equal(got, want) {
		t.Fatalf("after apply_timeout: got %q, want %q", got, want)
	}
	if !h.st.Idle() {
		t.Error("the unconfirmed apply is still in flight")
	}
}

// TestKeyOnlyCreateIsNotUnconfirmed: a record created with no field but its key is
// created in billing with a key-only insert, which does nothing (and commits no
// change event) when billing already has the row: its silence is no failure, and its
// echo, should the insert have happened, is still recognised after apply_timeout.
func TestKeyOnlyCreateIsNotUnconfirmed(t *testing.T) {
	h := newHarness(t, nil)
	if got, want := h.run(ev{system: "crm", op: c, tsMs: 1000, after: []string{}}), []string{"apply crm->billing upsert  rule=sync"}; !slices.Equal(got, want) {
		t.Fatalf("create: got %q, want %q", got, want)
	}
	if got := h.expire(16 * time.Minute); len(got) != 0 {
		t.Fatalf("after apply_timeout: got %q, want nothing", got)
	}
	if !h.st.Idle() {
		t.Error("the key-only create is still in flight")
	}
	h.nowMs += (16 * time.Minute).Milliseconds()
	if got, want := h.run(ev{system: "billing", op: c, tsMs: h.nowMs, after: []string{}}), []string{"echo"}; !slices.Equal(got, want) {
		t.Fatalf("late echo: got %q, want %q", got, want)
	}
}

// TestApplyTimeoutOneEntryAndLateEcho: an echo arriving after apply_timeout is still
// known for one (not billing's change; what it overwrote is repaired), and applies
// not seen back in time raise one apply_unconfirmed entry per record, however many.
func TestApplyTimeoutOneEntryAndLateEcho(t *testing.T) {
	h := newHarness(t, nil)
	h.run(created[0]) // A1 to billing, not seen back in time
	var out resolver.Output
	h.nowMs += (16 * time.Minute).Milliseconds()
	h.r.Expire(time.UnixMilli(h.nowMs), h.st, &out)
	h.run(ev{system: "crm", op: u, tsMs: h.nowMs, after: []string{`email_address="a@x"`, `notes="n1"`}}) // A2
	h.nowMs += (4 * time.Minute).Milliseconds()
	// A1 lands at last, then A2; nothing is billing's own change.
	got := h.run(ev{system: "billing", op: c, tsMs: h.nowMs, after: []string{`email="a@x"`, `notes="n0"`}})
	if want := []string{"echo"}; !slices.Equal(got, want) {
		t.Fatalf("late echo: got %q, want %q", got, want)
	}
	h.run(ev{system: "crm", op: u, tsMs: h.nowMs + 10, after: []string{`email_address="a@x"`, `notes="n2"`}}) // A3
	h.nowMs += (16 * time.Minute).Milliseconds()
	h.r.Expire(time.UnixMilli(h.nowMs), h.st, &out)
	ids := map[string]bool{}
	for _, d := range out.Decisions {
		if d.Kind == resolver.KindDLQ && d.Reason == resolver.ReasonApplyUnconfirmed {
			ids[d.EntryID] = true
		}
	}
	if len(ids) != 1 || len(out.Decisions) != 3 {
		t.Fatalf("three unconfirmed applies gave %q in %d entries, want one entry", summarize(out.Decisions), len(ids))
	}
	// A2 lands past its timeout, after A3 was agreed: repaired with A3's value.
	got = h.run(ev{system: "billing", op: u, tsMs: h.nowMs, after: []string{`email="a@x"`, `notes="n1"`}})
	if want := []string{"echo", `apply crm->billing upsert notes="n2" rule=repair`}; !slices.Equal(got, want) {
		t.Fatalf("late echo over a newer value: got %q, want %q", got, want)
	}
}

func TestPairWindowDecidesTogether(t *testing.T) {
	window := func(c *config.Config) { c.Resolution.PairWindow.Duration = time.Second }
	t.Run("a lone change is applied when the window closes", func(t *testing.T) {
		h := newHarness(t, window)
		for _, e := range created {
			h.run(e)
		}
		if got := h.run(ev{system: "crm", op: u, tsMs: 2000, after: []string{`email_address="a@x"`, `notes="n1"`}}); len(got) != 0 {
			t.Fatalf("held change produced %q", got)
		}
		if got := h.expire(999 * time.Millisecond); len(got) != 0 {
			t.Fatalf("window still open: %q", got)
		}
		want := []string{`apply crm->billing upsert notes="n1" rule=sync`}
		if got := h.expire(time.Second); !slices.Equal(got, want) {
			t.Fatalf("window closed: got %q, want %q", got, want)
		}
	})
	t.Run("near-simultaneous changes are paired", func(t *testing.T) {
		h := newHarness(t, window)
		for _, e := range created {
			h.run(e)
		}
		h.run(ev{system: "crm", op: u, tsMs: 2000, after: []string{`email_address="a@x"`, `notes="crm"`}})
		got := h.run(ev{system: "billing", op: u, tsMs: 1000, after: []string{`email="a@x"`, `notes="billing"`}})
		want := []string{"conflict [notes] winner=crm rule=lww", `apply crm->billing upsert notes="crm" rule=lww`}
		if !slices.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
}

// TestSyncedRecordHasNoDeadline: once a record's applies are seen back, nothing is
// due: its landed applies are forgotten lazily (Resolve expires first), so a synced
// record neither sits in the deadline index nor is rewritten by the timer.
func TestSyncedRecordHasNoDeadline(t *testing.T) {
	h := newHarness(t, nil)
	h.run(created[0])
	if h.st.NextDeadlineMs(h.r) == 0 {
		t.Fatal("an apply in flight has no deadline")
	}
	h.run(created[1]) // billing's echo
	if len(h.st.Systems) == 0 || !h.st.Idle() {
		t.Fatalf("not idle after the echo: %+v", h.st)
	}
	if due := h.st.NextDeadlineMs(h.r); due != 0 {
		t.Errorf("a synced record is due at %d, want no deadline", due)
	}
}

func TestTombstoneRetention(t *testing.T) {
	h := newHarness(t, nil)
	for _, e := range seq(
		ev{system: "crm", op: d, tsMs: 2000, before: []string{}},
		ev{system: "billing", op: d, tsMs: 2100, before: []string{}},
	) {
		h.run(e)
	}
	now := time.UnixMilli(h.nowMs)
	if h.r.Droppable(now.Add(59*time.Minute), h.st) {
		t.Error("tombstone droppable before its retention")
	}
	if !h.r.Droppable(now.Add(time.Hour), h.st) {
		t.Error("tombstone not droppable after its retention")
	}
	// An idle tombstone has its deadline then, so that a record deleted everywhere
	// and never touched again is still dropped by the timer.
	if due, want := h.st.NextDeadlineMs(h.r), h.st.DeletedMs+time.Hour.Milliseconds(); due != want {
		t.Errorf("tombstone's deadline = %d, want %d (DeletedMs + tombstone_retention)", due, want)
	}
	// A late replay of an old event is still recognised while the tombstone is kept.
	if got := h.run(ev{system: "crm", op: u, pos: 1, tsMs: 900, after: []string{`notes="old"`}}); !slices.Equal(got, []string{"duplicate"}) {
		t.Errorf("replayed old event after delete: %q", got)
	}
}

func TestEventIDsAreDeterministic(t *testing.T) {
	ids := func() []string {
		h := newHarness(t, nil)
		var out []string
		for _, e := range seq(ev{system: "billing", op: u, tsMs: 2000, after: []string{`email="a@x"`, `notes="n1"`}}) {
			h.run(e)
			out = append(out, h.last)
		}
		return out
	}
	first, second := ids(), ids()
	if !slices.Equal(first, second) || first[0] == first[2] {
		t.Errorf("event ids differ between runs or repeat: %q vs %q", first, second)
	}
}

func TestCanonicalizeErrors(t *testing.T) {
	r, err := resolver.New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	var ch resolver.Change
	for _, tc := range []struct {
		name, system string
		ev           codecs.Event
		want         string
	}{
		{"unknown system", "erp", codecs.Event{Kind: codecs.KindChange}, `unknown system "erp"`},
		{"missing key", "crm", codecs.Event{Kind: codecs.KindChange, Op: u, After: codecs.Row{{Name: "notes", Value: []byte(`"x"`)}}}, `key column "id"`},
		{"missing timestamp column", "billing", codecs.Event{Kind: codecs.KindChange, Op: u, After: codecs.Row{{Name: "cust_id", Value: []byte("1")}}}, `timestamp column "updated_at"`},
		{"bad timestamp", "billing", codecs.Event{Kind: codecs.KindChange, Op: u, After: codecs.Row{{Name: "cust_id", Value: []byte("1")}, {Name: "updated_at", Value: []byte(`"yesterday"`)}}}, "not an ISO-8601 timestamp"},
	} {
		err := r.Canonicalize(tc.system, &tc.ev, &ch)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, resolver.ErrEvent) {
			t.Errorf("%s: err = %v, want ErrEvent mentioning %q", tc.name, err, tc.want)
		}
	}
}

func TestRecordIDs(t *testing.T) {
	cfg := testConfig()
	cfg.Systems["crm"].Key = []string{"id", "region"}
	cfg.Systems["billing"].Key = []string{"id", "region"}
	r, err := resolver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var ch resolver.Change
	e := codecs.Event{Kind: codecs.KindChange, Op: c, After: codecs.Row{{Name: "id", Value: []byte("42")}, {Name: "region", Value: []byte(`"eu/west%1"`)}}}
	if err := r.Canonicalize("crm", &e, &ch); err != nil {
		t.Fatal(err)
	}
	if ch.Record != "42/eu%2Fwest%251" {
		t.Errorf("composite record id = %q", ch.Record)
	}
	e = codecs.Event{Kind: codecs.KindChange, Op: c, TsMs: 5, After: codecs.Row{{Name: "cust_id", Value: []byte(`"42"`)}, {Name: "region", Value: []byte(`"eu/west%1"`)}, {Name: "updated_at", Value: []byte(`"2024-01-02T03:04:05.123456Z"`)}}}
	if err := r.Canonicalize("billing", &e, &ch); err != nil {
		t.Fatal(err)
	}
	if ch.Record != "42/eu%2Fwest%251" {
		t.Errorf("a string key and a number key of the same value differ: %q", ch.Record)
	}
	if ch.TsUs != time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC).UnixMicro() {
		t.Errorf("ISO timestamp column parsed to %d", ch.TsUs)
	}
}

// TestCanonicalizeKeepsRecord: a record ID the caller set is kept when it is the
// event's (no new string is made), and replaced when it is another record's.
func TestCanonicalizeKeepsRecord(t *testing.T) {
	r, err := resolver.New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`42`, `"42"`, `"4\\2"`, `"a\"b"`} {
		want := map[string]string{`42`: "42", `"42"`: "42", `"4\\2"`: `4\2`, `"a\"b"`: `a"b`}[key]
		e := codecs.Event{Kind: codecs.KindChange, Op: c, After: codecs.Row{{Name: "id", Value: []byte(key)}}}
		for _, preset := range []string{"", "41", "420", want} {
			ch := resolver.Change{Record: preset}
			if err := r.Canonicalize("crm", &e, &ch); err != nil {
				t.Fatal(err)
			}
			if ch.Record != want {
				t.Errorf("key %s, record set to %q: got %q, want %q", key, preset, ch.Record, want)
			}
		}
	}
	if testing.Short() {
		return
	}
	e := codecs.Event{Kind: codecs.KindChange, Op: c, After: codecs.Row{{Name: "id", Value: []byte(`"r-1042"`)}}}
	var ch resolver.Change
	fresh := testing.AllocsPerRun(100, func() {
		ch.Record = ""
		_ = r.Canonicalize("crm", &e, &ch)
	})
	kept := testing.AllocsPerRun(100, func() {
		ch.Record = "r-1042"
		_ = r.Canonicalize("crm", &e, &ch)
	})
	if kept >= fresh {
		t.Errorf("%.0f allocations with the record ID set, %.0f without: it was made anew", kept, fresh)
	}
}

func TestApplyReview(t *testing.T) {
	held := func(t *testing.T) *harness {
		h := newHarness(t, nil)
		for _, e := range seq(
			ev{system: "crm", op: u, tsMs: 2000, after: []string{`email_address="a@x"`, `notes="crm"`}},
			ev{system: "billing", op: u, tsMs: 2100, after: []string{`email="a@x"`, `notes="billing"`}, want: []string{"dlq [notes] clock_skew"}},
		) {
			if got := h.run(e); e.want != nil && !slices.Equal(got, e.want) {
				t.Fatalf("setup: %q", got)
			}
		}
		return h
	}
	review := func(h *harness, rv resolver.Review) []string {
		var out resolver.Output
		h.r.ApplyReview(time.UnixMilli(h.nowMs), h.st, &rv, &out)
		return summarize(out.Decisions)
	}
	t.Run("applies the chosen value where it differs and releases the hold", func(t *testing.T) {
		h := held(t)
		id := h.st.Hold.EntryID
		got := review(h, resolver.Review{EntryID: id, Rev: 1, Values: []resolver.Value{{Name: "notes", FP: resolver.Fingerprint([]byte(`"agreed"`)), Value: []byte(`"agreed"`)}}})
		want := []string{`apply review->billing upsert notes="agreed" rule=review`, `apply review->crm upsert notes="agreed" rule=review`}
		if !slices.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
		if h.st.Hold != nil {
			t.Errorf("hold not released: %+v", h.st.Hold)
		}
		if again := review(h, resolver.Review{EntryID: id, Rev: 1}); !slices.Equal(again, []string{"ignored"}) {
			t.Errorf("applying the same review twice: %q", again)
		}
	})
	t.Run("a decision older than an attached change is refused", func(t *testing.T) {
		h := held(t)
		h.run(ev{system: "crm", op: u, tsMs: 5000, after: []string{`email_address="a@x"`, `notes="crm2"`}})
		got := review(h, resolver.Review{EntryID: h.st.Hold.EntryID, Rev: 1, Values: []resolver.Value{{Name: "notes", Value: []byte(`"x"`)}}})
		if !slices.Equal(got, []string{"dlq [notes] review_stale"}) || h.st.Hold == nil {
			t.Errorf("got %q, hold %+v", got, h.st.Hold)
		}
	})
	t.Run("a delete decided in review is applied everywhere", func(t *testing.T) {
		h := held(t)
		got := review(h, resolver.Review{EntryID: h.st.Hold.EntryID, Rev: 1, Delete: true})
		want := []string{"apply review->billing delete  rule=review", "apply review->crm delete  rule=review"}
		if !slices.Equal(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
}

// TestWidenedTolerance: with resolution.widen_by_clock_uncertainty, the measured
// uncertainty of both clocks widens the tolerance; without it, it does not.
func TestWidenedTolerance(t *testing.T) {
	concurrent := func(h *harness) []string {
		for _, e := range seq(ev{system: "crm", op: u, tsMs: 2000, after: []string{`email_address="a@x"`, `notes="crm"`}}) {
			h.run(e)
		}
		return h.run(ev{system: "billing", op: u, tsMs: 2700, after: []string{`email="a@x"`, `notes="billing"`}})
	}
	unc := map[string]time.Duration{"crm": 150 * time.Millisecond, "billing": 100 * time.Millisecond}
	h := newHarness(t, nil)
	h.r = h.r.Widened(unc)
	if got := concurrent(h); got[0] != "conflict [notes] winner=billing rule=lww" {
		t.Errorf("without the option, 700ms apart is last-write-wins: %q", got)
	}
	h = newHarness(t, func(c *config.Config) { c.Resolution.WidenByClockUncertainty = true })
	h.r = h.r.Widened(unc)
	if got := concurrent(h); got[0] != "dlq [notes] clock_skew" {
		t.Errorf("with 500ms + 250ms of uncertainty, 700ms apart is ambiguous: %q", got)
	}
}

// testConfig is two systems whose column names and key column differ:
// crm (key id, email_address, full_name) and billing (key cust_id, timestamp updated_at).
func testConfig() *config.Config {
	return &config.Config{
		Name: "contacts",
		Systems: map[string]*config.System{
			"crm": {
				Name: "crm", Topic: "crm.public.contacts", Key: []string{"id"},
				Timestamp: "source.ts_ms",
				Fields:    map[string]string{"email": "email_address", "name": "full_name"},
			},
			"billing": {
				Name: "billing", Topic: "billing.public.customers", Key: []string{"id"},
				Timestamp: "updated_at",
				Fields:    map[string]string{"id": "cust_id", "status": "payment_status"},
			},
		},
		Resolution: config.Resolution{
			ClockSkewTolerance: config.Duration{Duration: 500 * time.Millisecond},
			Granularity:        "field",
			Deletes:            "review",
			UnmappedFields:     "skip",
			TombstoneRetention: config.Duration{Duration: time.Hour},
			ApplyTimeout:       config.Duration{Duration: 15 * time.Minute},
			LoopGuard:          config.LoopGuard{MaxApplies: 1000, Window: config.Duration{Duration: time.Minute}},
		},
		Authority: map[string]string{
			"email": "crm", "name": "crm", "status": "billing",
			"notes": "shared", "phone": "shared",
		},
	}
}

func cloneValues(vs []resolver.Value) []resolver.Value {
	out := make([]resolver.Value, len(vs))
	for i, v := range vs {
		v.Value = append([]byte(nil), v.Value...)
		out[i] = v
	}
	return out
}

// TestTypeMismatchGoesToReview: a value the target's column cannot hold without loss
// is never sent (nor rounded): it goes to review as type_mismatch naming the target,
// and the fields that fit are still synced. The types come from the configuration
// (systems.<s>.columns) or from what the pipeline learned (WithColumnTypes).
func TestTypeMismatchGoesToReview(t *testing.T) {
	learned := resolver.ColumnTypes{"billing": {"notes": {Type: codecs.TypeBytes, Name: codecs.NameDecimal, Scale: 2}}}
	for name, h := range map[string]*harness{
		"configured": newHarness(t, func(c *config.Config) { c.Systems["billing"].Columns = map[string]string{"notes": "decimal(12,2)"} }),
		"learned":    newHarness(t, nil),
	} {
		t.Run(name, func(t *testing.T) {
			if name == "learned" {
				h.r = h.r.WithColumnTypes(learned)
			}
			h.t = t
			got := h.run(ev{system: "crm", op: c, tsMs: 1000, after: []string{`email_address="a@x"`, `notes="12.345"`}})
			want := []string{"dlq [notes] type_mismatch", `apply crm->billing upsert email="a@x" rule=sync`}
			if !slices.Equal(got, want) {
				t.Fatalf("got %q, want %q", got, want)
			}
			got = h.run(ev{system: "crm", op: u, tsMs: 2000, after: []string{`email_address="b@x"`, `notes="12.5"`}})
			if want := []string{"dlq [notes] attached", `apply crm->billing upsert email="b@x" rule=sync`}; !slices.Equal(got, want) {
				t.Fatalf("a later change of the held field: got %q, want %q", got, want)
			}
		})
	}
}

// TestTypeMismatchEntryNamesTheTarget: the entry says which system cannot hold the value.
func TestTypeMismatchEntryNamesTheTarget(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.Systems["billing"].Columns = map[string]string{"notes": "int16"} })
	var ch resolver.Change
	event := codecs.Event{
		Kind: codecs.KindChange, Op: c, TsMs: 1000, Position: codecs.Position{Kind: codecs.PosPostgres, A: 1},
		After: h.row("crm", []string{`notes=40000`}, 1000),
	}
	if err := h.r.Canonicalize("crm", &event, &ch); err != nil {
		t.Fatal(err)
	}
	var out resolver.Output
	h.r.Resolve(time.UnixMilli(2000), h.st, &ch, &out)
	for _, d := range out.Decisions {
		if d.Kind == resolver.KindDLQ {
			if d.Reason != resolver.ReasonTypeMismatch || d.Target != "billing" || len(d.Versions) != 1 || string(d.Versions[0].Fields[0].Value) != "40000" {
				t.Fatalf("entry %+v", d)
			}
			return
		}
	}
	t.Fatalf("no DLQ entry in %q", summarize(out.Decisions))
}

// TestSinkRedelivery: a JDBC sink is at-least-once; restarted, it writes again what
// it wrote since its last offset commit, maybe over a newer edit. Such a rewrite is
// never taken for the system's change: with no way to tell it from an edit setting
// those values back, it is held for review (possible_redelivery); when the origin
// marker proves it (the row named a later apply, the rewrite put the old id back),
// the agreed values are re-applied (rule repair); and a rewrite of what is agreed
// anyway is a duplicate.
func TestSinkRedelivery(t *testing.T) {
	t.Run("ambiguous without a marker", func(t *testing.T) {
		h := newHarness(t, nil)
		for _, e := range created {
			h.run(e)
		}
		if got, want := h.run(ev{system: "billing", op: u, tsMs: 2000, after: []string{`email="a@x"`, `notes="n1"`}}), []string{`apply billing->crm upsert notes="n1" rule=sync`}; !slices.Equal(got, want) {
			t.Fatalf("billing's edit: got %q, want %q", got, want)
		}
		got := h.run(ev{system: "billing", op: u, tsMs: 3000, after: []string{`email="a@x"`, `notes="n0"`}})
		if want := []string{"dlq [notes] possible_redelivery"}; !slices.Equal(got, want) {
			t.Fatalf("the rewrite of crm's create: got %q, want %q", got, want)
		}
	})
	t.Run("an image without one of the apply's fields is no rewrite", func(t *testing.T) {
		// A rewrite assigns every field of the apply, and PostgreSQL logs an
		// assigned column even when TOASTed: an image without email (an unchanged
		// TOASTed column) is billing's own edit of notes.
		h := newHarness(t, nil)
		for _, e := range created {
			h.run(e)
		}
		h.run(ev{system: "billing", op: u, tsMs: 2000, after: []string{`email="a@x"`, `notes="n1"`}})
		got := h.run(ev{system: "billing", op: u, tsMs: 3000, after: []string{`notes="n0"`}})
		if want := []string{`apply billing->crm upsert notes="n0" rule=sync`}; !slices.Equal(got, want) {
			t.Fatalf("billing's edit back to n0: got %q, want %q", got, want)
		}
	})
	t.Run("certain with a marker", func(t *testing.T) {
		h := newHarness(t, func(c *config.Config) { c.Systems["billing"].OriginMarker = "concord_event" })
		h.run(ev{system: "crm", op: c, tsMs: 1000, after: []string{`email_address="a@x"`, `notes="n0"`}})
		first := h.last
		h.run(ev{system: "billing", op: c, tsMs: 1100, after: []string{`email="a@x"`, `notes="n0"`}, marker: "$last", want: []string{"echo"}})
		h.run(ev{system: "crm", op: u, tsMs: 2000, after: []string{`email_address="a@x"`, `notes="n2"`}})
		if got := h.run(ev{system: "billing", op: u, tsMs: 2100, after: []string{`email="a@x"`, `notes="n2"`}, marker: "$last"}); !slices.Equal(got, []string{"echo"}) {
			t.Fatalf("echo of the second apply: %q", got)
		}
		got := h.run(ev{system: "billing", op: u, tsMs: 3000, after: []string{`email="a@x"`, `notes="n0"`}, marker: first})
		if want := []string{`apply crm->billing upsert notes="n2" rule=repair`}; !slices.Equal(got, want) {
			t.Fatalf("the rewrite of the first apply: got %q, want %q", got, want)
		}
	})
	t.Run("a rewrite of agreed values is a duplicate", func(t *testing.T) {
		h := newHarness(t, nil)
		for _, e := range created {
			h.run(e)
		}
		h.run(ev{system: "crm", op: u, tsMs: 2000, after: []string{`email_address="a@x"`, `notes="n3"`}})
		h.run(ev{system: "billing", op: u, tsMs: 2100, after: []string{`email="a@x"`, `notes="n3"`}, want: []string{"echo"}})
		// The sink rewrites both applies: the create's is held, the second's sets
		// what is agreed anyway.
		if got, want := h.run(ev{system: "billing", op: u, tsMs: 2200, after: []string{`email="a@x"`, `notes="n0"`}}), []string{"dlq [notes] possible_redelivery"}; !slices.Equal(got, want) {
			t.Fatalf("rewrite of the create: got %q, want %q", got, want)
		}
		if got, want := h.run(ev{system: "billing", op: u, tsMs: 2300, after: []string{`email="a@x"`, `notes="n3"`}}), []string{"duplicate"}; !slices.Equal(got, want) {
			t.Fatalf("rewrite of the update: got %q, want %q", got, want)
		}
	})
}
