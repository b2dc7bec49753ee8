package web

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/concord-sync/concord/dlq"
)

const (
	testToken    = "s3cret-token-value"
	testUser     = "alice"
	testPassword = "correct horse"
)

func newTestHandler(t *testing.T, fake *fakeReviews) *Handler {
	t.Helper()
	h, err := New(Options{
		Reviews: fake,
		Auth:    Auth{Token: testToken, Users: map[string]string{testUser: testPassword, "bob": "hunter2"}},
		Logger:  zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
		Now:     func() time.Time { return testNow },
		Systems: []string{"billing", "crm"},
		Fields:  []string{"email", "name", "notes"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// credentials set on a request.
type credentials func(*http.Request)

var (
	anonymous  credentials = func(*http.Request) {}
	asAlice    credentials = func(r *http.Request) { r.SetBasicAuth(testUser, testPassword) }
	asToken    credentials = func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+testToken) }
	wrongToken credentials = func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }
	wrongPass  credentials = func(r *http.Request) { r.SetBasicAuth(testUser, "wrong") }
	nobody     credentials = func(r *http.Request) { r.SetBasicAuth("mallory", testPassword) }
)

func get(t *testing.T, h http.Handler, target string, as credentials) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, target, nil)
	as(r)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func post(t *testing.T, h http.Handler, target string, form url.Values, as credentials) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	as(r)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// form builds a POST form with the CSRF token of identity (none when "") and rev.
func form(h *Handler, identity string, rev string, kv ...string) url.Values {
	v := url.Values{}
	if identity != "" {
		v.Set("csrf", h.auth.csrfToken(identity))
	}
	if rev != "" {
		v.Set("rev", rev)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

func TestNewRefusesNoAuth(t *testing.T) {
	for name, auth := range map[string]Auth{
		"none":           {},
		"empty users":    {Users: map[string]string{}},
		"empty password": {Users: map[string]string{"alice": ""}},
		"colon in user":  {Users: map[string]string{"a:b": "pw"}},
		"reserved user":  {Users: map[string]string{TokenIdentity: "pw"}},
	} {
		if _, err := New(Options{Reviews: newFake(), Auth: auth}); err == nil {
			t.Errorf("%s: New accepted %+v", name, auth)
		}
	}
	if _, err := New(Options{Auth: Auth{Token: "x"}}); err == nil {
		t.Error("New accepted no Reviews")
	}
}

func TestAuth(t *testing.T) {
	h := newTestHandler(t, newFake())
	tokenOnly, err := New(Options{Reviews: newFake(), Auth: Auth{Token: testToken}})
	if err != nil {
		t.Fatal(err)
	}
	usersOnly, err := New(Options{Reviews: newFake(), Auth: Auth{Users: map[string]string{testUser: testPassword}}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		h         http.Handler
		as        credentials
		want      int
		challenge string // a WWW-Authenticate value expected on a 401
	}{
		{"no credentials", h, anonymous, http.StatusUnauthorized, `Basic realm="concord review"`},
		{"wrong token", h, wrongToken, http.StatusUnauthorized, `Basic realm="concord review"`},
		{"wrong password", h, wrongPass, http.StatusUnauthorized, `Basic realm="concord review"`},
		{"unknown user", h, nobody, http.StatusUnauthorized, `Basic realm="concord review"`},
		{"token", h, asToken, http.StatusOK, ""},
		{"basic", h, asAlice, http.StatusOK, ""},
		{"token only: no credentials", tokenOnly, anonymous, http.StatusUnauthorized, `Bearer realm="concord review"`},
		{"token only: basic refused", tokenOnly, asAlice, http.StatusUnauthorized, ""},
		{"token only: token", tokenOnly, asToken, http.StatusOK, ""},
		{"users only: token refused", usersOnly, asToken, http.StatusUnauthorized, `Basic realm="concord review"`},
		{"users only: basic", usersOnly, asAlice, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/review/", "/review/entry/e1", "/review/static/style.css"} {
				w := get(t, tt.h, path, tt.as)
				if w.Code != tt.want {
					t.Fatalf("GET %s: status %d, want %d", path, w.Code, tt.want)
				}
				if tt.challenge != "" && !strings.HasPrefix(strings.Join(w.Header().Values("WWW-Authenticate"), "\n"), tt.challenge) {
					t.Errorf("GET %s: WWW-Authenticate %q, want it to start with %q", path, w.Header().Values("WWW-Authenticate"), tt.challenge)
				}
				if w.Code == http.StatusUnauthorized && strings.Contains(w.Body.String(), "notes") {
					t.Errorf("GET %s: a 401 leaks the queue", path)
				}
			}
		})
	}
}

func TestSecurityHeaders(t *testing.T) {
	h := newTestHandler(t, newFake())
	for _, w := range []*httptest.ResponseRecorder{
		get(t, h, "/review/", anonymous), get(t, h, "/review/", asAlice), get(t, h, "/review/entry/nope", asAlice),
		get(t, h, "/review/static/review.js", asAlice), post(t, h, "/review/entry/e1/resolve", nil, asAlice),
	} {
		for header, want := range map[string]string{
			"X-Content-Type-Options": "nosniff",
			"X-Frame-Options":        "DENY",
			"Referrer-Policy":        "same-origin",
		} {
			if got := w.Header().Get(header); got != want {
				t.Errorf("%d response: %s = %q, want %q", w.Code, header, got, want)
			}
		}
		csp := w.Header().Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%d response: Content-Security-Policy %q", w.Code, csp)
		}
	}
}

func TestPages(t *testing.T) {
	h := newTestHandler(t, newFake())
	tests := []struct {
		path string
		want int
		body []string // substrings of the body
	}{
		{"/review/", http.StatusOK, []string{`href="/review/entry/e1"`, "3h 12m", ">2<", "12.50", "per 1,000 events", "notes, email", "clock_skew"}},
		{"/review/?status=all", http.StatusOK, []string{`href="/review/entry/e3"`, "3 entries"}},
		{"/review/?status=resolved", http.StatusOK, []string{`href="/review/entry/e3"`, "1 entry"}},
		{"/review/?status=dismissed", http.StatusOK, []string{"No entries match"}},
		{"/review/?status=bogus", http.StatusBadRequest, []string{"not a status"}},
		{"/review/?field=name", http.StatusOK, []string{`href="/review/entry/e2"`, "whole record"}},
		{"/review/entry/e1", http.StatusOK, []string{"ann@example.org", "new lead", "2026-05-01T13:00:00Z", "2026-05-01T13:00:00.2Z", "billing/0/17", `name="rev" value="3"`}},
		{"/review/entry/e2", http.StatusOK, []string{"deleted", "whole record is held"}},
		{"/review/entry/e3", http.StatusOK, []string{"This entry is resolved"}},
		{"/review/entry/nope", http.StatusNotFound, []string{"No such entry"}},
		{"/review/entry/e1?done=resolved", http.StatusOK, []string{`class="flash"`, "Resolved."}},
		{"/review/audit", http.StatusOK, []string{"clock_skew", `href="/review/audit?record=42"`}},
		{"/review/audit?record=42", http.StatusOK, []string{"of record"}},
		{"/review/audit?record=nope", http.StatusOK, []string{"No audit entries"}},
		{"/review/audit?limit=0", http.StatusBadRequest, []string{"limit"}},
		{"/review/patterns", http.StatusOK, []string{"billing wins notes 19 times out of 20", "95%", "Systems that keep losing"}},
		{"/review/static/style.css", http.StatusOK, []string{"system-ui"}},
		{"/review/static/review.js", http.StatusOK, []string{"data-radio"}},
		{"/review/static/nope.css", http.StatusNotFound, nil},
		{"/review/nope", http.StatusNotFound, nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			w := get(t, h, tt.path, asAlice)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d; body:\n%s", w.Code, tt.want, w.Body)
			}
			for _, s := range tt.body {
				if !strings.Contains(w.Body.String(), s) {
					t.Errorf("body lacks %q:\n%s", s, w.Body)
				}
			}
		})
	}
}

func TestQueueFilter(t *testing.T) {
	fake := newFake()
	h := newTestHandler(t, fake)
	for target, want := range map[string]dlq.Filter{
		"/review/":                                  {Status: dlq.StatusPending},
		"/review/?status=all":                       {},
		"/review/?status=resolved&field=notes":      {Status: dlq.StatusResolved, Field: "notes"},
		"/review/?status=pending_review&system=crm": {Status: dlq.StatusPending, System: "crm"},
	} {
		if w := get(t, h, target, asAlice); w.Code != http.StatusOK {
			t.Fatalf("%s: status %d", target, w.Code)
		}
		if got := fake.lastFilter(); got != want {
			t.Errorf("%s: List got %+v, want %+v", target, got, want)
		}
	}
	body := get(t, h, "/review/?system=crm", asAlice).Body.String()
	if !strings.Contains(body, `<option value="crm" selected>`) {
		t.Errorf("the system filter does not show crm selected:\n%s", body)
	}
}

func TestStaticCaching(t *testing.T) {
	h := newTestHandler(t, newFake())
	page := get(t, h, "/review/", asAlice)
	if cc := page.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("page Cache-Control %q, want no-store", cc)
	}
	m := regexp.MustCompile(`href="(/review/static/style\.css\?v=[0-9a-f]+)"`).FindStringSubmatch(page.Body.String())
	if m == nil {
		t.Fatalf("no versioned stylesheet link in the page:\n%s", page.Body)
	}
	w := get(t, h, m[1], asAlice)
	if w.Code != http.StatusOK || !strings.Contains(w.Header().Get("Cache-Control"), "max-age=31536000") ||
		!strings.HasPrefix(w.Header().Get("Content-Type"), "text/css") {
		t.Errorf("stylesheet: %d %q %q", w.Code, w.Header().Get("Cache-Control"), w.Header().Get("Content-Type"))
	}
	if strings.Contains(page.Body.String(), "http://") || strings.Contains(page.Body.String(), "https://") {
		t.Error("the page refers to an external address")
	}
}

func TestCSRF(t *testing.T) {
	fake := newFake()
	h := newTestHandler(t, fake)
	tests := []struct {
		name string
		form url.Values
		as   credentials
		want int
	}{
		{"no token", form(h, "", "3", "mode", "pick", "system", "crm"), asAlice, http.StatusForbidden},
		{"wrong token", url.Values{"csrf": {"forged"}, "rev": {"3"}, "mode": {"pick"}, "system": {"crm"}}, asAlice, http.StatusForbidden},
		{"another user's token", form(h, "bob", "3", "mode", "pick", "system", "crm"), asAlice, http.StatusForbidden},
		{"token user with alice's token", form(h, testUser, "3", "mode", "pick", "system", "crm"), asToken, http.StatusForbidden},
		{"no credentials", form(h, testUser, "3", "mode", "pick", "system", "crm"), anonymous, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, action := range []string{"resolve", "dismiss"} {
				f := url.Values{}
				for k, v := range tt.form {
					f[k] = v
				}
				f.Set("reason", "duplicate")
				if w := post(t, h, "/review/entry/e1/"+action, f, tt.as); w.Code != tt.want {
					t.Errorf("%s: status %d, want %d", action, w.Code, tt.want)
				}
			}
		})
	}
	// Browsers say when a form comes from another site; that is refused too.
	r := httptest.NewRequest(http.MethodPost, "/review/entry/e1/resolve",
		strings.NewReader(form(h, testUser, "3", "mode", "pick", "system", "crm").Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	asAlice(r)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusForbidden {
		t.Errorf("cross-site POST: status %d, want 403", w.Code)
	}
	if res, dis := fake.decisions(); len(res)+len(dis) != 0 {
		t.Errorf("refused requests reached the DLQ: %+v %+v", res, dis)
	}
}

func TestFormsCarryRevAndCSRF(t *testing.T) {
	h := newTestHandler(t, newFake())
	body := get(t, h, "/review/entry/e1", asAlice).Body.String()
	token := h.auth.csrfToken(testUser)
	for _, id := range []string{"pick", "per-field", "dismiss"} {
		re := regexp.MustCompile(`(?s)<form id="` + id + `"[^>]*>(.*?)</form>`)
		m := re.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no form %s", id)
		}
		for _, want := range []string{`name="csrf" value="` + token + `"`, `name="rev" value="3"`} {
			if !strings.Contains(m[1], want) {
				t.Errorf("form %s lacks %s", id, want)
			}
		}
	}
	// The token is per identity: the bearer token's caller gets another.
	if other := get(t, h, "/review/entry/e1", asToken).Body.String(); strings.Contains(other, token) {
		t.Error("the token caller got alice's CSRF token")
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name string
		as   credentials
		who  string
		form []string // after csrf
		want dlq.Resolution
	}{
		{
			"pick", asAlice, testUser,
			[]string{"rev", "3", "mode", "pick", "system", "billing"},
			dlq.Resolution{EntryID: "e1", Rev: 3, Pick: "billing", Reviewer: testUser},
		},
		{
			"per field", asAlice, testUser,
			[]string{"rev", "3", "mode", "fields", "field.notes", "crm", "field.email", "billing", "value.notes", "ignored"},
			dlq.Resolution{EntryID: "e1", Rev: 3, Fields: map[string]string{"notes": "crm", "email": "billing"}, Reviewer: testUser},
		},
		{
			"entered value", asAlice, testUser,
			[]string{"rev", "3", "mode", "fields", "field.notes", "__value", "value.notes", ` "called; disputed" `, "field.email", "crm"},
			dlq.Resolution{
				EntryID: "e1", Rev: 3, Fields: map[string]string{"email": "crm"},
				Values: map[string]json.RawMessage{"notes": raw(`"called; disputed"`)}, Reviewer: testUser,
			},
		},
		{
			"entered JSON object by token", asToken, TokenIdentity,
			[]string{"rev", "3", "mode", "fields", "field.notes", "__value", "value.notes", `{ "a" : [1, true] }`, "field.email", "__value", "value.email", "null"},
			dlq.Resolution{
				EntryID: "e1", Rev: 3,
				Values: map[string]json.RawMessage{"notes": raw(`{"a":[1,true]}`), "email": raw(`null`)}, Reviewer: TokenIdentity,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake()
			h := newTestHandler(t, fake)
			w := post(t, h, "/review/entry/e1/resolve", form(h, tt.who, "", tt.form...), tt.as)
			if w.Code != http.StatusSeeOther {
				t.Fatalf("status %d, want 303; body:\n%s", w.Code, w.Body)
			}
			if loc := w.Header().Get("Location"); loc != "/review/entry/e1?done=resolved" {
				t.Errorf("Location %q", loc)
			}
			got, _ := fake.decisions()
			if len(got) != 1 {
				t.Fatalf("the DLQ got %d resolutions, want 1", len(got))
			}
			if !sameResolution(got[0], tt.want) {
				t.Errorf("resolution\n got %s\nwant %s", show(got[0]), show(tt.want))
			}
			page := get(t, h, w.Header().Get("Location"), tt.as).Body.String()
			if !strings.Contains(page, "Resolved. The chosen values") {
				t.Errorf("the entry page after the redirect shows no success message:\n%s", page)
			}
		})
	}
}

func sameResolution(a, b dlq.Resolution) bool { return show(a) == show(b) }

func show(r dlq.Resolution) string {
	b, _ := json.Marshal(r) // maps marshal sorted
	return string(b)
}

func TestDecisionErrors(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		form   []string
		fail   error // the fake's next decision fails with this
		want   int
		body   string
		called bool // the DLQ was asked
	}{
		{"stale", "/review/entry/e1/resolve", []string{"rev", "2", "mode", "pick", "system", "crm"}, nil, http.StatusConflict, "changed since you loaded it", true},
		{"decided", "/review/entry/e3/resolve", []string{"rev", "2", "mode", "pick", "system", "crm"}, nil, http.StatusConflict, "Someone else decided", true},
		{"invalid", "/review/entry/e1/resolve", []string{"rev", "3", "mode", "fields", "field.notes", "crm"}, fmt.Errorf("%w: no choice for field email", dlq.ErrInvalid), http.StatusBadRequest, "no choice for field email", true},
		{"unknown entry", "/review/entry/nope/resolve", []string{"rev", "1", "mode", "pick", "system", "crm"}, nil, http.StatusNotFound, "No such entry", true},
		{"service down", "/review/entry/e1/resolve", []string{"rev", "3", "mode", "pick", "system", "crm"}, errors.New("redis: connection refused"), http.StatusInternalServerError, "Something went wrong", true},
		{"no rev", "/review/entry/e1/resolve", []string{"mode", "pick", "system", "crm"}, nil, http.StatusBadRequest, "revision", false},
		{"no mode", "/review/entry/e1/resolve", []string{"rev", "3"}, nil, http.StatusBadRequest, "mode=pick", false},
		{"pick without system", "/review/entry/e1/resolve", []string{"rev", "3", "mode", "pick"}, nil, http.StatusBadRequest, "whose version", false},
		{"no field chosen", "/review/entry/e1/resolve", []string{"rev", "3", "mode", "fields"}, nil, http.StatusBadRequest, "every field", false},
		{"value not JSON", "/review/entry/e1/resolve", []string{"rev", "3", "mode", "fields", "field.notes", "__value", "value.notes", "hello", "field.email", "crm"}, nil, http.StatusBadRequest, "not JSON", false},
		{"value empty", "/review/entry/e1/resolve", []string{"rev", "3", "mode", "fields", "field.notes", "__value", "field.email", "crm"}, nil, http.StatusBadRequest, "Enter a value for notes", false},
		{"dismiss without reason", "/review/entry/e1/dismiss", []string{"rev", "3", "reason", "   "}, nil, http.StatusBadRequest, "A reason is required", false},
		{"dismiss stale", "/review/entry/e1/dismiss", []string{"rev", "1", "reason", "dup"}, nil, http.StatusConflict, "changed since you loaded it", true},
		{"dismiss decided", "/review/entry/e3/dismiss", []string{"rev", "2", "reason", "dup"}, nil, http.StatusConflict, "Someone else decided", true},
		{"dismiss unknown", "/review/entry/nope/dismiss", []string{"rev", "2", "reason", "dup"}, nil, http.StatusNotFound, "No such entry", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake()
			fake.setFail(tt.fail)
			h := newTestHandler(t, fake)
			w := post(t, h, tt.path, form(h, testUser, "", tt.form...), asAlice)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d; body:\n%s", w.Code, tt.want, w.Body)
			}
			if !strings.Contains(w.Body.String(), tt.body) {
				t.Errorf("body lacks %q:\n%s", tt.body, w.Body)
			}
			if tt.want == http.StatusConflict && !strings.Contains(w.Body.String(), `href="/review/entry/`) {
				t.Error("a 409 offers no link to reload the entry")
			}
			if strings.Contains(w.Body.String(), "connection refused") {
				t.Error("an internal error is shown to the reviewer")
			}
			res, dis := fake.decisions()
			if called := len(res)+len(dis) > 0; called != tt.called {
				t.Errorf("the DLQ was asked: %v, want %v", called, tt.called)
			}
		})
	}
}

func TestDismiss(t *testing.T) {
	fake := newFake()
	h := newTestHandler(t, fake)
	w := post(t, h, "/review/entry/e1/dismiss", form(h, testUser, "3", "reason", "  test record, ignore  "), asAlice)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/review/entry/e1?done=dismissed" {
		t.Fatalf("status %d Location %q; body:\n%s", w.Code, w.Header().Get("Location"), w.Body)
	}
	_, got := fake.decisions()
	want := dlq.Dismissal{EntryID: "e1", Rev: 3, Reason: "test record, ignore", Reviewer: testUser}
	if len(got) != 1 || got[0] != want {
		t.Errorf("dismissals %+v, want [%+v]", got, want)
	}
	if page := get(t, h, "/review/entry/e1?done=dismissed", asAlice).Body.String(); !strings.Contains(page, "Dismissed.") || strings.Contains(page, `<form id="dismiss"`) {
		t.Errorf("after dismissal the page shows no message or still offers forms:\n%s", page)
	}
}

func TestEscaping(t *testing.T) {
	fake := newFake()
	fake.entries[0].Record = `42<img src=x onerror=alert(2)>`
	fake.audit[0].Record = fake.entries[0].Record
	h := newTestHandler(t, fake)
	for _, path := range []string{
		"/review/", "/review/entry/e1", "/review/audit", "/review/audit?record=" + url.QueryEscape(xss),
		"/review/entry/e1?done=" + url.QueryEscape(xss),
	} {
		body := get(t, h, path, asAlice).Body.String()
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
			t.Errorf("%s: a value is rendered as raw HTML:\n%s", path, body)
		}
		if strings.Contains(body, "<script") && !strings.Contains(body, `<script src="/review/static/review.js`) {
			t.Errorf("%s: an unexpected script element", path)
		}
	}
	body := get(t, h, "/review/entry/e1", asAlice).Body.String()
	if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the <script> value is not shown escaped:\n%s", body)
	}
	if strings.Count(body, "<script") != 1 {
		t.Errorf("want exactly one script element (the embedded one), got %d", strings.Count(body, "<script"))
	}
}

func TestDiffMarker(t *testing.T) {
	h := newTestHandler(t, newFake())
	body := get(t, h, "/review/entry/e1", asAlice).Body.String()
	row := func(field string) string {
		m := regexp.MustCompile(`(?s)<tr class="([^"]*)" data-field="` + field + `">(.*?)</tr>`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no row for %s", field)
		}
		return m[1] + m[2]
	}
	for _, f := range []string{"notes", "email"} {
		if r := row(f); !strings.Contains(r, "differs") || !strings.Contains(r, "≠") || !strings.Contains(r, `class="value diff"`) {
			t.Errorf("%s: differing values lack the class or the visible marker:\n%s", f, r)
		}
	}
	if r := row("score"); strings.Contains(r, "≠") || strings.Contains(r, "diff") {
		t.Errorf("score is equal in both systems but marked:\n%s", r)
	}
}

func TestBearerTokenCanPostWithHeader(t *testing.T) {
	fake := newFake()
	h := newTestHandler(t, fake)
	r := httptest.NewRequest(http.MethodPost, "/review/entry/e1/resolve", strings.NewReader("rev=3&mode=pick&system=crm"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("X-CSRF-Token", h.auth.csrfToken(TokenIdentity))
	asToken(r)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("status %d", w.Code)
	}
	res, _ := fake.decisions()
	if len(res) != 1 || res[0].Reviewer != TokenIdentity {
		t.Errorf("resolutions %+v", res)
	}
}

func TestNeverLogsSecrets(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	fake := newFake()
	h, err := New(Options{
		Reviews: fake, Logger: zap.New(core), Now: func() time.Time { return testNow },
		Auth: Auth{Token: testToken, Users: map[string]string{testUser: testPassword}},
	})
	if err != nil {
		t.Fatal(err)
	}
	get(t, h, "/review/", wrongPass)
	get(t, h, "/review/", wrongToken)
	post(t, h, "/review/entry/e1/resolve", form(h, testUser, "3", "mode", "pick", "system", "crm"), asAlice)
	fake.setFail(errors.New("redis: connection refused"))
	post(t, h, "/review/entry/e2/dismiss", form(h, testUser, "1", "reason", "dup"), asAlice)
	if logs.Len() == 0 {
		t.Fatal("nothing was logged")
	}
	basic := base64.StdEncoding.EncodeToString([]byte(testUser + ":" + testPassword))
	for _, e := range logs.All() {
		line := fmt.Sprint(e.Message, e.ContextMap())
		for _, secret := range []string{testPassword, testToken, basic, h.auth.csrfToken(testUser)} {
			if strings.Contains(line, secret) {
				t.Errorf("a log line holds a secret: %s", line)
			}
		}
	}
	if s := fmt.Sprintf("%+v", *h.auth); strings.Contains(s, testPassword) || strings.Contains(s, testToken) {
		t.Error("the authenticator keeps a secret in clear")
	}
}

// TestQueueChart: the queue page draws the last hours (events, conflict rate, DLQ
// depth) as an inline SVG of numbers only, and goes on without it when the history
// cannot be read.
func TestQueueChart(t *testing.T) {
	fake := newFake()
	h := newTestHandler(t, fake)
	if body := get(t, h, "/review/", asAlice).Body.String(); strings.Contains(body, `id="history"`) {
		t.Error("a chart without a history")
	}
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for i := range chartMinutes {
		p := dlq.Point{At: start.Add(time.Duration(i) * time.Minute), Events: 100, Depth: int64(i / 60)}
		if i >= chartMinutes-10 {
			p.Conflicts = 20 // a spike at the end
		}
		fake.history = append(fake.history, p)
	}
	body := get(t, h, "/review/", asAlice).Body.String()
	for _, want := range []string{
		`<figure class="chart" id="history"><svg`, `<polyline class="rate"`, `<polyline class="depth"`,
		`class="events"`, "09:00 to 14:59 UTC", "up to 500", "up to 200.0", "up to 5)",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the chart lacks %q", want)
		}
	}
	figure := body[strings.Index(body, `id="history"`):]
	if figure = figure[:strings.Index(figure, "</figure>")]; strings.Contains(figure, "<script") || strings.Contains(figure, "http") {
		t.Errorf("the chart carries a script or an external resource: %s", figure)
	}
}

// TestBulkResolveFlow: the queue offers a bulk decision for what it shows; the
// preview lists each entry at its revision; confirming (with the CSRF token)
// resolves each on that revision, and an entry that changed after the preview is
// skipped and reported, never decided blindly.
func TestBulkResolveFlow(t *testing.T) {
	fake := newFake()
	h := newTestHandler(t, fake)
	if body := get(t, h, "/review/", asAlice).Body.String(); !strings.Contains(body, `id="bulk"`) {
		t.Fatal("the queue offers no bulk decision")
	}
	preview := get(t, h, "/review/bulk?pick=billing", asAlice)
	if preview.Code != http.StatusOK {
		t.Fatalf("preview: %d\n%s", preview.Code, preview.Body)
	}
	body := preview.Body.String()
	for _, want := range []string{`name="entry" value="e1:3"`, `name="entry" value="e2:1"`, "2 pending entries", `id="bulk-confirm"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the preview lacks %q:\n%s", want, body)
		}
	}
	fake.bump("e2") // a later change after the preview
	if w := post(t, h, "/review/bulk/resolve", form(h, "", "", "pick", "billing", "entry", "e1:3", "entry", "e2:1"), asAlice); w.Code != http.StatusForbidden {
		t.Errorf("a bulk decision without the CSRF token: %d, want 403", w.Code)
	}
	w := post(t, h, "/review/bulk/resolve", form(h, testUser, "", "pick", "billing", "entry", "e1:3", "entry", "e2:1"), asAlice)
	if w.Code != http.StatusOK {
		t.Fatalf("confirm: %d\n%s", w.Code, w.Body)
	}
	for _, want := range []string{"1 resolved with billing's version, 1 skipped", "e2", "changed since the preview"} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("the result lacks %q:\n%s", want, w.Body)
		}
	}
	if len(fake.resolutions) != 1 || fake.resolutions[0].EntryID != "e1" || fake.resolutions[0].Rev != 3 || fake.resolutions[0].Reviewer != testUser {
		t.Errorf("resolutions = %+v, want e1 on revision 3 by %s", fake.resolutions, testUser)
	}
}

// TestSuggestionCounts: under each authority suggestion the patterns page says how
// many pending entries the change would resolve, linking to a preview of them.
func TestSuggestionCounts(t *testing.T) {
	fake := newFake()
	fake.patterns.Suggestions = []dlq.Suggestion{{Field: "notes", Owner: "billing", Wins: 9, Of: 9, Message: "billing won 9 of 9"}}
	h, err := New(Options{
		Reviews: fake, Auth: Auth{Token: testToken}, Logger: zaptest.NewLogger(t), Now: func() time.Time { return testNow },
		Suggest: func(field, owner string) (Chooser, error) {
			return func(e *dlq.Entry) (*dlq.Resolution, string) {
				if _, ok := e.Versions[owner]; ok && slices.Contains(e.Fields, field) {
					return &dlq.Resolution{Fields: map[string]string{field: owner}}, ""
				}
				return nil, "no version of " + owner
			}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	body := get(t, h, "/review/patterns", asToken).Body.String()
	if !strings.Contains(body, `reevaluate?field=notes&amp;owner=billing">1 (preview)`) {
		t.Errorf("the suggestion lacks its count and preview link:\n%s", body)
	}
	preview := get(t, h, "/review/reevaluate?field=notes&owner=billing", asToken).Body.String()
	for _, want := range []string{"If notes belonged to billing", "e1", "notes from billing", "concord dlq reevaluate"} {
		if !strings.Contains(preview, want) {
			t.Errorf("the preview lacks %q:\n%s", want, preview)
		}
	}
	if strings.Contains(preview, `id="bulk-confirm"`) {
		t.Error("a what-if preview must not decide anything")
	}
}
