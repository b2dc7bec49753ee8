package main

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/concord-sync/concord/config"
	"github.com/concord-sync/concord/dlq"
	"github.com/concord-sync/concord/dlq/web"
	"github.com/concord-sync/concord/internal/testenv"
)

const (
	httpTestToken    = "tok-5f0e1d2c3b4a"
	httpTestUser     = "ann"
	httpTestPassword = "pw-9a8b7c6d5e4f"
	wrongTestToken   = "wrong-token-77aa88bb"
)

// httpTestServer serves concord's HTTP endpoints as concord run does (health,
// readiness, metrics, the review page on a real DLQ), signed in with a token and a
// user, within limits, logging to the returned observer.
func httpTestServer(t *testing.T, limits httpLimits) (base string, logs *observer.ObservedLogs) {
	t.Helper()
	cfg, err := config.Parse([]byte(`
name: contacts
kafka: {brokers: [127.0.0.1:9]}
systems:
  crm: {topic: crm.public.contacts, key: [id]}
  billing: {topic: billing.public.customers, key: [id]}
authority: {email: crm, notes: shared}
`))
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	log := zap.New(core)
	svc := dlq.NewService(dlq.NewStore(testenv.Redis(t).Client(t), cfg.Name), sharedFields(cfg), nil)
	review, err := newReviewHandler(cfg, svc, web.Auth{Token: httpTestToken, Users: map[string]string{httpTestUser: httpTestPassword}}, log)
	if err != nil {
		t.Fatal(err)
	}
	mux := newMux(func() (bool, string) { return false, "redis does not answer" }, prometheus.NewRegistry())
	mux.Handle(web.Prefix, review)
	srv, base, err := serveHTTPWithin("127.0.0.1:0", mux, review, limits, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdownHTTP(srv, log) })
	return base, logs
}

type signIn func(*http.Request)

var (
	noSignIn    signIn = func(*http.Request) {}
	tokenSignIn signIn = func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+httpTestToken) }
	userSignIn  signIn = func(r *http.Request) { r.SetBasicAuth(httpTestUser, httpTestPassword) }
	wrongToken  signIn = func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+wrongTestToken) }
	wrongPass   signIn = func(r *http.Request) { r.SetBasicAuth(httpTestUser, wrongTestToken) }
)

func request(t *testing.T, method, target string, body io.Reader, as signIn) (*http.Response, string) {
	t.Helper()
	r, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	as(r)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestHTTPSignInEverywhereButHealth: with sign-in configured, every path but
// /healthz and /readyz answers 401 without valid credentials (the review page, its
// assets, its forms, /metrics, and paths that do not exist), and the probes answer
// without any.
func TestHTTPSignInEverywhereButHealth(t *testing.T) {
	base, _ := httpTestServer(t, defaultHTTPLimits)
	protected := []struct{ method, path string }{
		{"GET", "/metrics"},
		{"GET", "/review/"},
		{"GET", "/review/static/style.css"},
		{"GET", "/review/entry/e1"},
		{"GET", "/review/audit"},
		{"GET", "/review/patterns"},
		{"POST", "/review/entry/e1/resolve"},
		{"POST", "/review/entry/e1/dismiss"},
		{"GET", "/"},
		{"GET", "/nowhere"},
		{"GET", "/healthz/"},
		{"POST", "/metrics"},
	}
	for _, p := range protected {
		for name, as := range map[string]signIn{"none": noSignIn, "wrong token": wrongToken, "wrong password": wrongPass} {
			resp, body := request(t, p.method, base+p.path, strings.NewReader("a=b"), as)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s %s with %s: %d, want 401", p.method, p.path, name, resp.StatusCode)
			}
			if len(resp.Header.Values("WWW-Authenticate")) == 0 {
				t.Errorf("%s %s: a 401 without a challenge", p.method, p.path)
			}
			if strings.Contains(body, "concord_") || strings.Contains(body, wrongTestToken) {
				t.Errorf("%s %s with %s: the 401 shows %q", p.method, p.path, name, body)
			}
		}
	}
	for _, as := range []signIn{noSignIn, wrongToken} {
		if resp, body := request(t, "GET", base+"/healthz", nil, as); resp.StatusCode != http.StatusOK || body != "ok\n" {
			t.Errorf("/healthz: %d %q", resp.StatusCode, body)
		}
		if resp, body := request(t, "GET", base+"/readyz", nil, as); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "not ready") {
			t.Errorf("/readyz: %d %q", resp.StatusCode, body)
		}
	}
	for _, as := range []signIn{tokenSignIn, userSignIn} {
		if resp, body := request(t, "GET", base+"/metrics", nil, as); resp.StatusCode != http.StatusOK || !strings.Contains(body, "# HELP") && body != "" {
			t.Errorf("/metrics signed in: %d %.80q", resp.StatusCode, body)
		}
		if resp, _ := request(t, "GET", base+"/review/", nil, as); resp.StatusCode != http.StatusOK {
			t.Errorf("/review/ signed in: %d", resp.StatusCode)
		}
		if resp, _ := request(t, "GET", base+"/review/static/style.css", nil, as); resp.StatusCode != http.StatusOK {
			t.Errorf("/review/static/style.css signed in: %d", resp.StatusCode)
		}
	}
}

// TestHTTPWithoutSignIn: with no sign-in configured (the review page is then not
// served), /metrics is open, as the README says.
func TestHTTPWithoutSignIn(t *testing.T) {
	log := zap.NewNop()
	srv, base, err := serveHTTP("127.0.0.1:0", newMux(func() (bool, string) { return true, "" }, prometheus.NewRegistry()), nil, log)
	if err != nil {
		t.Fatal(err)
	}
	defer shutdownHTTP(srv, log)
	if resp, _ := request(t, "GET", base+"/metrics", nil, noSignIn); resp.StatusCode != http.StatusOK {
		t.Errorf("/metrics: %d", resp.StatusCode)
	}
	if resp, _ := request(t, "GET", base+"/review/", nil, noSignIn); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/review/ without sign-in configured: %d, want 404", resp.StatusCode)
	}
}

// TestHTTPLargeBodiesGet413: a body over the limit is refused with 413, whether its
// length is announced or it turns out too long while read; without credentials it
// is a 401 before anything is read.
func TestHTTPLargeBodiesGet413(t *testing.T) {
	base, _ := httpTestServer(t, defaultHTTPLimits)
	big := "csrf=x&reason=" + strings.Repeat("a", int(defaultHTTPLimits.MaxBody))
	target := base + "/review/entry/e1/dismiss"
	resp, body := request(t, "POST", target, strings.NewReader(big), tokenSignIn)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "request body over 1048576 bytes") {
		t.Errorf("announced: %d %.100q", resp.StatusCode, body)
	}
	// A chunked body has no announced length: the review page finds it too long.
	resp, body = request(t, "POST", target, io.MultiReader(strings.NewReader(big)), tokenSignIn)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "Request too large") {
		t.Errorf("chunked: %d %.100q", resp.StatusCode, body)
	}
	if resp, _ := request(t, "POST", target, strings.NewReader(big), noSignIn); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without credentials: %d, want 401", resp.StatusCode)
	}
	// A small form still reaches the page (403: it carries no valid CSRF token).
	if resp, _ := request(t, "POST", target, strings.NewReader(url.Values{"reason": {"x"}}.Encode()), tokenSignIn); resp.StatusCode != http.StatusForbidden {
		t.Errorf("small form: %d, want 403", resp.StatusCode)
	}
}

// TestHTTPSlowClientsAreCut: a client trickling its headers (slowloris) is
// disconnected at the header timeout, one trickling its body at the read timeout,
// and an idle kept-alive connection at the idle timeout.
func TestHTTPSlowClientsAreCut(t *testing.T) {
	limits := defaultHTTPLimits
	limits.ReadHeader, limits.Read, limits.Idle = 300*time.Millisecond, 600*time.Millisecond, 300*time.Millisecond
	base, _ := httpTestServer(t, limits)
	addr := strings.TrimPrefix(base, "http://")

	t.Run("headers", func(t *testing.T) {
		conn := dial(t, addr)
		start := time.Now()
		go trickle(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n", "X-Slow: 1\r\n")
		waitClosed(t, conn, start, 10*limits.ReadHeader)
	})
	t.Run("body", func(t *testing.T) {
		conn := dial(t, addr)
		start := time.Now()
		go trickle(conn, "POST /review/entry/e1/dismiss HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+httpTestToken+
			"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n", "a")
		waitClosed(t, conn, start, 10*limits.Read)
	})
	t.Run("idle", func(t *testing.T) {
		conn := dial(t, addr)
		if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("first request: %v %v", err, resp)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		start := time.Now()
		waitClosed(t, conn, start, 10*limits.Idle)
	})
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// trickle writes first, then more every 50ms until the connection fails.
func trickle(conn net.Conn, first, more string) {
	if _, err := io.WriteString(conn, first); err != nil {
		return
	}
	for {
		time.Sleep(50 * time.Millisecond)
		if _, err := io.WriteString(conn, more); err != nil {
			return
		}
	}
}

// waitClosed reads conn until the server closes it, failing when that takes longer
// than within (the test's own deadline is 5 times that).
func waitClosed(t *testing.T, conn net.Conn, start time.Time, within time.Duration) {
	t.Helper()
	_ = conn.SetReadDeadline(start.Add(5 * within))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept the connection open for %v", time.Since(start))
	}
	if took := time.Since(start); took > within {
		t.Errorf("the server closed the connection after %v, want within %v", took, within)
	}
}

// TestHTTPKeepsSecretsOut: neither the logs of the server and the review page nor
// any response carry the token, a password, the Authorization header sent or a
// wrong token tried.
func TestHTTPKeepsSecretsOut(t *testing.T) {
	base, logs := httpTestServer(t, defaultHTTPLimits)
	var bodies []string
	for _, as := range []signIn{noSignIn, wrongToken, wrongPass, tokenSignIn, userSignIn} {
		for _, p := range []string{"/review/", "/review/entry/missing", "/metrics", "/nowhere", "/readyz"} {
			resp, body := request(t, "GET", base+p, nil, as)
			bodies = append(bodies, body, fmt.Sprint(resp.Header))
		}
		resp, body := request(t, "POST", base+"/review/entry/e1/dismiss", strings.NewReader("reason=x&csrf=forged"), as)
		bodies = append(bodies, body, fmt.Sprint(resp.Header))
	}
	if logs.Len() == 0 {
		t.Fatal("nothing was logged")
	}
	secrets := []string{
		httpTestToken, httpTestPassword, wrongTestToken,
		base64.StdEncoding.EncodeToString([]byte(httpTestUser + ":" + httpTestPassword)),
		base64.StdEncoding.EncodeToString([]byte(httpTestUser + ":" + wrongTestToken)),
	}
	for _, e := range logs.All() {
		line := fmt.Sprint(e.Message, e.ContextMap())
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Errorf("a log line holds a secret: %s", line)
			}
		}
	}
	for _, b := range bodies {
		for _, s := range secrets {
			if strings.Contains(b, s) {
				t.Errorf("a response holds a secret: %.200s", b)
			}
		}
	}
}
