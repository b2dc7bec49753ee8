package faults

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/concord-sync/concord/dlq"
	"github.com/concord-sync/concord/internal/sim"
)

// Outcomes of a user edit at a check.
const (
	outcomeFinal      = "final"      // every system holds its value (a delete: no system holds the record)
	outcomeSuperseded = "superseded" // a later user edit of the same record and field (or a later delete) exists
	outcomeDecided    = "decided"    // a recorded conflict decision made after it chose another edit, which every system holds
	outcomeHeld       = "held"       // its field waits in the DLQ: set aside, like the convergence check does
	outcomeLost       = "lost"       // anything else
)

// editCheck classifies every user edit against the systems' final tables, the DLQ
// holds and the audit trail.
type editCheck struct {
	rows  map[string]map[string]map[string]string // system -> record -> field -> value
	held  map[string]map[string]bool
	audit map[string][]dlq.AuditEntry // record -> conflict decisions

	lastSet    map[string]map[string]int64 // record -> field -> Seq of its last set
	lastAnySet map[string]int64            // record -> Seq of its last set of any field
	lastDelete map[string]int64            // record -> Seq of its last delete
	deletedBy  map[string]map[string]bool  // record -> systems whose users deleted it
	byValue    map[string]sim.Edit         // record \x00 field \x00 value -> the edit that wrote it
}

func newEditCheck(edits []sim.Edit, rows map[string]map[string]map[string]string, held map[string]map[string]bool, audit []dlq.AuditEntry) *editCheck {
	c := &editCheck{
		rows: rows, held: held, audit: map[string][]dlq.AuditEntry{},
		lastSet: map[string]map[string]int64{}, lastAnySet: map[string]int64{}, lastDelete: map[string]int64{},
		deletedBy: map[string]map[string]bool{}, byValue: map[string]sim.Edit{},
	}
	for _, e := range edits {
		if e.Delete {
			c.lastDelete[e.Record] = max(c.lastDelete[e.Record], e.Seq)
			if c.deletedBy[e.Record] == nil {
				c.deletedBy[e.Record] = map[string]bool{}
			}
			c.deletedBy[e.Record][e.System] = true
			continue
		}
		if c.lastSet[e.Record] == nil {
			c.lastSet[e.Record] = map[string]int64{}
		}
		c.lastSet[e.Record][e.Field] = max(c.lastSet[e.Record][e.Field], e.Seq)
		c.lastAnySet[e.Record] = max(c.lastAnySet[e.Record], e.Seq)
		c.byValue[e.Record+"\x00"+e.Field+"\x00"+e.Value] = e
	}
	for _, a := range audit {
		if a.Kind == "conflict" || a.Kind == "skip" {
			c.audit[a.Record] = append(c.audit[a.Record], a)
		}
	}
	return c
}

// outcome classifies one edit.
func (c *editCheck) outcome(e sim.Edit) string {
	switch {
	case e.Delete && (c.lastAnySet[e.Record] > e.Seq || c.lastDelete[e.Record] > e.Seq):
		return outcomeSuperseded
	case !e.Delete && (c.lastSet[e.Record][e.Field] > e.Seq || c.lastDelete[e.Record] > e.Seq):
		return outcomeSuperseded
	case c.final(e):
		return outcomeFinal
	case c.isHeld(e):
		return outcomeHeld
	case c.decided(e):
		return outcomeDecided
	}
	return outcomeLost
}

// final reports whether every system shows the edit.
func (c *editCheck) final(e sim.Edit) bool {
	for _, system := range systemNames {
		r, ok := c.rows[system][e.Record]
		switch {
		case e.Delete && ok, !e.Delete && (!ok || r[e.Field] != e.Value):
			return false
		}
	}
	return true
}

func (c *editCheck) isHeld(e sim.Edit) bool {
	h := c.held[e.Record]
	if e.Delete {
		return len(h) > 0
	}
	return h[e.Field] || h["*"]
}

// decided reports whether a conflict decision recorded after the edit (a conflict
// entry of the audit trail naming its record and field) made another system's edit
// win over it, and every system holds that winner's edit.
func (c *editCheck) decided(e sim.Edit) bool {
	agreed, deleted, ok := c.agreed(e.Record, e.Field)
	if !ok {
		return false
	}
	for _, a := range c.audit[e.Record] {
		if a.At.Before(e.At) || a.Winner == "" || a.Winner == e.System {
			continue
		}
		if !e.Delete && len(a.Fields) > 0 && !slices.Contains(a.Fields, e.Field) {
			continue
		}
		if deleted {
			if c.deletedBy[e.Record][a.Winner] {
				return true // the winner's delete
			}
			continue
		}
		if w, ok := c.byValue[e.Record+"\x00"+e.Field+"\x00"+agreed]; ok && w.System == a.Winner {
			return true
		}
	}
	return false
}

// agreed is the value every system holds for a record's field, or deleted when no
// system holds the record; ok is false when the systems disagree.
func (c *editCheck) agreed(record, field string) (value string, deleted, ok bool) {
	for i, system := range systemNames {
		r, has := c.rows[system][record]
		if i == 0 {
			value, deleted = r[field], !has
			continue
		}
		if deleted != !has || r[field] != value {
			return "", false, false
		}
	}
	return value, deleted, true
}

// LostEdit is a user edit that is neither final everywhere, nor superseded by a later
// edit, nor lost to a recorded decision, with what the report shows of it.
type LostEdit struct {
	Edit    sim.Edit          `json:"edit"`
	Final   map[string]string `json:"final"` // system -> value it holds ("(no row)")
	History string            `json:"history"`
}

// history is what explains one lost edit: the record's edits of the field, what each
// system holds, its audit trail and DLQ entries, and the applies sent for it.
func (c *editCheck) history(e sim.Edit, edits []sim.Edit, entries []*dlq.Entry, applies []applyMsg, trail []dlq.AuditEntry) string {
	var b strings.Builder
	what := e.Field + " = " + e.Value
	if e.Delete {
		what = "delete"
	}
	fmt.Fprintf(&b, "LOST: %s %s %s (edit %d at %s)\n", e.System, e.Record, what, e.Seq, clock(e.At))
	b.WriteString("  user edits of the record and field (and its deletes):\n")
	for _, o := range edits {
		if o.Record != e.Record || !o.Delete && !e.Delete && o.Field != e.Field {
			continue
		}
		v := o.Field + " = " + o.Value
		if o.Delete {
			v = "delete"
		}
		mark := ""
		if o.Seq == e.Seq {
			mark = "   <- this edit"
		}
		fmt.Fprintf(&b, "    %6d %s %-8s %s%s\n", o.Seq, clock(o.At), o.System, v, mark)
	}
	b.WriteString("  final:\n")
	for _, system := range systemNames {
		fmt.Fprintf(&b, "    %-8s %s\n", system, finalValue(c.rows[system], e))
	}
	b.WriteString("  audit trail of the record:\n")
	for _, a := range trail {
		if a.Record == e.Record {
			fmt.Fprintf(&b, "    %s %s rule=%s reason=%s system=%s winner=%s losers=%v fields=%v entry=%s\n",
				clock(a.At), a.Kind, a.Rule, a.Reason, a.System, a.Winner, a.Losers, a.Fields, a.EntryID)
		}
	}
	b.WriteString("  DLQ entries of the record:\n")
	for _, en := range entries {
		if en.Record == e.Record {
			fmt.Fprintf(&b, "    %s %s reason=%s fields=%v\n", en.ID, en.Status, en.Reason, en.Fields)
		}
	}
	b.WriteString("  applies sent for the record from 2s before the edit:\n")
	for _, m := range applies {
		if m.At.Before(e.At.Add(-2 * time.Second)) {
			continue
		}
		fmt.Fprintf(&b, "    %s %s@%d/%d id=%s rule=%s origin=%s %s\n", clock(m.At), m.Topic, m.Partition, m.Offset, m.EventID, m.Rule, m.Origin, m.Payload)
	}
	return b.String()
}

func finalValue(rows map[string]map[string]string, e sim.Edit) string {
	r, ok := rows[e.Record]
	switch {
	case !ok:
		return "(no row)"
	case e.Delete:
		return "(row present)"
	}
	return r[e.Field]
}

func clock(t time.Time) string { return t.Format("15:04:05.000") }
