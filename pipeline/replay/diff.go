package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/concord-sync/concord/dlq"
	"github.com/concord-sync/concord/pipeline"
	"github.com/concord-sync/concord/resolver"
)

// Outcome is what a run decided, in the terms a diff compares: conflicts decided by
// a rule (record and fields -> winner), conflicts sent to review (record and
// fields), and the last value each apply topic got for each record's key, per
// column.
type Outcome struct {
	Conflicts map[string]string                       // "record fields" -> winner
	Reviews   map[string]bool                         // "record fields" of DLQ entries for conflicts
	Applies   map[string]map[string]map[string]string // apply topic -> key -> column -> value (deleted: "<deleted>")
}

func newOutcome() *Outcome {
	return &Outcome{Conflicts: map[string]string{}, Reviews: map[string]bool{}, Applies: map[string]map[string]map[string]string{}}
}

func conflictKey(record string, fields []string) string {
	return record + " " + strings.Join(slices.Sorted(slices.Values(fields)), ",")
}

// Collector gathers a replay's Outcome: set Replayer.Collect to its Collect.
type Collector struct{ Outcome *Outcome }

// NewCollector returns an empty collector.
func NewCollector() *Collector { return &Collector{Outcome: newOutcome()} }

// Collect is a Replayer.Collect.
func (c *Collector) Collect(d *resolver.Decision, apply *kafka.Message) {
	switch {
	case d.Kind == resolver.KindConflict:
		c.Outcome.Conflicts[conflictKey(d.Record, d.ConflictFields)] = d.Winner
	case d.Kind == resolver.KindDLQ && len(d.ConflictFields) > 0:
		if a, ok := pipeline.AuditEntry(d, time.Time{}); ok && a.Kind == "dlq" {
			c.Outcome.Reviews[conflictKey(d.Record, d.ConflictFields)] = true
		}
	case apply != nil:
		c.Outcome.apply(apply.Topic, apply.Key, apply.Value)
	}
}

const deletedValue = "<deleted>"

// apply notes an apply message's columns: the payload of a JsonConverter envelope,
// the "after" of a Debezium change event, or the flat row; a tombstone or a change
// event without "after" is a delete.
func (o *Outcome) apply(topic string, key, value []byte) {
	byKey := o.Applies[topic]
	if byKey == nil {
		byKey = map[string]map[string]string{}
		o.Applies[topic] = byKey
	}
	k := string(key)
	cols := byKey[k]
	if cols == nil {
		cols = map[string]string{}
		byKey[k] = cols
	}
	row, deleted := applyRow(value)
	if deleted {
		byKey[k] = map[string]string{"": deletedValue}
		return
	}
	delete(cols, "")
	for c, v := range row {
		cols[c] = string(v)
	}
}

func applyRow(value []byte) (map[string]json.RawMessage, bool) {
	if value == nil {
		return nil, true
	}
	var doc map[string]json.RawMessage
	if json.Unmarshal(value, &doc) != nil {
		return nil, false
	}
	if p, ok := doc["payload"]; ok {
		if _, schema := doc["schema"]; schema {
			doc = nil
			if json.Unmarshal(p, &doc) != nil || doc == nil {
				return nil, bytes.Equal(bytes.TrimSpace(p), []byte("null"))
			}
		}
	}
	if _, ok := doc["op"]; ok { // a Debezium change event
		after := doc["after"]
		var row map[string]json.RawMessage
		if json.Unmarshal(after, &row) != nil || row == nil {
			return nil, true
		}
		return row, false
	}
	return doc, false
}

// Happened reads what the running pipeline did in the window: the audit topic's
// conflict decisions and review entries, and the apply topics.
func (k *Kafka) Happened(ctx context.Context, auditTopic string, applyTopics []string) (*Outcome, error) {
	o := newOutcome()
	spans, err := k.spans(ctx, append([]string{auditTopic}, applyTopics...))
	if err != nil {
		return nil, err
	}
	byPartition := map[int][]span{}
	for _, s := range spans {
		byPartition[s.partition] = append(byPartition[s.partition], s)
	}
	for _, p := range slices.Sorted(maps.Keys(byPartition)) {
		err := k.merge(ctx, byPartition[p], func(m kafka.Message) error {
			if m.Topic != auditTopic {
				o.apply(m.Topic, m.Key, m.Value)
				return nil
			}
			var a dlq.AuditEntry
			if json.Unmarshal(m.Value, &a) != nil {
				return nil
			}
			switch a.Kind {
			case "conflict":
				o.Conflicts[conflictKey(a.Record, a.Fields)] = a.Winner
			case "dlq":
				o.Reviews[conflictKey(a.Record, a.Fields)] = true
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return o, nil
}

// Diff is what a replay would have done differently from what happened.
type Diff struct {
	// ConflictsFlipped: conflicts both decided by rule, with another winner.
	ConflictsFlipped []Flip `json:"conflicts_flipped"`
	// ConflictsNowDecided: sent to review then, decided by rule now; and back.
	ConflictsNowDecided []Flip `json:"conflicts_now_decided"`
	ReviewsNew          []Flip `json:"reviews_new"`
	// AppliesDiffer: per apply topic and column, how many records would end with
	// another value, with examples.
	AppliesDiffer []ApplyDiff `json:"applies_differ"`
}

// Flip is one conflict decided another way: record and fields, then and now.
type Flip struct {
	Conflict string `json:"conflict"` // "record fields"
	Then     string `json:"then"`     // the winner, or "review"
	Now      string `json:"now"`
}

// ApplyDiff counts the records whose last applied value of a column differs.
type ApplyDiff struct {
	Topic    string   `json:"topic"`
	Column   string   `json:"column"`
	Records  int      `json:"records"`
	Examples []string `json:"examples"` // "key: then -> now", at most 3
}

// Compare says how now (a replay's Outcome) differs from then (what happened).
func Compare(then, now *Outcome) *Diff {
	d := &Diff{ConflictsFlipped: []Flip{}, ConflictsNowDecided: []Flip{}, ReviewsNew: []Flip{}, AppliesDiffer: []ApplyDiff{}}
	for _, c := range slices.Sorted(maps.Keys(now.Conflicts)) {
		switch was, ok := then.Conflicts[c]; {
		case ok && was != now.Conflicts[c]:
			d.ConflictsFlipped = append(d.ConflictsFlipped, Flip{c, was, now.Conflicts[c]})
		case !ok && then.Reviews[c]:
			d.ConflictsNowDecided = append(d.ConflictsNowDecided, Flip{c, "review", now.Conflicts[c]})
		}
	}
	for _, c := range slices.Sorted(maps.Keys(now.Reviews)) {
		if !then.Reviews[c] {
			was := then.Conflicts[c]
			if was == "" {
				was = "no conflict"
			}
			d.ReviewsNew = append(d.ReviewsNew, Flip{c, was, "review"})
		}
	}
	topics := slices.Sorted(maps.Keys(now.Applies))
	for _, t := range slices.Sorted(maps.Keys(then.Applies)) {
		if !slices.Contains(topics, t) {
			topics = append(topics, t)
		}
	}
	for _, t := range topics {
		byColumn := map[string]*ApplyDiff{}
		keys := slices.Sorted(maps.Keys(now.Applies[t]))
		for _, k := range slices.Sorted(maps.Keys(then.Applies[t])) {
			if _, ok := now.Applies[t][k]; !ok {
				keys = append(keys, k)
			}
		}
		for _, k := range keys {
			a, b := then.Applies[t][k], now.Applies[t][k]
			cols := slices.Sorted(maps.Keys(a))
			for c := range b {
				if _, ok := a[c]; !ok {
					cols = append(cols, c)
				}
			}
			for _, c := range cols {
				if a[c] == b[c] {
					continue
				}
				ad := byColumn[c]
				if ad == nil {
					ad = &ApplyDiff{Topic: t, Column: c}
					byColumn[c] = ad
				}
				ad.Records++
				if len(ad.Examples) < 3 {
					ad.Examples = append(ad.Examples, k+": "+orNone(a[c])+" -> "+orNone(b[c]))
				}
			}
		}
		for _, c := range slices.Sorted(maps.Keys(byColumn)) {
			d.AppliesDiffer = append(d.AppliesDiffer, *byColumn[c])
		}
	}
	return d
}

func orNone(v string) string {
	if v == "" {
		return "(none)"
	}
	return v
}
