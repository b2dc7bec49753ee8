package dlq_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/concord-sync/concord/dlq"
	"github.com/concord-sync/concord/internal/testenv"
)

// TestHistoryPerMinute: each batch's events and conflicts add to its minute, with the
// DLQ depth then; quiet minutes are there with no events and the depth carried over.
func TestHistoryPerMinute(t *testing.T) {
	store := dlq.NewStore(testenv.Redis(t).Client(t), "contacts")
	ctx := context.Background()
	base := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	note := func(at time.Time, events, conflicts int64) {
		t.Helper()
		if err := store.Note(ctx, dlq.Batch{Events: events, Conflicts: conflicts, At: at}); err != nil {
			t.Fatal(err)
		}
	}
	note(base.Add(10*time.Second), 100, 2)
	note(base.Add(50*time.Second), 50, 1)
	if err := store.Record(ctx, []dlq.Change{{
		EntryID: "e", Record: "r", Reason: "clock_skew", Fields: []string{"notes"}, Cause: "c", At: base,
		Versions: []dlq.Version{{System: "crm", TsUs: 1, Values: map[string]json.RawMessage{"notes": json.RawMessage(`"x"`)}}},
	}}); err != nil {
		t.Fatal(err)
	}
	note(base.Add(2*time.Minute+5*time.Second), 10, 0)
	points, err := store.History(ctx, base.Add(3*time.Minute), 4)
	if err != nil {
		t.Fatal(err)
	}
	want := []dlq.Point{
		{At: base, Events: 150, Conflicts: 3, Depth: 0},
		{At: base.Add(time.Minute), Depth: 0},
		{At: base.Add(2 * time.Minute), Events: 10, Depth: 1},
		{At: base.Add(3 * time.Minute), Depth: 1},
	}
	if len(points) != len(want) {
		t.Fatalf("points = %+v", points)
	}
	for i := range want {
		if points[i] != want[i] {
			t.Errorf("point %d = %+v, want %+v", i, points[i], want[i])
		}
	}
}
