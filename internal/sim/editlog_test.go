package sim

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestEditLog follows every edit to the table: each logged field's value is what
// the table held right after it, the log is in commit order, every value is new,
// and deletes are logged as deletes.
func TestEditLog(t *testing.T) {
	e, tables, _ := newTestEditor(t, Config{
		Systems: []SystemSpec{crmSpec(), billingSpec()}, Records: 10, Rate: 1,
		ConcurrentRatio: 0.3, DeleteRatio: 0.1, Seed: 5,
	})
	log := &editLog{}
	for _, tb := range tables {
		tb.log = log
	}
	last := map[string]map[string]Edit{} // system/record -> field -> last edit
	for range 300 {
		if err := e.act(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, tb := range tables {
			drain(tb)
		}
	}
	edits := log.snapshot()
	if len(edits) == 0 {
		t.Fatal("no edits logged")
	}
	seen := map[string]bool{}
	deletes := 0
	for i, ed := range edits {
		if ed.Seq != int64(i+1) {
			t.Fatalf("edit %d has Seq %d", i, ed.Seq)
		}
		key := ed.System + "/" + ed.Record
		if ed.Delete {
			deletes++
			delete(last, key)
			continue
		}
		if seen[ed.Field+"="+ed.Value] {
			t.Errorf("value %s of %s written twice: edits are not identifiable", ed.Value, ed.Field)
		}
		seen[ed.Field+"="+ed.Value] = true
		if last[key] == nil {
			last[key] = map[string]Edit{}
		}
		last[key][ed.Field] = ed
	}
	if deletes == 0 {
		t.Error("no delete logged")
	}
	for _, tb := range tables {
		rows := tb.canonicalRows()
		for key, fields := range last {
			for f, ed := range fields {
				if ed.System != tb.spec.Name {
					continue
				}
				if got := rows[ed.Record][f]; got != ed.Value {
					t.Errorf("%s %s: table holds %s, last logged edit %s", key, f, got, ed.Value)
				}
			}
		}
	}
}

// TestPauseEditing: a paused editor makes no edits, and edits again once resumed.
func TestPauseEditing(t *testing.T) {
	e, tables, _ := newTestEditor(t, Config{
		Systems: []SystemSpec{crmSpec(), billingSpec()}, Records: 10, Rate: 200, Seed: 5,
	})
	var paused atomic.Bool
	paused.Store(true)
	e.paused = &paused
	log := &editLog{}
	for _, tb := range tables {
		tb.log = log
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.run(ctx, nil) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	go func() { // keep the queues from filling
		for ctx.Err() == nil {
			for _, tb := range tables {
				select {
				case <-tb.queue:
				case <-time.After(time.Millisecond):
				}
			}
		}
	}()
	time.Sleep(200 * time.Millisecond) // a pause has no condition to wait for
	if n := len(log.snapshot()); n != 0 {
		t.Fatalf("%d edits while paused", n)
	}
	paused.Store(false)
	await(t, "edits after resuming", func() bool { return len(log.snapshot()) > 0 })
}
