package state

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
)

// Column types learned from the systems' own events are kept with the states, so
// that a restarted concord types its applies before it has seen each target again.
// They are stored as each system's column -> type in the configuration's syntax
// (codecs.ColumnType.String).

// ColumnTypesKey is the Redis hash of the learned column types: system -> JSON object.
func (r *Redis) ColumnTypesKey() string { return "{" + r.name + "}:column_types" }

// LoadColumnTypes returns every system's learned column types.
func (r *Redis) LoadColumnTypes(ctx context.Context) (map[string]map[string]string, error) {
	h, err := r.client.HGetAll(ctx, r.ColumnTypesKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("state: reading learned column types: %w", err)
	}
	out := make(map[string]map[string]string, len(h))
	for system, b := range h {
		var cols map[string]string
		if err := json.Unmarshal([]byte(b), &cols); err != nil {
			return nil, fmt.Errorf("state: learned column types of %s in %s: %w", system, r.ColumnTypesKey(), err)
		}
		out[system] = cols
	}
	return out, nil
}

// SaveColumnTypes replaces one system's learned column types.
func (r *Redis) SaveColumnTypes(ctx context.Context, system string, types map[string]string) error {
	b, err := json.Marshal(types)
	if err != nil {
		return err
	}
	if err := r.client.HSet(ctx, r.ColumnTypesKey(), system, b).Err(); err != nil {
		return fmt.Errorf("state: saving learned column types of %s: %w", system, err)
	}
	return nil
}

// LoadColumnTypes returns every system's learned column types.
func (m *Memory) LoadColumnTypes(context.Context) (map[string]map[string]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]map[string]string, len(m.types))
	for s, cols := range m.types {
		out[s] = maps.Clone(cols)
	}
	return out, nil
}

// SaveColumnTypes replaces one system's learned column types.
func (m *Memory) SaveColumnTypes(_ context.Context, system string, types map[string]string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.types == nil {
		m.types = map[string]map[string]string{}
	}
	m.types[system] = maps.Clone(types)
	return nil
}
