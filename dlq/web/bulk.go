package web

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/concord-sync/concord/dlq"
)

// Chooser is how a configuration change would decide an entry (dlq.ByRules over a
// resolver of that configuration), nil and why when it would not.
type Chooser func(*dlq.Entry) (*dlq.Resolution, string)

// bulkPage previews or reports a bulk decision.
type bulkPage struct {
	Title   string
	Field   string
	System  string
	Pick    string
	Rows    []bulkRow
	Confirm bool // a preview that can be confirmed (entries carry their revisions)
	Done    *dlq.BulkResult
	Note    string
}

type bulkRow struct {
	ID, Record, Fields, Choice, Stays string
	Rev                               int64
}

func (p bulkPage) chrome() chrome { return chrome{Title: p.Title, Nav: "queue"} }

// bulkPreview is GET /review/bulk?field=&system=&pick=: the pending entries the
// filter selects, each at the revision seen now, and what taking pick's version of
// each would do. Confirming posts exactly these revisions.
func (h *Handler) bulkPreview(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := bulkPage{Title: "Resolve several entries", Field: q.Get("field"), System: q.Get("system"), Pick: q.Get("pick")}
	if p.Pick == "" {
		h.fail(w, r, http.StatusBadRequest, "Choose a system", "Say whose version to take (pick).")
		return
	}
	entries, err := h.reviews.List(r.Context(), dlq.Filter{Status: dlq.StatusPending, Field: p.Field, System: p.System})
	if err != nil {
		h.internal(w, r, "list the entries to preview", err)
		return
	}
	for _, e := range entries {
		row := bulkRow{ID: e.ID, Record: e.Record, Fields: strings.Join(e.Fields, ", "), Rev: e.Rev, Choice: "take " + p.Pick + "'s version"}
		if _, ok := e.Versions[p.Pick]; !ok {
			row.Choice, row.Stays = "", "no version of "+p.Pick+": skipped"
		}
		p.Rows = append(p.Rows, row)
	}
	p.Confirm = len(p.Rows) > 0
	h.render(w, r, http.StatusOK, "bulk", p)
}

// bulkResolve is POST /review/bulk/resolve (CSRF checked by ServeHTTP): resolves the
// previewed entries (entry=<id>:<rev>, repeated) with pick's version, each on the
// revision the preview showed; entries changed or decided since are skipped and
// reported.
func (h *Handler) bulkResolve(w http.ResponseWriter, r *http.Request) {
	pick := r.PostForm.Get("pick")
	var preview []dlq.Previewed
	for _, v := range r.PostForm["entry"] {
		id, revText, ok := strings.Cut(v, ":")
		rev, err := strconv.ParseInt(revText, 10, 64)
		if !ok || err != nil || id == "" {
			h.fail(w, r, http.StatusBadRequest, "The preview is damaged", fmt.Sprintf("%q is not an entry and its revision. Preview again.", v))
			return
		}
		preview = append(preview, dlq.Previewed{EntryID: id, Rev: rev})
	}
	if pick == "" || len(preview) == 0 {
		h.fail(w, r, http.StatusBadRequest, "Nothing to decide", "The form names no entries or no system. Preview again.")
		return
	}
	reviewer := identity(r.Context())
	note := "bulk on the review page: " + pick + "'s version"
	res, err := h.reviews.ResolveAll(r.Context(), preview, func(*dlq.Entry) (*dlq.Resolution, string) {
		return &dlq.Resolution{Pick: pick, Reviewer: reviewer, Note: note}, ""
	})
	if err != nil {
		h.internal(w, r, "resolve the previewed entries", err)
		return
	}
	h.log.Info("review: bulk resolve", zap.String("reviewer", reviewer), zap.String("pick", pick),
		zap.Int("decided", len(res.Decided)), zap.Int("skipped", len(res.Skipped)))
	h.render(w, r, http.StatusOK, "bulk", bulkPage{Title: "Resolved several entries", Pick: pick, Done: res})
}

// reevaluatePreview is GET /review/reevaluate?field=&owner=: which pending entries
// giving field to owner would resolve, and how (a preview only: the change is made
// in the configuration, then concord dlq reevaluate applies it).
func (h *Handler) reevaluatePreview(w http.ResponseWriter, r *http.Request) {
	field, owner := r.URL.Query().Get("field"), r.URL.Query().Get("owner")
	if h.suggest == nil || field == "" || owner == "" {
		h.notFound(w, r)
		return
	}
	choose, err := h.suggest(field, owner)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, "Cannot preview that change", err.Error())
		return
	}
	entries, err := h.reviews.List(r.Context(), dlq.Filter{Status: dlq.StatusPending, Field: field})
	if err != nil {
		h.internal(w, r, "list the entries to preview", err)
		return
	}
	p := bulkPage{
		Title: "If " + field + " belonged to " + owner, Field: field, Pick: owner,
		Note: "Make the change in the configuration, then run concord dlq reevaluate: it resolves these entries with reviewer config.",
	}
	for _, e := range entries {
		row := bulkRow{ID: e.ID, Record: e.Record, Fields: strings.Join(e.Fields, ", "), Rev: e.Rev}
		if res, why := choose(e); res != nil {
			row.Choice = choiceText(res)
		} else {
			row.Stays = why
		}
		p.Rows = append(p.Rows, row)
	}
	h.render(w, r, http.StatusOK, "bulk", p)
}

// wouldResolve counts the pending entries an authority change would resolve.
func (h *Handler) wouldResolve(r *http.Request, field, owner string) (int, bool) {
	if h.suggest == nil {
		return 0, false
	}
	choose, err := h.suggest(field, owner)
	if err != nil {
		return 0, false
	}
	entries, err := h.reviews.List(r.Context(), dlq.Filter{Status: dlq.StatusPending, Field: field})
	if err != nil {
		return 0, false
	}
	n := 0
	for _, e := range entries {
		if res, _ := choose(e); res != nil {
			n++
		}
	}
	return n, true
}

func choiceText(r *dlq.Resolution) string {
	if r.Pick != "" {
		return "take " + r.Pick + "'s version"
	}
	var parts []string
	for _, f := range slices.Sorted(maps.Keys(r.Fields)) { // in field order, not the map's
		parts = append(parts, f+" from "+r.Fields[f])
	}
	return strings.Join(parts, ", ")
}
