package codecs

import (
	"fmt"

	"github.com/valyala/fastjson"
)

// maxInterned bounds the interner: a stream of ever-new column names (a hostile or
// broken producer) restarts it instead of growing memory without end.
const maxInterned = 1 << 14

// maxColumns bounds a row: no database has tables this wide (PostgreSQL allows 1,600
// columns, MySQL 4,096, SQL Server's sparse tables 30,000), and a row of more
// columns than the interner holds would only thrash it.
const maxColumns = maxInterned

// interner turns byte strings into strings, allocating only the first time it sees
// one, and detects a column name repeated within one row.
type interner struct {
	index   map[string]int
	entries []internEntry
	hints   []int  // per column position, the entry last seen there: rows repeat their layout
	mark    uint32 // the current row's mark
}

type internEntry struct {
	s    string
	mark uint32 // the mark of the last row that had this column
}

// intern returns b as a string.
func (in *interner) intern(b []byte) string {
	return in.entries[in.lookup(b)].s
}

func (in *interner) lookup(b []byte) int {
	if i, ok := in.index[string(b)]; ok {
		return i
	}
	if in.index == nil || len(in.entries) >= maxInterned {
		in.index = make(map[string]int, 64)
		in.entries = in.entries[:0]
	}
	s := string(b)
	in.index[s] = len(in.entries)
	in.entries = append(in.entries, internEntry{s: s})
	return len(in.entries) - 1
}

// startRow starts a new row for column.
func (in *interner) startRow() {
	in.mark++
	if in.mark == 0 { // wrapped: forget every old mark
		for i := range in.entries {
			in.entries[i].mark = 0
		}
		in.mark = 1
	}
}

// column interns the name of the column at position pos of the current row and
// reports whether the row already had it. Trying the name last seen at pos first
// saves hashing it.
func (in *interner) column(b []byte, pos int) (name string, repeated bool) {
	if pos >= len(in.hints) {
		in.hints = append(in.hints, make([]int, pos+1-len(in.hints))...)
	}
	i := in.hints[pos]
	if i >= len(in.entries) || in.entries[i].s != string(b) {
		i = in.lookup(b)
		in.hints[pos] = i
	}
	e := &in.entries[i]
	repeated = e.mark == in.mark
	e.mark = in.mark
	return e.s, repeated
}

// decodeRow decodes a row image (a JSON object of columns) into dst's array.
// The result is never nil.
func (d *Decoder) decodeRow(dst Row, o *fastjson.Object, types *fieldTypes) (Row, error) {
	if o.Len() > maxColumns {
		return emptyRow(dst), fmt.Errorf("more than %d columns", maxColumns)
	}
	row := emptyRow(dst)
	d.names.startRow()
	var err error
	o.Visit(func(name []byte, v *fastjson.Value) {
		if err == nil {
			row, err = d.appendColumn(row, name, v, types)
		}
	})
	return row, err
}

// appendColumn appends one column: its name interned, its value in canonical JSON
// in d.buf, checked against its schema when the message has one (see checkType) and
// otherwise, for a number, against what concord can write back (checkUntypedNumber).
// Call d.names.startRow before the first column of a row.
func (d *Decoder) appendColumn(row Row, name []byte, v *fastjson.Value, types *fieldTypes) (Row, error) {
	col, repeated := d.names.column(name, len(row))
	if repeated {
		return row, fmt.Errorf("column %q appears twice", col)
	}
	t, inSchema := types.lookup(name, len(row))
	if !inSchema && types.strict {
		return row, fmt.Errorf("column %q is not a field of the message's schema: the schema does not match its payload", col)
	}
	start := len(d.buf)
	var err error
	if t.kind != logicalNone {
		d.buf, err = d.conv.appendLogical(d.buf, v, t)
	} else {
		d.buf, err = AppendCanonicalJSON(d.buf, v)
		switch {
		case err != nil:
		case t.typ != typeUnknown:
			err = checkType(t.typ, v, d.buf[start:])
		case v.Type() == fastjson.TypeNumber:
			err = checkUntypedNumber(d.buf[start:])
		}
	}
	if err != nil {
		d.buf = d.buf[:start]
		return row, fmt.Errorf("column %q: %w", col, err)
	}
	end := len(d.buf)
	return append(row, Column{Name: col, Value: d.buf[start:end:end]}), nil
}

// emptyRow returns r emptied for reuse, never nil: an empty image is not an absent one.
func emptyRow(r Row) Row {
	if r == nil {
		return make(Row, 0, 16)
	}
	return r[:0]
}
