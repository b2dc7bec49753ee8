package codecs

import (
	"bytes"
	"fmt"

	"github.com/valyala/fastjson"
)

// unwrapMeta collects the metadata columns that ExtractNewRecordState adds to a row.
type unwrapMeta struct {
	op, deleted *fastjson.Value
	source      sourceInfo
	dup         string // the first metadata column given twice
}

// take keeps the metadata column called name and reports whether it is one (every
// name starting with "__", the SMT's prefix). Source fields come as "__lsn" or
// "__source_lsn"; "__ts_ms" and its kin are the envelope's processing time, not the
// commit time, and are dropped.
func (m *unwrapMeta) take(name []byte, v *fastjson.Value) bool {
	field, ok := bytes.CutPrefix(name, []byte("__"))
	if !ok {
		return false
	}
	switch string(field) {
	case "op":
		m.once(&m.op, v, "__op")
	case "deleted":
		m.once(&m.deleted, v, "__deleted")
	case "ts_ms", "ts_us", "ts_ns":
	default:
		field, alias := bytes.CutPrefix(field, []byte("source_"))
		m.source.setAs(field, v, alias)
	}
	return true
}

// once keeps a metadata column's value, noting a second one.
func (m *unwrapMeta) once(p **fastjson.Value, v *fastjson.Value, name string) {
	if *p != nil && m.dup == "" {
		m.dup = name
	}
	*p = v
}

// decodeUnwrapped decodes a flat row (see Options.Unwrapped). The schema, if any,
// describes the row itself.
func (d *Decoder) decodeUnwrapped(schema *fastjson.Value, obj *fastjson.Object, ev *Event) error {
	if obj.Len() > maxColumns {
		return fmt.Errorf("more than %d columns", maxColumns)
	}
	d.afterTypes.read(schema)
	d.rowSchema = schema
	var meta unwrapMeta
	row := emptyRow(d.after)
	d.names.startRow()
	var err error
	obj.Visit(func(name []byte, v *fastjson.Value) {
		if err == nil && !meta.take(name, v) {
			row, err = d.appendColumn(row, name, v, &d.afterTypes)
		}
	})
	d.after = row
	if err != nil {
		return err
	}
	if meta.dup != "" {
		return fmt.Errorf("%q appears twice", meta.dup)
	}
	op, deleted, err := meta.operation()
	if err != nil {
		return err
	}
	if err := d.applySource(ev, &meta.source, true); err != nil {
		return err
	}
	ev.Kind = KindChange
	if deleted {
		ev.Op, ev.Before = OpDelete, row
	} else {
		ev.Op, ev.After = op, row
	}
	return d.checkKey(ev.Key, row, &d.afterTypes)
}

// operation reads __op and __deleted. Without __op a row is an update.
func (m *unwrapMeta) operation() (op Op, deleted bool, err error) {
	op = OpUpdate
	if present(m.op) {
		if op, err = parseOp(m.op, "__op", "cudr"); err != nil {
			return op, false, err
		}
	}
	if present(m.deleted) {
		switch m.deleted.Type() {
		case fastjson.TypeTrue:
			deleted = true
		case fastjson.TypeFalse:
		default:
			switch s := stringOrNil(m.deleted); string(s) {
			case "true":
				deleted = true
			case "false":
			default:
				return op, false, fmt.Errorf(`"__deleted" is %s, want true or false`, preview(m.deleted))
			}
		}
	}
	return op, deleted || op == OpDelete, nil
}
