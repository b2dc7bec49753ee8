package pipeline_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/concord-sync/concord/internal/testenv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	"github.com/concord-sync/concord/codecs"
	"github.com/concord-sync/concord/config"
	"github.com/concord-sync/concord/pipeline"
	"github.com/concord-sync/concord/resolver"
)

const reloadConfig = `name: contacts
systems:
  crm: {topic: crm.public.contacts, key: [id]}
  billing: {topic: billing.public.customers, key: [id]}
authority: {notes: %s}
`

// notesDecision resolves a billing change of notes on a record crm created, and
// returns the kind of the decision about notes under the current rules.
func notesDecision(t *testing.T, rules pipeline.Rules) string {
	t.Helper()
	r := rules.Resolver()
	st := &resolver.State{Record: "1"}
	var ch resolver.Change
	var out resolver.Output
	for _, e := range []struct {
		system string
		lsn    uint64
		notes  string
	}{{"crm", 1, `"a"`}, {"billing", 1, `"a"`}, {"billing", 2, `"b"`}} {
		ev := codecs.Event{
			Kind: codecs.KindChange, Op: codecs.OpUpdate, TsMs: 1_700_000_000_000 + int64(e.lsn),
			Position: codecs.Position{Kind: codecs.PosPostgres, A: e.lsn},
			After:    codecs.Row{{Name: "id", Value: []byte("1")}, {Name: "notes", Value: []byte(e.notes)}},
		}
		if err := r.Canonicalize(e.system, &ev, &ch); err != nil {
			t.Fatal(err)
		}
		out.Reset()
		r.Resolve(time.UnixMilli(1_700_000_000_000), st, &ch, &out)
	}
	if len(out.Decisions) == 0 {
		return "none"
	}
	return out.Decisions[0].Kind.String()
}

func TestReloadAppliesAuthorityAndKeepsTheOldConfigWhenInvalid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "concord.yaml")
	write := func(owner string) {
		t.Helper()
		if err := os.WriteFile(path+".tmp", []byte(fmt.Sprintf(reloadConfig, owner)), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil { // as editors and ConfigMaps do
			t.Fatal(err)
		}
	}
	write("shared")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	res, err := resolver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rules := pipeline.NewLiveRules(res)
	m := pipeline.NewMetrics(prometheus.NewRegistry())
	rl := pipeline.NewReloader(path, cfg, rules, zaptest.NewLogger(t), m)
	ctx := t.Context()
	go func() { _ = rl.Watch(ctx) }()
	time.Sleep(100 * time.Millisecond) // the watch is set up

	if got := notesDecision(t, rules); got != "apply" {
		t.Fatalf("with notes shared, billing's change gives %q, want apply", got)
	}
	write("crm") // the file changes: crm now owns notes
	testenv.Eventually(t, "the reload", func() bool { return testutil.ToFloat64(m.Reloads.WithLabelValues("ok")) >= 1 })
	if got := notesDecision(t, rules); got != "skip" {
		t.Errorf("after the reload billing's change gives %q, want skip (not authoritative)", got)
	}

	write("erp") // not a system: invalid
	testenv.Eventually(t, "the refused reload", func() bool { return testutil.ToFloat64(m.Reloads.WithLabelValues("invalid")) >= 1 })
	if got := notesDecision(t, rules); got != "skip" {
		t.Errorf("an invalid file changed the running rules: billing's change gives %q", got)
	}

	write("shared")
	if err := rl.Reload(); err != nil { // SIGHUP calls Reload
		t.Fatalf("Reload: %v", err)
	}
	if got := notesDecision(t, rules); got != "apply" {
		t.Errorf("after an explicit reload billing's change gives %q, want apply", got)
	}
}
