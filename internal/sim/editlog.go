package sim

import (
	"slices"
	"sync"
	"time"
)

// Edit is one user edit a system committed, as Config.EditLog records it: one per
// field written (a create writes every editable field) and one per delete. Sink
// writes are not edits.
type Edit struct {
	// Seq orders every system's edits together: an edit with a higher Seq was
	// committed later (both are taken under the system's table lock).
	Seq    int64
	System string
	Record string
	// Field is the canonical field written; "" for a delete.
	Field string
	// Value is the canonical JSON value as the table stored it (a jsonb document as
	// PostgreSQL prints it), so it compares with Rows. "" for a delete.
	Value  string
	Delete bool
	At     time.Time // when it was committed (the wall clock, not the system's skewed one)
}

// editLog is the shared, append-only record of every system's user edits.
type editLog struct {
	mu    sync.Mutex
	edits []Edit
}

// add appends e with the next sequence number. Callers hold their table's lock, so
// a table's edits are logged in commit order.
func (l *editLog) add(e Edit) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.Seq = int64(len(l.edits)) + 1
	l.edits = append(l.edits, e)
}

func (l *editLog) snapshot() []Edit {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.edits)
}

// logUpsert records the fields a user upsert of id wrote, with the values the table
// now holds. Callers hold t.mu.
func (t *table) logUpsert(id string, set row, at time.Time) {
	if t.log == nil {
		return
	}
	r, _ := t.db.Row(id)
	cols := make([]string, 0, len(set))
	for col := range set {
		cols = append(cols, col)
	}
	slices.Sort(cols)
	for _, col := range cols {
		f, ok := t.fieldOf[col]
		if !ok {
			f = col
		}
		t.log.add(Edit{System: t.spec.Name, Record: id, Field: f, Value: r[col], At: at})
	}
}

// logDelete records a user delete of id. Callers hold t.mu.
func (t *table) logDelete(id string, at time.Time) {
	if t.log != nil {
		t.log.add(Edit{System: t.spec.Name, Record: id, Delete: true, At: at})
	}
}

// Edits returns every user edit committed so far, in Seq order, when Config.EditLog
// is set (nil otherwise). The slice is a copy.
func (s *Sim) Edits() []Edit {
	if s.edits == nil {
		return nil
	}
	return s.edits.snapshot()
}

// PauseEditing pauses (true) or resumes (false) the simulated users without ending
// them, unlike StopEditing: a checker can let the sync settle, compare the systems
// and let the users carry on. Resumed, they edit at Config.Rate from then on, without
// catching up on the pause. Sinks keep consuming throughout.
func (s *Sim) PauseEditing(paused bool) {
	s.paused.Store(paused)
}
