package world

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Row is a table row: column -> canonical JSON value. A column a row does not hold is
// NULL. Rows are replaced, never changed in place, so an old row can serve as a
// before image.
type Row map[string]string

// Null is the canonical JSON of SQL NULL.
const Null = "null"

// Spec describes one system's table.
type Spec struct {
	Name      string // the system: Debezium's topic prefix and source.db
	Schema    string // source.schema; default "public"
	Table     string // source.table
	KeyColumn string // the primary key column
	// Columns are the table's other columns, in order. A sink write of a column the
	// table lacks adds it (the JDBC sink's schema evolution), NULL in the other rows.
	Columns []string
	// TimestampColumn, when set, is one of Columns that a trigger sets on every write
	// (the sink's included) to the system's clock, in epoch milliseconds.
	TimestampColumn string
	// FullBefore is REPLICA IDENTITY FULL: updates and deletes carry the whole old
	// row. Without it an update's before is null and a delete's holds the key alone.
	FullBefore bool
	// Toasted are columns whose values PostgreSQL stores out of line (TOAST). Without
	// FullBefore, an update that leaves such a column unchanged does not log its value,
	// and Debezium sends Unavailable for it instead (PostgreSQL connector,
	// unavailable.value.placeholder).
	Toasted []string
	// Types are the PostgreSQL types of columns (PGTimestamptz, "numeric(12,2)", ...);
	// a column without one has no declared type and keeps the JSON it is sent. The
	// sink writes typed columns as PostgreSQL stores them (Table.ReadApply), and the
	// change events carry them as Debezium's PostgreSQL connector does (Schemas).
	Types map[string]string
	// Schemas: the connector's JsonConverter has schemas.enable=true, so each change
	// event carries its Connect schema.
	Schemas bool
}

// CheckTypes reports the first column type of types that is not one a Spec may have.
func CheckTypes(types map[string]string) error {
	for col, s := range types {
		if _, err := parsePGType(s); err != nil {
			return fmt.Errorf("column %s: %w", col, err)
		}
	}
	return nil
}

// Unavailable is Debezium's default unavailable.value.placeholder, as canonical JSON.
const Unavailable = `"__debezium_unavailable_value"`

// CauseKind says who made a write.
type CauseKind uint8

// Causes of a change.
const (
	User     CauseKind = iota + 1 // a user (or application) of the system
	Sink                          // the JDBC sink writing a concord apply
	Snapshot                      // Debezium's snapshot read of a row already there
)

// Cause is the ground truth of a change: who made it.
type Cause struct {
	Kind    CauseKind
	EventID string // Sink: the concord.event_id of the apply written
	Edit    int    // User: the caller's number for the edit
}

// Op is a Debezium operation.
type Op byte

// Debezium operations.
const (
	OpCreate Op = 'c'
	OpUpdate Op = 'u'
	OpDelete Op = 'd'
	OpRead   Op = 'r'
)

// Change is one committed write (or snapshot read) as Debezium publishes it.
type Change struct {
	Op     Op
	ID     string // the key column's value
	Before Row    // nil: null; for a delete without FullBefore: the key alone (empty Row)
	After  Row    // nil for a delete
	// ClockMs is source.ts_ms: the system's clock at commit (or at the snapshot read).
	ClockMs   int64
	LSN, TxID int64
	Cause     Cause
}

// firstLSN is where log sequence numbers start; every commit moves them on by lsnStep.
const (
	firstLSN = 0x2000000
	lsnStep  = 232
)

// Table is one system's table and its change capture. Not safe for concurrent use.
type Table struct {
	spec      Spec
	columns   []string // spec.Columns and columns added by sink writes, in order
	rows      map[string]Row
	types     map[string]pgType
	lsn, txID int64
	capturing bool
}

// NewTable returns an empty table. With capturing false the connector has not
// started: writes commit without a change event until Snapshot is called. It panics
// on a column type CheckTypes refuses.
func NewTable(spec Spec, capturing bool) *Table {
	if spec.Schema == "" {
		spec.Schema = "public"
	}
	t := &Table{
		spec: spec, columns: slices.Clone(spec.Columns), rows: map[string]Row{},
		types: map[string]pgType{}, lsn: firstLSN, txID: 700, capturing: capturing,
	}
	for col, s := range spec.Types {
		pt, err := parsePGType(s)
		if err != nil {
			panic(fmt.Sprintf("world: %s: column %s: %v", spec.Name, col, err))
		}
		t.types[col] = pt
	}
	return t
}

// Spec returns the table's description.
func (t *Table) Spec() Spec { return t.spec }

// Capturing reports whether the connector streams the table's changes.
func (t *Table) Capturing() bool { return t.capturing }

// Row returns the row of id in full (every column, NULL where unset) and whether it
// exists. The row is a copy.
func (t *Table) Row(id string) (Row, bool) {
	r, ok := t.rows[id]
	if !ok {
		return nil, false
	}
	return t.image(r), true
}

// Has reports whether the row of id exists.
func (t *Table) Has(id string) bool {
	_, ok := t.rows[id]
	return ok
}

// IDs returns the keys of every row, sorted.
func (t *Table) IDs() []string { return slices.Sorted(maps.Keys(t.rows)) }

// Columns returns the table's non-key columns, in order.
func (t *Table) Columns() []string { return slices.Clone(t.columns) }

// Upsert commits INSERT ... ON CONFLICT DO UPDATE of the columns in set: an existing
// row keeps its other columns, a new row has them NULL. The timestamp column, when
// there is one, is set to clockMs, as its trigger would. Like PostgreSQL it commits
// (and Debezium publishes) an update even when no value changes. The change is nil
// when the connector is not capturing.
func (t *Table) Upsert(id string, set Row, clockMs int64, cause Cause) *Change {
	old, exists := t.rows[id]
	next := make(Row, len(old)+len(set)+1)
	maps.Copy(next, old)
	for col, v := range set {
		t.addColumn(col)
		next[col] = t.store(col, v)
	}
	if tc := t.spec.TimestampColumn; tc != "" {
		next[tc] = strconv.FormatInt(clockMs, 10)
	}
	t.rows[id] = next
	c := &Change{Op: OpUpdate, ID: id, After: t.image(next), Cause: cause}
	switch {
	case !exists:
		c.Op = OpCreate
	case t.spec.FullBefore:
		c.Before = t.image(old)
	default:
		for _, col := range t.spec.Toasted {
			// A column the statement does not assign keeps its TOAST pointer and is
			// not logged; one it assigns (even to the same value) is a new datum.
			if _, written := set[col]; !written && old[col] != "" && old[col] != Null {
				c.After[col] = Unavailable
			}
		}
	}
	return t.commit(c, clockMs)
}

// Delete commits DELETE of id. A missing row is a DELETE of no rows: nothing is
// committed, and it returns nil, false.
func (t *Table) Delete(id string, clockMs int64, cause Cause) (*Change, bool) {
	old, ok := t.rows[id]
	if !ok {
		return nil, false
	}
	delete(t.rows, id)
	c := &Change{Op: OpDelete, ID: id, Before: Row{}, Cause: cause}
	if t.spec.FullBefore {
		c.Before = t.image(old)
	}
	return t.commit(c, clockMs), true
}

// Snapshot starts the connector: it reads every row as a snapshot read (op r, in key
// order) and streams every later commit.
func (t *Table) Snapshot(clockMs int64) []*Change {
	t.capturing = true
	var out []*Change
	for _, id := range t.IDs() {
		out = append(out, &Change{
			Op: OpRead, ID: id, After: t.image(t.rows[id]), ClockMs: clockMs,
			LSN: t.lsn, TxID: t.txID, Cause: Cause{Kind: Snapshot},
		})
	}
	return out
}

func (t *Table) commit(c *Change, clockMs int64) *Change {
	t.lsn += lsnStep
	t.txID++
	c.ClockMs, c.LSN, c.TxID = clockMs, t.lsn, t.txID
	if !t.capturing {
		return nil
	}
	return c
}

// image is a row with every column of the table, NULL where the row has none.
func (t *Table) image(r Row) Row {
	img := make(Row, len(t.columns))
	for _, col := range t.columns {
		v, ok := r[col]
		if !ok {
			v = Null
		}
		img[col] = v
	}
	return img
}

func (t *Table) addColumn(col string) {
	if col != t.spec.KeyColumn && !slices.Contains(t.columns, col) {
		t.columns = append(t.columns, col)
	}
}

// store is how PostgreSQL keeps a value written into a column: a jsonb document as
// jsonb prints it (jsonbText); everything else as it is (the sink's writes are
// already converted by ReadApply).
func (t *Table) store(col, v string) string {
	if t.types[col].name != PGJSONB || v == Null {
		return v
	}
	var text string
	if json.Unmarshal([]byte(v), &text) != nil {
		return v
	}
	var doc any
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	if dec.Decode(&doc) != nil {
		return v
	}
	return quoteString(jsonbText(doc))
}
