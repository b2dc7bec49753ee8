package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/concord-sync/concord/codecs"
	"github.com/concord-sync/concord/dlq"
)

// Form values of the resolve form.
const (
	modePick   = "pick"   // mode=pick&system=<system>
	modeFields = "fields" // mode=fields&field.<f>=<system>|__value&value.<f>=<json>
	// enteredValue as a field's choice means "the value entered in value.<f>".
	enteredValue = "__value"

	maxReason = 2000 // characters of a dismissal reason
)

// badForm is a form the reviewer must correct; its message says how.
type badForm string

func (b badForm) Error() string { return string(b) }

// resolve is POST /review/entry/{id}/resolve. The CSRF token was checked (and the form
// parsed) by ServeHTTP.
func (h *Handler) resolve(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	res, err := resolution(id, identity(r.Context()), r)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, "The decision is not complete", err.Error())
		return
	}
	out, err := h.reviews.Resolve(r.Context(), res)
	if err != nil {
		h.decisionFailed(w, r, id, "resolve", err)
		return
	}
	fields := 0
	if out != nil {
		fields = len(out.Values)
	}
	h.log.Info("review: entry resolved", zap.String("entry", id), zap.String("reviewer", res.Reviewer),
		zap.String("pick", res.Pick), zap.Int("fields", fields))
	http.Redirect(w, r, entryPath(id)+"?done=resolved", http.StatusSeeOther)
}

// resolution reads the resolve form.
func resolution(id, reviewer string, r *http.Request) (dlq.Resolution, error) {
	res := dlq.Resolution{EntryID: id, Reviewer: reviewer}
	rev, err := formRev(r)
	if err != nil {
		return res, err
	}
	res.Rev = rev
	switch mode := r.PostForm.Get("mode"); mode {
	case modePick:
		if res.Pick = r.PostForm.Get("system"); res.Pick == "" {
			return res, badForm("Choose whose version to use.")
		}
	case modeFields:
		res.Fields, res.Values, err = fieldChoices(r)
	default:
		err = badForm(fmt.Sprintf("Unknown way of deciding %q: use mode=pick or mode=fields.", mode))
	}
	return res, err
}

func formRev(r *http.Request) (int64, error) {
	rev, err := strconv.ParseInt(r.PostForm.Get("rev"), 10, 64)
	if err != nil {
		return 0, badForm("The form does not say which revision of the entry you saw (rev). Reload the entry and decide again.")
	}
	return rev, nil
}

// fieldChoices reads field.<f> (a system, or enteredValue with value.<f> holding JSON).
// A field left unchosen is the service's to refuse (dlq.ErrInvalid names it).
func fieldChoices(r *http.Request) (fields map[string]string, values map[string]json.RawMessage, err error) {
	for key, choice := range r.PostForm {
		f, ok := strings.CutPrefix(key, "field.")
		if !ok || len(choice) == 0 || choice[0] == "" {
			continue
		}
		if choice[0] != enteredValue {
			if fields == nil {
				fields = map[string]string{}
			}
			fields[f] = choice[0]
			continue
		}
		raw := strings.TrimSpace(r.PostForm.Get("value." + f))
		if raw == "" {
			return nil, nil, badForm(fmt.Sprintf("Enter a value for %s, as JSON (\"text\", 42, true or null).", f))
		}
		v, err := codecs.Canonicalize([]byte(raw))
		if err != nil {
			return nil, nil, badForm(fmt.Sprintf("The value entered for %s is not JSON: write text in double quotes (\"text\"), or a number, true, false or null.", f))
		}
		if values == nil {
			values = map[string]json.RawMessage{}
		}
		values[f] = v
	}
	if fields == nil && values == nil {
		return nil, nil, badForm("Choose a version, or enter a value, for every field.")
	}
	return fields, values, nil
}

// dismiss is POST /review/entry/{id}/dismiss: close the entry without applying anything.
func (h *Handler) dismiss(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	rev, err := formRev(r)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, "The dismissal is not complete", err.Error())
		return
	}
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	switch {
	case reason == "":
		h.fail(w, r, http.StatusBadRequest, "A reason is required",
			"Say why the entry is dismissed without applying anything; the reason goes into the audit trail.")
		return
	case len(reason) > maxReason:
		h.fail(w, r, http.StatusBadRequest, "The reason is too long",
			fmt.Sprintf("Keep the reason under %d characters.", maxReason))
		return
	}
	d := dlq.Dismissal{EntryID: id, Rev: rev, Reason: reason, Reviewer: identity(r.Context())}
	if err := h.reviews.Dismiss(r.Context(), d); err != nil {
		h.decisionFailed(w, r, id, "dismiss", err)
		return
	}
	h.log.Info("review: entry dismissed", zap.String("entry", id), zap.String("reviewer", d.Reviewer))
	http.Redirect(w, r, entryPath(id)+"?done=dismissed", http.StatusSeeOther)
}

// decisionFailed explains a refused resolution or dismissal and offers the way on.
func (h *Handler) decisionFailed(w http.ResponseWriter, r *http.Request, id, action string, err error) {
	reload := errorPage{Link: entryPath(id), LinkText: "Reload the entry"}
	var status int
	switch {
	case errors.Is(err, dlq.ErrNotFound):
		h.notFound(w, r)
		return
	case errors.Is(err, dlq.ErrStale):
		status = http.StatusConflict
		reload.Title = "The entry changed since you loaded it"
		reload.Message = "A later change was attached to this entry after you opened it, so your decision did not see the latest versions. Nothing was applied. Reload the entry and decide again."
	case errors.Is(err, dlq.ErrDecided):
		status = http.StatusConflict
		reload.Title = "Someone else decided this entry first"
		reload.Message = "Another reviewer resolved or dismissed this entry before you did. Nothing more was applied. Reload it to see their decision."
	case errors.Is(err, dlq.ErrInvalid):
		status = http.StatusBadRequest
		reload.Title = "The decision is not valid"
		reload.Message = err.Error()
		reload.LinkText = "Back to the entry"
	default:
		h.internal(w, r, action+" the entry", err)
		return
	}
	h.log.Info("review: decision refused", zap.String("entry", id), zap.String("action", action),
		zap.String("reviewer", identity(r.Context())), zap.Error(err))
	h.render(w, r, status, "error", reload)
}
