// Package browsertest starts a headless Chromium for tests that drive a page with
// chromedp: the review page's own browser test, and end-to-end tests of the review
// flow. It needs no network: the browser only talks to the test's own server.
package browsertest

import (
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// Timeout bounds everything a test does with the browser, so a hung page fails the test
// instead of the whole run.
const Timeout = 60 * time.Second

// ChromiumEnv names the environment variable that overrides where Chromium is found.
const ChromiumEnv = "CONCORD_CHROMIUM"

// candidates are tried in order when ChromiumEnv is not set: Debian's chromium first.
var candidates = []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// Path returns the Chromium executable, or "" when none is installed.
func Path() string {
	if p := os.Getenv(ChromiumEnv); p != "" {
		return p
	}
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	return ""
}

// New starts a headless Chromium with a fresh profile in t.TempDir() and returns a
// chromedp context for one tab, bounded by Timeout, and the function that closes the
// browser (also registered with t.Cleanup, so calling it is optional; calling it twice
// is harmless). Without Chromium the test is skipped with a log line, except with
// CI=true, where it fails: CI must run the browser tests.
//
// The browser is sandbox-less (containers run tests as root) and quiet: no GPU, no
// first-run page, no background networking, component updates or sync, so it makes no
// connection but to the test's server.
func New(t testing.TB) (context.Context, context.CancelFunc) {
	t.Helper()
	path := Path()
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("browsertest: Chromium not found (tried $%s and %v) and CI=true: install chromium", ChromiumEnv, candidates)
		}
		t.Skipf("browsertest: Chromium not found (tried $%s and %v); skipping the browser test", ChromiumEnv, candidates)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.WindowSize(1366, 768), // a laptop screen
		chromedp.UserDataDir(t.TempDir()),
	}
	timeout, cancelTimeout := context.WithTimeout(context.Background(), Timeout)
	alloc, cancelAlloc := chromedp.NewExecAllocator(timeout, opts...)
	var stopped atomic.Bool
	logf := func(format string, args ...any) { // chromedp may log from its goroutines while it stops
		if !stopped.Load() {
			t.Logf("chromedp: "+format, args...)
		}
	}
	ctx, cancelTab := chromedp.NewContext(alloc, chromedp.WithLogf(logf), chromedp.WithErrorf(logf))
	var once sync.Once
	stop := func() {
		once.Do(func() {
			stopped.Store(true)
			cancelTab()
			cancelAlloc() // waits for the browser process, so t.TempDir can be removed
			cancelTimeout()
		})
	}
	t.Cleanup(stop)
	if err := chromedp.Do(ctx); err != nil { // start the browser now: errors here are setup errors
		stop()
		t.Fatalf("browsertest: starting %s: %v", path, err)
	}
	return ctx, stop
}

// BasicAuth signs the tab in with HTTP basic auth: every request it makes carries the
// Authorization header, so the browser never shows its sign-in prompt.
func BasicAuth(user, password string) chromedp.Action[chromedp.Void] {
	creds := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	return Headers(map[string]string{"Authorization": "Basic " + creds})
}

// Headers sets the extra headers every request of the tab carries from now on
// (replacing any set before).
func Headers(headers map[string]string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		h := network.Headers{}
		for k, v := range headers {
			h[k] = v
		}
		_, err := cdp.Call(ctx, t, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: h})
		return err
	})
}
