package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/concord-sync/concord/internal/testenv"

	"go.uber.org/zap/zaptest"

	"github.com/concord-sync/concord/dlq"
	"github.com/concord-sync/concord/internal/sim"
)

// TestEchoesNeverLoop runs two simulated systems editing 300 records through concord
// until it has processed more than 10,000 change events, every sink write echoing back.
// Each apply must be recognised as an echo once, the applies must stay bounded by the
// edits, and once the edits stop the sync must go quiet with both tables equal.
func TestEchoesNeverLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for several seconds")
	}
	e := newEnv(t, 4)
	e.start("p1")
	s, err := sim.New(sim.Config{
		Brokers: e.brokers, Records: 300, Rate: 2000, Seed: 7, DeleteRatio: -1, PartitionByID: true,
		Systems: []sim.SystemSpec{
			{
				Name: "crm", Topic: crmTopic, ApplyTopic: "contacts.apply.crm", KeyColumn: "id", FullBefore: true,
				Columns: map[string]string{"email": "email_address", "name": "name", "notes": "notes", "phone": "phone"},
				Owns:    []string{"email", "name"}, Shared: []string{"notes", "phone"},
			},
			{
				Name: "billing", Topic: billingTopic, ApplyTopic: "contacts.apply.billing", ApplyFormat: sim.FormatFlat,
				KeyColumn: "cust_id", TimestampColumn: "updated_at",
				Columns: map[string]string{"payment_status": "payment_status", "name": "full_name", "notes": "notes", "phone": "phone"},
				Owns:    []string{"payment_status"}, Shared: []string{"notes", "phone"},
			},
		},
	}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	m := e.metrics["p1"]
	testenv.EventuallyWithin(t, "10,000 change events", 5*time.Minute, func() bool { return sumCounter(m.Events) > 10_000 })
	s.StopEditing()
	testenv.Eventually(t, "the sync to settle", func() bool { return s.Quiet(time.Second) })
	// ...and concord to have read every change event the systems published.
	testenv.Eventually(t, "concord to read every change event", func() bool {
		var published int64
		for _, st := range s.Stats().Systems {
			published += st.Published
		}
		return sumCounter(m.Events) >= float64(published)
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	applies := sumCounter(m.Decisions, "kind", "apply")
	echoes := sumCounter(m.Decisions, "kind", "echo")
	var edits int64
	for _, st := range s.Stats().Systems {
		edits += st.Edits
	}
	if applies == 0 || echoes != applies {
		t.Errorf("%v applies but %v echoes: every apply should come back exactly once", applies, echoes)
	}
	if applies > float64(edits) {
		t.Errorf("%v applies for %d edits: more applies than genuine changes", applies, edits)
	}
	entries, err := e.dlq.List(context.Background(), dlq.Filter{Status: dlq.StatusPending})
	if err != nil {
		t.Fatal(err)
	}
	if diverged := s.Diverged("crm", "billing", []string{"notes", "phone"}, dlq.Held(entries)); len(diverged) > 0 {
		t.Errorf("%d records diverged outside the DLQ: %v", len(diverged), diverged)
	}
	t.Logf("%d edits, %v events, %v applies, %v echoes", edits, sumCounter(m.Events), applies, echoes)
}
