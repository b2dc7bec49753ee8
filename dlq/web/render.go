package web

import (
	"bytes"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"

	"go.uber.org/zap"

	"github.com/concord-sync/concord/dlq"
)

// pages are the parsed templates, one set per page (layout.html plus the page).
type pages struct {
	byName map[string]*template.Template
}

var pageNames = []string{"queue", "entry", "audit", "patterns", "bulk", "error"}

func templateFuncs(as *assets) template.FuncMap {
	return template.FuncMap{
		"asset":     func(name string) string { return as.url(name) },
		"entryPath": entryPath,
		"auditPath": auditPath,
		"join":      joinComma,
		"prefix":    func() string { return Prefix },
		"percent":   percent,
		"counts": func(caption, name string, rows []dlq.Count) countsTable {
			return countsTable{Caption: caption, Name: name, Rows: rows}
		},
	}
}

// countsTable is one table of the patterns page.
type countsTable struct {
	Caption, Name string
	Rows          []dlq.Count
}

func percent(part, of int64) string {
	if of <= 0 {
		return "—"
	}
	return strconv.FormatInt(part*100/of, 10) + "%"
}

func parsePages(as *assets) (*pages, error) {
	tfs, err := fs.Sub(files, "templates")
	if err != nil {
		return nil, err
	}
	pg := &pages{byName: map[string]*template.Template{}}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(templateFuncs(as)).ParseFS(tfs, "layout.html", "partials.html", name+".html")
		if err != nil {
			return nil, err
		}
		pg.byName[name] = t
	}
	return pg, nil
}

// chrome is what every page's layout shows: who is signed in, the CSRF token for its
// forms, the navigation and a flash message.
type chrome struct {
	Title    string
	Nav      string // "queue", "audit" or "patterns": the highlighted link
	Identity string
	CSRF     string
	Flash    string
}

// view is what a page template receives: .Chrome for the layout, .Page for the page.
type view struct {
	Chrome chrome
	Page   any
}

// titled lets a page give the layout its title and navigation highlight.
type titled interface{ chrome() chrome }

// render executes a page into a buffer first, so a template error becomes a clean 500
// rather than half a page.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, page titled) {
	c := page.chrome()
	if id := identity(r.Context()); id != "" {
		c.Identity = id
		c.CSRF = h.auth.csrfToken(id)
	}
	var buf bytes.Buffer
	err := h.pages.byName[name].ExecuteTemplate(&buf, "layout", view{Chrome: c, Page: page})
	if err == nil {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store") // pages hold customer data
		w.WriteHeader(status)
		_, _ = buf.WriteTo(w)
		return
	}
	h.log.Error("review page: rendering failed", zap.String("page", name), zap.Error(err))
	http.Error(w, "the review page failed to render; see the server log", http.StatusInternalServerError)
}

// errorPage is a page that explains a failure and offers the way on.
type errorPage struct {
	Title    string
	Message  string
	Link     string // where to go next; the queue when empty
	LinkText string
}

func (p errorPage) chrome() chrome { return chrome{Title: p.Title} }

// fail renders an error page with the status.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, title, message string) {
	h.render(w, r, status, "error", errorPage{Title: title, Message: message})
}

// internal logs err and renders a 500 that does not expose it.
func (h *Handler) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	h.log.Error("review page: "+what, zap.String("path", r.URL.Path), zap.Error(err))
	h.fail(w, r, http.StatusInternalServerError, "Something went wrong",
		"The review service could not "+what+". Try again; if it keeps failing, the server log says why.")
}
