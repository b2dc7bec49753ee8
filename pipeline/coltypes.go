package pipeline

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/concord-sync/concord/codecs"
	"github.com/concord-sync/concord/resolver"
)

// columnTypes keeps the types of the systems' columns that concord learned from the
// Connect schemas of each system's own change events: what an apply to that system
// must carry for its sink to bind each column to its SQL type. Readers take an
// immutable snapshot (one per batch); a schema that changes a type makes a new one.
// Safe for concurrent use.
type columnTypes struct {
	snap atomic.Pointer[resolver.ColumnTypes]
	mu   sync.Mutex // serialises learners
}

// TypeStore keeps learned column types across restarts: a Store that implements it
// (state.Redis and state.Memory do) is loaded at start and written when a type is
// learned. Types are in the configuration's syntax (codecs.ColumnType.String).
type TypeStore interface {
	LoadColumnTypes(ctx context.Context) (map[string]map[string]string, error)
	SaveColumnTypes(ctx context.Context, system string, types map[string]string) error
}

// load sets the types a TypeStore kept. An entry that does not parse is an error:
// the store was written by concord.
func (c *columnTypes) load(stored map[string]map[string]string) error {
	next := make(resolver.ColumnTypes, len(stored))
	for system, cols := range stored {
		m := make(map[string]codecs.ColumnType, len(cols))
		for col, s := range cols {
			t, err := codecs.ParseColumnType(s)
			if err != nil {
				return fmt.Errorf("pipeline: stored column type of %s.%s: %w", system, col, err)
			}
			m[col] = t
		}
		next[system] = m
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.snap.Store(&next)
	return nil
}

// export returns a system's known types in the configuration's syntax.
func (c *columnTypes) export(system string) map[string]string {
	known := c.snapshot()[system]
	out := make(map[string]string, len(known))
	for col, t := range known {
		out[col] = t.String()
	}
	return out
}

// snapshot returns the types known now; the caller must not modify it.
func (c *columnTypes) snapshot() resolver.ColumnTypes {
	if p := c.snap.Load(); p != nil {
		return *p
	}
	return nil
}

// learn records the column types a system's event carries and reports whether any
// was new. It allocates only when something changed.
func (c *columnTypes) learn(system string, cols []codecs.ColumnSchema) bool {
	if !c.differs(c.snapshot(), system, cols) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.snapshot()
	if !c.differs(old, system, cols) {
		return false
	}
	next := make(resolver.ColumnTypes, len(old)+1)
	for s, m := range old {
		next[s] = m
	}
	merged := make(map[string]codecs.ColumnType, len(old[system])+len(cols))
	for col, t := range old[system] {
		merged[col] = t
	}
	for _, cs := range cols {
		merged[string(cs.Column)] = cs.Type
	}
	next[system] = merged
	c.snap.Store(&next)
	return true
}

func (c *columnTypes) differs(known resolver.ColumnTypes, system string, cols []codecs.ColumnSchema) bool {
	m := known[system]
	for _, cs := range cols {
		if t, ok := m[string(cs.Column)]; !ok || t != cs.Type {
			return true
		}
	}
	return false
}
