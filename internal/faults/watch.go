package faults

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/concord-sync/concord/dlq"
)

// headerEventID is the apply events' event id header (DESIGN.md section 4,
// pipeline.HeaderEventID; not imported, so the suite reads the topics as any
// consumer would).
const headerEventID = "concord.event_id"

// watcher reads every apply topic and the audit topic from the start, as an outside
// consumer, for the whole scenario: it keeps each event id's contents, the audit
// trail, each record's applies for the report, and wakes waiters when new applies
// appear (for the kills timed on them).
type watcher struct {
	cl          *kgo.Client
	applyTopics []string
	auditTopic  string
	done        chan struct{}

	mu       sync.Mutex
	ids      map[string]*idSeen
	applies  int64 // apply messages read
	copies   int64 // of them, the same id with the same bytes again
	audit    []dlq.AuditEntry
	byRecord map[string][]applyMsg
	seen     []applySeen
	wake     chan struct{} // closed and replaced when applies arrive
}

// idSeen is what an event id was produced with.
type idSeen struct {
	contents  [][32]byte // distinct key+value+headers
	decisions [][32]byte // distinct contents once the apply's ts_ms is set aside
	first     applyMsg
	others    []applyMsg // a message of each further content
}

// applySeen is an apply event as the watcher met it.
type applySeen struct {
	topic  string
	record string
	at     time.Time
}

// applyMsg is an apply event kept for the report of a lost edit.
type applyMsg struct {
	At        time.Time `json:"at"`
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	EventID   string    `json:"event_id"`
	Rule      string    `json:"rule"`
	Origin    string    `json:"origin"`
	Payload   string    `json:"payload"` // the value without its schema
}

func watch(brokers, applyTopics []string, auditTopic string) (*watcher, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(append(slices.Clone(applyTopics), auditTopic)...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	if err != nil {
		return nil, err
	}
	w := &watcher{
		cl: cl, applyTopics: applyTopics, auditTopic: auditTopic, done: make(chan struct{}),
		ids: map[string]*idSeen{}, byRecord: map[string][]applyMsg{}, wake: make(chan struct{}),
	}
	go w.run()
	return w, nil
}

func (w *watcher) close() {
	w.cl.Close()
	<-w.done
}

func (w *watcher) run() {
	defer close(w.done)
	for {
		fs := w.cl.PollFetches(context.Background())
		if fs.IsClientClosed() {
			return
		}
		now := time.Now()
		w.mu.Lock()
		arrived := false
		fs.EachRecord(func(r *kgo.Record) {
			if r.Topic == w.auditTopic {
				var a dlq.AuditEntry
				if json.Unmarshal(r.Value, &a) == nil {
					w.audit = append(w.audit, a)
				}
				return
			}
			w.add(r, now)
			arrived = true
		})
		if arrived {
			close(w.wake)
			w.wake = make(chan struct{})
		}
		w.mu.Unlock()
	}
}

var tsMs = regexp.MustCompile(`"ts_ms":-?[0-9]+`)

// add keeps an apply event. Callers hold mu.
func (w *watcher) add(r *kgo.Record, now time.Time) {
	w.applies++
	m := applyMsg{At: now, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Payload: payload(r.Value)}
	h := sha256.New()
	h.Write(r.Key)
	h.Write([]byte{0})
	h.Write(r.Value)
	for _, hd := range r.Headers {
		switch hd.Key {
		case headerEventID:
			m.EventID = string(hd.Value)
		case "concord.rule":
			m.Rule = string(hd.Value)
		case "concord.origin":
			m.Origin = string(hd.Value)
		}
	}
	headers := slices.Clone(r.Headers)
	slices.SortFunc(headers, func(a, b kgo.RecordHeader) int { return strings.Compare(a.Key, b.Key) })
	for _, hd := range headers {
		h.Write([]byte{0})
		h.Write([]byte(hd.Key))
		h.Write([]byte{0})
		h.Write(hd.Value)
	}
	var content [32]byte
	copy(content[:], h.Sum(nil))
	decision := sha256.Sum256(append(append([]byte(r.Topic), 0), tsMs.ReplaceAll(r.Value, nil)...))
	record := recordOf(r.Key)
	w.seen = append(w.seen, applySeen{topic: r.Topic, record: record, at: now})
	w.byRecord[record] = append(w.byRecord[record], m)
	s, ok := w.ids[m.EventID]
	if !ok {
		w.ids[m.EventID] = &idSeen{contents: [][32]byte{content}, decisions: [][32]byte{decision}, first: m}
		return
	}
	if slices.Contains(s.contents, content) {
		w.copies++
		return
	}
	s.contents = append(s.contents, content)
	s.others = append(s.others, m)
	if !slices.Contains(s.decisions, decision) {
		s.decisions = append(s.decisions, decision)
	}
}

// count is how many applies were read so far.
func (w *watcher) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.seen)
}

// nextApply waits for an apply read after the first `after` ones and returns it.
func (w *watcher) nextApply(ctx context.Context, after int) (applySeen, bool) {
	for {
		w.mu.Lock()
		if len(w.seen) > after {
			a := w.seen[after]
			w.mu.Unlock()
			return a, true
		}
		wake := w.wake
		w.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return applySeen{}, false
		}
	}
}

// idStats are the event id figures so far.
type idStats struct {
	applies, ids, copies int64
	twoContents          []string // ids produced with different bytes
	twoDecisions         int      // of them, different beyond the apply's ts_ms
}

func (w *watcher) stats() idStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := idStats{applies: w.applies, ids: int64(len(w.ids)), copies: w.copies}
	for id, s := range w.ids {
		if len(s.contents) > 1 {
			st.twoContents = append(st.twoContents, id)
		}
		if len(s.decisions) > 1 {
			st.twoDecisions++
		}
	}
	slices.Sort(st.twoContents)
	return st
}

func (w *watcher) auditTrail() []dlq.AuditEntry {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.audit)
}

func (w *watcher) appliesOf(record string) []applyMsg {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.byRecord[record])
}

func (w *watcher) contentsOf(id string) []applyMsg {
	w.mu.Lock()
	defer w.mu.Unlock()
	s, ok := w.ids[id]
	if !ok {
		return nil
	}
	return append([]applyMsg{s.first}, s.others...)
}

// recordOf is the record id in an apply's key: the one value of its payload
// ({"schema":…,"payload":{"id":"r-1"}} or {"cust_id":"r-1"}).
func recordOf(key []byte) string {
	var env map[string]json.RawMessage
	if json.Unmarshal(key, &env) != nil {
		return string(key)
	}
	if p, ok := env["payload"]; ok && len(env) == 2 {
		env = nil
		_ = json.Unmarshal(p, &env)
	}
	for _, v := range env {
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s
		}
		return string(v)
	}
	return string(key)
}

// payload is an apply's value without its Connect schema, compact.
func payload(value []byte) string {
	if value == nil {
		return "null (tombstone)"
	}
	var env struct {
		Schema  json.RawMessage `json:"schema"`
		Payload json.RawMessage `json:"payload"`
	}
	body := value
	if json.Unmarshal(value, &env) == nil && env.Payload != nil {
		body = env.Payload
	}
	var b bytes.Buffer
	if json.Compact(&b, body) != nil {
		return string(body)
	}
	return b.String()
}
