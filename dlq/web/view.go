package web

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/concord-sync/concord/dlq"
)

// cell is a value as shown: strings as their text, anything else as its JSON.
type cell struct {
	Present bool   // false: the version has no value for the field
	Text    string // what is shown
	JSON    bool   // Text is JSON (a number, bool, null, object or array, or "")
}

func valueCell(raw json.RawMessage) cell {
	if len(raw) == 0 {
		return cell{}
	}
	var s string
	if raw[0] == '"' && json.Unmarshal(raw, &s) == nil && s != "" {
		return cell{Present: true, Text: s}
	}
	return cell{Present: true, Text: string(raw), JSON: true}
}

// humanAge writes a duration the way the queue shows it: "45s", "7m 03s", "3h 12m", "2d 4h".
func humanAge(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Truncate(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}

// usTime writes a version's timestamp (microseconds since the epoch) in RFC 3339, UTC.
func usTime(us int64) string {
	if us == 0 {
		return "unknown"
	}
	return time.UnixMicro(us).UTC().Format(time.RFC3339Nano)
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func entryPath(id string) string { return Prefix + "entry/" + url.PathEscape(id) }

func auditPath(record string) string {
	return Prefix + "audit?" + url.Values{"record": {record}}.Encode()
}

// queueRow is one entry in the queue table.
type queueRow struct {
	ID, Record, Status string
	Age, QueuedAt      string
	Fields, Reasons    []string
	Systems            []string
	WholeRecord        bool
}

func newQueueRow(e *dlq.Entry, now time.Time) queueRow {
	return queueRow{
		ID: e.ID, Record: e.Record, Status: e.Status,
		Age: humanAge(now.Sub(e.QueuedAt)), QueuedAt: rfc3339(e.QueuedAt),
		Fields: e.Fields, Reasons: reasons(e), Systems: slices.Sorted(maps.Keys(e.Versions)),
		WholeRecord: e.WholeRecord(),
	}
}

func reasons(e *dlq.Entry) []string {
	if len(e.Reasons) > 0 {
		return e.Reasons
	}
	if e.Reason != "" {
		return []string{e.Reason}
	}
	return nil
}

// versionHead is a system's column header on the entry page.
type versionHead struct {
	System  string
	Time    string
	Deleted bool
}

// fieldRow is one field of the side-by-side comparison, and its per-field choices.
type fieldRow struct {
	Field       string
	Index       int  // for element ids: field names may hold any character
	UnderReview bool // one of the entry's Fields (the per-field form decides it)
	Base        cell
	Cells       []versionCell // in the order of the page's systems
	Differs     bool          // the systems do not all show the same value
}

type versionCell struct {
	Value   cell
	System  string
	Deleted bool
}

// compare builds the comparison rows: the fields under review first, in the entry's
// order, then any other field a version or the base carries, sorted.
func compare(e *dlq.Entry, systems []string) []fieldRow {
	review := map[string]bool{}
	fields := slices.Clone(e.Fields)
	for _, f := range fields {
		review[f] = true
	}
	extra := map[string]bool{}
	for _, v := range e.Versions {
		for f := range v.Values {
			if !review[f] {
				extra[f] = true
			}
		}
	}
	for f := range e.Base {
		if !review[f] {
			extra[f] = true
		}
	}
	fields = append(fields, slices.Sorted(maps.Keys(extra))...)

	rows := make([]fieldRow, 0, len(fields))
	for i, f := range fields {
		row := fieldRow{Field: f, Index: i, UnderReview: review[f], Base: valueCell(e.Base[f])}
		for _, s := range systems {
			v := e.Versions[s]
			row.Cells = append(row.Cells, versionCell{Value: valueCell(v.Values[f]), System: s, Deleted: v.Deleted})
		}
		row.Differs = differs(e, systems, f)
		rows = append(rows, row)
	}
	return rows
}

// differs reports whether the systems' versions disagree on f: different values, or a
// value in one and none (or a delete) in another.
func differs(e *dlq.Entry, systems []string, f string) bool {
	var first string
	for i, s := range systems {
		v := e.Versions[s]
		key := "absent"
		if raw, ok := v.Values[f]; ok && !v.Deleted {
			key = "=" + string(raw)
		} else if v.Deleted {
			key = "deleted"
		}
		if i == 0 {
			first = key
		} else if key != first {
			return true
		}
	}
	return false
}

// attachedRow is a later change attached to the entry.
type attachedRow struct {
	System, Time, At, Cause string
	Deleted                 bool
	Values                  []namedCell
}

type namedCell struct {
	Name  string
	Value cell
}

func namedCells(values map[string]json.RawMessage) []namedCell {
	out := make([]namedCell, 0, len(values))
	for _, k := range slices.Sorted(maps.Keys(values)) {
		out = append(out, namedCell{Name: k, Value: valueCell(values[k])})
	}
	return out
}

func attachedRows(e *dlq.Entry) []attachedRow {
	out := make([]attachedRow, 0, len(e.Attached))
	for _, a := range e.Attached {
		out = append(out, attachedRow{
			System: a.System, Time: usTime(a.TsUs), At: rfc3339(a.At), Cause: a.Cause,
			Deleted: a.Deleted, Values: namedCells(a.Values),
		})
	}
	return out
}

// auditRow is one line of the audit trail.
type auditRow struct {
	dlq.AuditEntry
	Time   string
	Values []namedCell
}

func auditRows(entries []dlq.AuditEntry) []auditRow {
	out := make([]auditRow, 0, len(entries))
	for _, a := range entries {
		out = append(out, auditRow{AuditEntry: a, Time: rfc3339(a.At), Values: namedCells(a.Values)})
	}
	return out
}

// option is one choice of a filter drop-down.
type option struct {
	Value, Label string
	Selected     bool
}

func options(values []string, selected, anyLabel string) []option {
	opts := []option{{Value: "", Label: anyLabel, Selected: selected == ""}}
	found := selected == ""
	for _, v := range values {
		opts = append(opts, option{Value: v, Label: v, Selected: v == selected})
		found = found || v == selected
	}
	if !found { // a value from a bookmarked URL that the configuration no longer lists
		opts = append(opts, option{Value: selected, Label: selected, Selected: true})
	}
	return opts
}

// statusAll is the status filter value for every entry.
const statusAll = "all"

var statusLabels = []option{
	{Value: dlq.StatusPending, Label: "pending review"},
	{Value: dlq.StatusResolved, Label: "resolved"},
	{Value: dlq.StatusDismissed, Label: "dismissed"},
	{Value: statusAll, Label: "all"},
}

func statusOptions(selected string) []option {
	opts := slices.Clone(statusLabels)
	for i := range opts {
		opts[i].Selected = opts[i].Value == selected
	}
	return opts
}

func validStatus(s string) bool {
	return slices.ContainsFunc(statusLabels, func(o option) bool { return o.Value == s })
}

func joinComma(s []string) string { return strings.Join(s, ", ") }
