package web

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestGuard: a handler guarded by the review page answers as the page does: 401 with
// a challenge and nothing of what it guards (nor of the credentials tried) without
// valid credentials, and the handler itself, with the caller's identity, with them.
func TestGuard(t *testing.T) {
	h := newTestHandler(t, newFake())
	secret := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprintf(w, "concord_events_total 1 for %s", identity(r.Context()))
	})
	g := h.Guard(secret)
	for name, as := range map[string]credentials{"anonymous": anonymous, "wrong token": wrongToken, "wrong password": wrongPass, "unknown user": nobody} {
		w := get(t, g, "/metrics", as)
		if w.Code != http.StatusUnauthorized || len(w.Header().Values("WWW-Authenticate")) == 0 {
			t.Errorf("%s: %d %v", name, w.Code, w.Header())
		}
		if body := w.Body.String(); strings.Contains(body, "concord_events_total") || strings.Contains(body, "nope") || strings.Contains(body, "wrong") {
			t.Errorf("%s: the 401 shows %q", name, body)
		}
		if w.Header().Get("Content-Security-Policy") == "" {
			t.Errorf("%s: a 401 without the security headers", name)
		}
	}
	for _, c := range []struct {
		as   credentials
		want string
	}{{asToken, TokenIdentity}, {asAlice, testUser}} {
		if w := get(t, g, "/metrics", c.as); w.Code != http.StatusOK || w.Body.String() != "concord_events_total 1 for "+c.want {
			t.Errorf("signed in as %s: %d %q", c.want, w.Code, w.Body.String())
		}
	}
}

// TestFormTooLarge: a form over the limit gets a 413 that says so, announced or
// found out while read, and nothing is decided.
func TestFormTooLarge(t *testing.T) {
	fake := newFake()
	h := newTestHandler(t, fake)
	f := form(h, testUser, "3", "mode", "pick", "system", "crm")
	body := f.Encode() + "&pad=" + strings.Repeat("x", maxForm)
	for name, r := range map[string]*http.Request{
		"announced": httptest.NewRequest(http.MethodPost, "/review/entry/e1/resolve", strings.NewReader(body)),
		"chunked":   httptest.NewRequest(http.MethodPost, "/review/entry/e1/resolve", io.MultiReader(strings.NewReader(body))),
	} {
		if name == "chunked" {
			r.ContentLength = -1
		}
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		asAlice(r)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), "Request too large") {
			t.Errorf("%s: %d %.200q", name, w.Code, w.Body.String())
		}
	}
	if res, _ := fake.decisions(); len(res) != 0 {
		t.Errorf("a too-large form decided %+v", res)
	}
}
