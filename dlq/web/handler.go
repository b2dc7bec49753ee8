package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/concord-sync/concord/dlq"
)

// Prefix is the path the Handler serves under; mount it with mux.Handle(Prefix, h).
const Prefix = "/review/"

// Reviews is what the page needs from the DLQ; dlq's Service implements it. The
// Handler calls it concurrently from request goroutines.
type Reviews interface {
	// List returns the entries Filter selects, oldest first.
	List(ctx context.Context, f dlq.Filter) ([]*dlq.Entry, error)
	// Get returns one entry, or an error wrapping dlq.ErrNotFound.
	Get(ctx context.Context, id string) (*dlq.Entry, error)
	// Resolve decides a pending entry. Errors wrap dlq.ErrDecided, dlq.ErrStale,
	// dlq.ErrInvalid or dlq.ErrNotFound when they are the reviewer's to act on.
	Resolve(ctx context.Context, r dlq.Resolution) (*dlq.Outcome, error)
	// Dismiss closes a pending entry without applying anything; errors as Resolve.
	Dismiss(ctx context.Context, d dlq.Dismissal) error
	// Audit returns the audit trail, newest first.
	Audit(ctx context.Context, f dlq.AuditFilter) ([]dlq.AuditEntry, error)
	// History returns the last minutes' events, conflicts and DLQ depth, oldest first.
	History(ctx context.Context, minutes int) ([]dlq.Point, error)
	// Patterns returns the recurring conflicts.
	Patterns(ctx context.Context) (*dlq.Patterns, error)
	// Summary returns the figures at the top of the queue.
	Summary(ctx context.Context) (*dlq.Summary, error)
	// ResolveAll resolves previewed entries, skipping those changed or decided since.
	ResolveAll(ctx context.Context, preview []dlq.Previewed, choose func(*dlq.Entry) (*dlq.Resolution, string)) (*dlq.BulkResult, error)
}

// Options configure a Handler.
type Options struct {
	Reviews Reviews // required
	Auth    Auth    // at least one method is required
	Logger  *zap.Logger
	// Now is the clock for entry ages; time.Now when nil.
	Now func() time.Time
	// Systems and Fields fill the queue's filter drop-downs (configured system names
	// and canonical fields); when empty the filters are free text.
	Systems []string
	Fields  []string
	// Suggest, when set, says how giving a field to an owner would decide entries, for
	// the counts and previews under the patterns page's authority suggestions.
	Suggest func(field, owner string) (Chooser, error)
}

// Handler serves the review pages under Prefix. It is safe for concurrent use.
type Handler struct {
	reviews Reviews
	auth    *authenticator
	log     *zap.Logger
	now     func() time.Time
	systems []string
	fields  []string
	suggest func(field, owner string) (Chooser, error)
	pages   *pages
	assets  *assets
	mux     *http.ServeMux
	origin  *http.CrossOriginProtection
}

// New returns the review Handler. It refuses a configuration without any authentication
// method, so the queue is never served to anonymous callers.
func New(opts Options) (*Handler, error) {
	if opts.Reviews == nil {
		return nil, errors.New("web: Options.Reviews is required")
	}
	auth, err := newAuthenticator(opts.Auth)
	if err != nil {
		return nil, err
	}
	as, err := loadAssets()
	if err != nil {
		return nil, fmt.Errorf("web: assets: %w", err)
	}
	pg, err := parsePages(as)
	if err != nil {
		return nil, fmt.Errorf("web: templates: %w", err)
	}
	h := &Handler{
		reviews: opts.Reviews,
		auth:    auth,
		log:     opts.Logger,
		now:     opts.Now,
		systems: opts.Systems,
		suggest: opts.Suggest,
		fields:  opts.Fields,
		pages:   pg,
		assets:  as,
		origin:  http.NewCrossOriginProtection(),
	}
	if h.log == nil {
		h.log = zap.NewNop()
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.mux = h.routes()
	return h, nil
}

func (h *Handler) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+Prefix+"{$}", h.queue)
	mux.HandleFunc("GET "+Prefix+"entry/{id}", h.entry)
	mux.HandleFunc("POST "+Prefix+"entry/{id}/resolve", h.resolve)
	mux.HandleFunc("POST "+Prefix+"entry/{id}/dismiss", h.dismiss)
	mux.HandleFunc("GET "+Prefix+"audit", h.audit)
	mux.HandleFunc("GET "+Prefix+"patterns", h.patterns)
	mux.HandleFunc("GET "+Prefix+"bulk", h.bulkPreview)
	mux.HandleFunc("POST "+Prefix+"bulk/resolve", h.bulkResolve)
	mux.HandleFunc("GET "+Prefix+"reevaluate", h.reevaluatePreview)
	mux.HandleFunc("GET "+Prefix+"static/{name}", h.assets.serve)
	mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, http.StatusNotFound, "Not found", "There is no review page at this address.")
	})
	return mux
}

// ServeHTTP sets the security headers, authenticates the caller (401 otherwise), checks
// the CSRF token of every POST (403 otherwise) and serves the page.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	id, ok := h.auth.identify(r)
	if !ok {
		h.unauthorized(w, r)
		return
	}
	r = r.WithContext(withIdentity(r.Context(), id))
	if r.Method == http.MethodPost {
		// Defence in depth: browsers say where a request comes from (Sec-Fetch-Site,
		// Origin), so a cross-site form post is refused before its token is looked at.
		if err := h.origin.Check(r); err != nil {
			h.fail(w, r, http.StatusForbidden, "Cross-origin request refused",
				"This form was submitted from another site. Open the review page directly and submit it again.")
			return
		}
		if !h.checkCSRF(w, r, id) {
			return
		}
	}
	h.mux.ServeHTTP(w, r)
}

// Guard serves next only to callers with the review page's credentials, and answers
// the others as the page does (401, a sign-in challenge, nothing of next): for the
// endpoints served beside the page, such as /metrics, so that configuring sign-in
// protects them too. The caller's identity is in the request's context as on the page.
func (h *Handler) Guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := h.auth.identify(r)
		if !ok {
			securityHeaders(w.Header())
			h.unauthorized(w, r)
			return
		}
		next.ServeHTTP(w, r.WithContext(withIdentity(r.Context(), id)))
	})
}

// unauthorized answers a request without valid credentials. It says nothing of what
// was sent: no credentials are ever echoed.
func (h *Handler) unauthorized(w http.ResponseWriter, r *http.Request) {
	h.auth.challenge(w)
	h.render(w, r, http.StatusUnauthorized, "error", errorPage{
		Title:   "Sign-in required",
		Message: "The review page needs a bearer token or a user name and password.",
	})
}

// securityHeaders forbid framing, sniffing, inline scripts and leaking the page's URL
// (entry ids, record ids) to other sites.
func securityHeaders(hd http.Header) {
	hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
}
