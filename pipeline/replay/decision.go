package replay

import (
	"encoding/json"

	"github.com/concord-sync/concord/resolver"
)

// decision is one output line (DESIGN.md section 8). Empty members are left out.
type decision struct {
	Kind     string                                `json:"kind"`
	Record   string                                `json:"record,omitempty"`
	System   string                                `json:"system,omitempty"`
	Target   string                                `json:"target,omitempty"`
	Op       string                                `json:"op,omitempty"`
	Fields   any                                   `json:"fields,omitempty"`
	Field    string                                `json:"field,omitempty"`
	Winner   string                                `json:"winner,omitempty"`
	Origin   string                                `json:"origin,omitempty"`
	Rule     string                                `json:"rule,omitempty"`
	Reason   string                                `json:"reason,omitempty"`
	EventID  string                                `json:"event_id,omitempty"`
	EntryID  string                                `json:"entry_id,omitempty"`
	Versions map[string]map[string]json.RawMessage `json:"versions,omitempty"`
	Base     map[string]json.RawMessage            `json:"base,omitempty"`
	Error    string                                `json:"error,omitempty"`
}

// render turns a resolver decision into its output line: apply fields in the target
// system's column names, conflict and DLQ fields as canonical names.
func (r *Replayer) render(d *resolver.Decision) decision {
	out := decision{Kind: d.Kind.String(), Record: d.Record, System: d.System, Rule: string(d.Rule), Reason: d.Reason}
	switch d.Kind {
	case resolver.KindApply:
		out.Target, out.Origin, out.EventID = d.Target, d.Origin, d.EventID
		out.Op = "upsert"
		if d.Delete {
			out.Op = "delete"
		}
		if len(d.Fields) > 0 {
			cols := make(map[string]json.RawMessage, len(d.Fields))
			for _, f := range d.Fields {
				cols[r.res.Column(d.Target, f.Name)] = json.RawMessage(f.Value)
			}
			out.Fields = cols
		}
	case resolver.KindConflict:
		out.Fields, out.Winner = d.ConflictFields, d.Winner
	case resolver.KindDLQ:
		out.Fields, out.EntryID, out.Target, out.EventID = d.ConflictFields, d.EntryID, d.Target, d.EventID
		out.Versions = make(map[string]map[string]json.RawMessage, len(d.Versions))
		for _, v := range d.Versions {
			if v.Deleted {
				out.Versions[v.System] = nil
				continue
			}
			out.Versions[v.System] = values(v.Fields)
		}
		if len(d.Base) > 0 {
			out.Base = values(d.Base)
		}
	case resolver.KindSkip:
		out.Field = d.Field
	case resolver.KindEcho:
		out.EventID = d.EventID
	}
	return out
}

func values(vs []resolver.Value) map[string]json.RawMessage {
	m := make(map[string]json.RawMessage, len(vs))
	for _, v := range vs {
		if v.Value == nil {
			m[v.Name] = json.RawMessage("null")
			continue
		}
		m[v.Name] = json.RawMessage(v.Value)
	}
	return m
}
