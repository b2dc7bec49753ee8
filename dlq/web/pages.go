package web

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"

	"go.uber.org/zap"

	"github.com/concord-sync/concord/dlq"
)

// maxRows bounds the queue table; the filters narrow a longer queue.
const maxRows = 500

type queuePage struct {
	Depth        int64
	OldestAge    string
	ConflictRate string
	Events       int64
	Conflicts    int64

	Status, Field, System string
	StatusOptions         []option
	FieldOptions          []option // nil: free text
	SystemOptions         []option // nil: free text
	Filtered              bool     // a field or system filter is set

	Rows  []queueRow
	Total int // entries matched; more than len(Rows) when cut at maxRows

	Chart chart // the last hours' events, conflict rate and DLQ depth
}

func (queuePage) chrome() chrome { return chrome{Title: "Review queue", Nav: "queue"} }

// queue is GET /review/: the entries, oldest first, and the DLQ's figures.
func (h *Handler) queue(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	status := dlq.StatusPending
	if q.Has("status") {
		status = q.Get("status")
	}
	if !validStatus(status) {
		h.fail(w, r, http.StatusBadRequest, "Unknown status",
			fmt.Sprintf("%q is not a status: use pending_review, resolved, dismissed or all.", status))
		return
	}
	f := dlq.Filter{Status: status, Field: q.Get("field"), System: q.Get("system")}
	if status == statusAll {
		f.Status = ""
	}
	ctx := r.Context()
	entries, err := h.reviews.List(ctx, f)
	if err != nil {
		h.internal(w, r, "list the queue", err)
		return
	}
	sum, err := h.reviews.Summary(ctx)
	if err != nil {
		h.internal(w, r, "read the queue's summary", err)
		return
	}
	if sum == nil {
		sum = &dlq.Summary{}
	}
	p := queuePage{
		Depth: sum.Depth, OldestAge: "—", ConflictRate: strconv.FormatFloat(sum.ConflictRate, 'f', 2, 64),
		Events: sum.Events, Conflicts: sum.Conflicts,
		Status: status, Field: f.Field, System: f.System, StatusOptions: statusOptions(status),
		Filtered: f.Field != "" || f.System != "", Total: len(entries),
	}
	if sum.Depth > 0 {
		p.OldestAge = humanAge(sum.OldestAge)
	}
	if points, err := h.reviews.History(ctx, chartMinutes); err != nil {
		h.log.Warn("reading the history for the chart", zap.Error(err)) // the page goes on without it
	} else {
		p.Chart = newChart(points)
	}
	if len(h.fields) > 0 {
		p.FieldOptions = options(h.fields, f.Field, "any field")
	}
	if len(h.systems) > 0 {
		p.SystemOptions = options(h.systems, f.System, "any system")
	}
	now := h.now()
	for _, e := range entries[:min(len(entries), maxRows)] {
		p.Rows = append(p.Rows, newQueueRow(e, now))
	}
	h.render(w, r, http.StatusOK, "queue", p)
}

type entryPage struct {
	Entry       *dlq.Entry
	Pending     bool
	WholeRecord bool
	Age         string
	QueuedAt    string
	UpdatedAt   string
	Reasons     []string
	Versions    []versionHead
	Rows        []fieldRow
	Attached    []attachedRow
	Audit       []auditRow
	AuditErr    bool
	Flash       string
}

func (p entryPage) chrome() chrome {
	return chrome{Title: "Entry " + p.Entry.Record, Nav: "queue", Flash: p.Flash}
}

// flashes are the messages a redirect after a decision may show (by code, so a link
// cannot make the page say anything else).
var flashes = map[string]string{
	"resolved":  "Resolved. The chosen values are being applied to every system that differs.",
	"dismissed": "Dismissed. Nothing was applied; the entry is closed.",
}

// entryAuditLimit bounds the audit trail shown under an entry.
const entryAuditLimit = 50

// entry is GET /review/entry/{id}: the versions side by side and the decision forms.
func (h *Handler) entry(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	e, err := h.reviews.Get(ctx, r.PathValue("id"))
	if errors.Is(err, dlq.ErrNotFound) {
		h.notFound(w, r)
		return
	}
	if err != nil {
		h.internal(w, r, "read the entry", err)
		return
	}
	systems := slices.Sorted(maps.Keys(e.Versions))
	p := entryPage{
		Entry: e, Pending: e.Status == dlq.StatusPending, WholeRecord: e.WholeRecord(),
		Age: humanAge(h.now().Sub(e.QueuedAt)), QueuedAt: rfc3339(e.QueuedAt), UpdatedAt: rfc3339(e.UpdatedAt),
		Reasons: reasons(e), Rows: compare(e, systems), Attached: attachedRows(e),
		Flash: flashes[r.URL.Query().Get("done")],
	}
	for _, s := range systems {
		v := e.Versions[s]
		p.Versions = append(p.Versions, versionHead{System: s, Time: usTime(v.TsUs), Deleted: v.Deleted})
	}
	trail, err := h.reviews.Audit(ctx, dlq.AuditFilter{Record: e.Record, Limit: entryAuditLimit})
	if err != nil { // the entry is still worth showing
		h.log.Warn("review page: audit trail unavailable", zap.String("record", e.Record), zap.Error(err))
		p.AuditErr = true
	}
	p.Audit = auditRows(trail)
	h.render(w, r, http.StatusOK, "entry", p)
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.fail(w, r, http.StatusNotFound, "No such entry",
		"There is no DLQ entry "+strconv.Quote(r.PathValue("id"))+". It may have been removed; go back to the queue.")
}

type auditPage struct {
	Record string
	Limit  int
	Rows   []auditRow
}

func (auditPage) chrome() chrome { return chrome{Title: "Audit trail", Nav: "audit"} }

const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

// audit is GET /review/audit?record=&limit=: the audit trail, newest first.
func (h *Handler) audit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := defaultAuditLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxAuditLimit {
			h.fail(w, r, http.StatusBadRequest, "Bad limit",
				fmt.Sprintf("limit must be a number from 1 to %d.", maxAuditLimit))
			return
		}
		limit = n
	}
	trail, err := h.reviews.Audit(r.Context(), dlq.AuditFilter{Record: q.Get("record"), Limit: limit})
	if err != nil {
		h.internal(w, r, "read the audit trail", err)
		return
	}
	h.render(w, r, http.StatusOK, "audit", auditPage{Record: q.Get("record"), Limit: limit, Rows: auditRows(trail)})
}

type patternsPage struct {
	*dlq.Patterns
	// WouldResolve counts, per suggestion (same order), the pending entries that
	// change would resolve; nil when the handler cannot tell (no Suggest).
	WouldResolve []int
}

func (patternsPage) chrome() chrome { return chrome{Title: "Conflict patterns", Nav: "patterns"} }

// patterns is GET /review/patterns: what keeps conflicting, and suggested authority changes.
func (h *Handler) patterns(w http.ResponseWriter, r *http.Request) {
	p, err := h.reviews.Patterns(r.Context())
	if err != nil {
		h.internal(w, r, "compute the conflict patterns", err)
		return
	}
	if p == nil {
		p = &dlq.Patterns{}
	}
	page := patternsPage{Patterns: p}
	for _, sg := range p.Suggestions {
		n, ok := h.wouldResolve(r, sg.Field, sg.Owner)
		if !ok {
			page.WouldResolve = nil
			break
		}
		page.WouldResolve = append(page.WouldResolve, n)
	}
	h.render(w, r, http.StatusOK, "patterns", page)
}
