package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/concord-sync/concord/dlq"
	"github.com/concord-sync/concord/internal/browsertest"
)

// TestBrowserReview drives the page in a real Chromium: sign in with basic auth, open
// the queue, open an entry, decide per field (one system's version, one value typed
// in) and submit; the DLQ must get exactly that decision and the page must say so.
// On the way, the <script> value from an outside system must be visible text.
func TestBrowserReview(t *testing.T) {
	start := time.Now()
	fake := newFake()
	for i := range 60 {
		fake.history = append(fake.history, dlq.Point{At: start.Add(time.Duration(i-60) * time.Minute), Events: 50, Conflicts: int64(i % 3), Depth: 2})
	}
	mux := http.NewServeMux()
	mux.Handle(Prefix, newTestHandler(t, fake))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx, stop := browsertest.New(t)
	defer stop()
	dialogs := watchDialogs(ctx, t)

	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}

	step("open the queue",
		browsertest.BasicAuth(testUser, testPassword),
		chromedp.Navigate(srv.URL+"/review/"),
		chromedp.WaitVisible(chromedp.CSS("table.queue")),
	)
	if got := text("#depth"); got != "2" {
		t.Errorf("DLQ depth shows %q, want 2", got)
	}
	// The chart is drawn (the CSP allows no inline style or script, so it is plain SVG).
	step("see the chart", chromedp.WaitVisible(chromedp.CSS("#history svg polyline.rate")))
	bars, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#history svg rect.events").length`))
	if err != nil || bars != 12 {
		t.Errorf("the chart has %d event bars (%v), want 12 (an hour in 5-minute steps)", bars, err)
	}
	if got := text(".who b"); got != testUser {
		t.Errorf("signed in as %q, want %s", got, testUser)
	}

	step("open entry e1",
		chromedp.Click(chromedp.CSS(`a.record[href="/review/entry/e1"]`)),
		chromedp.WaitVisible(chromedp.ID("per-field")),
	)
	const billingNotes = `tr[data-field="notes"] td[data-system="billing"] .str`
	if got := text(billingNotes); got != xss {
		t.Errorf("billing's notes show as %q, want the text %q", got, xss)
	}
	injected, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("td script").length`))
	if err != nil || injected != 0 {
		t.Errorf("script elements inside the table: %d (%v)", injected, err)
	}

	// notes: crm's version; email: a value typed in (the page's script selects its
	// radio as the reviewer types).
	step("choose per field",
		chromedp.Click(chromedp.CSS(`input[name="field.notes"][value="crm"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="value.email"]`), `"ann@new.example"`),
		chromedp.Click(chromedp.ID("apply-fields")),
		chromedp.WaitVisible(chromedp.ID("flash")),
	)
	if got := text("#flash"); !strings.Contains(got, "Resolved.") {
		t.Errorf("flash message %q", got)
	}
	if got := text(".status"); got != dlq.StatusResolved {
		t.Errorf("status after resolving %q", got)
	}

	res, _ := fake.decisions()
	want := dlq.Resolution{
		EntryID: "e1", Rev: 3, Fields: map[string]string{"notes": "crm"},
		Values: map[string]json.RawMessage{"email": raw(`"ann@new.example"`)}, Reviewer: testUser,
	}
	if len(res) != 1 || !sameResolution(res[0], want) {
		t.Errorf("the DLQ got %d resolutions %v, want %s", len(res), res, show(want))
	}
	// The bulk flow: from the queue, preview resolving what it shows with billing's
	// version (e2 only is still pending), confirm, and see the result.
	step("preview a bulk decision",
		chromedp.Navigate(srv.URL+"/review/"),
		chromedp.WaitVisible(chromedp.CSS("#bulk")),
		chromedp.Click(chromedp.CSS("#bulk button")),
		chromedp.WaitVisible(chromedp.CSS("#bulk-confirm")),
	)
	step("confirm it",
		chromedp.Click(chromedp.CSS("#bulk-confirm button")),
		chromedp.WaitVisible(chromedp.CSS("#bulk-done")),
	)
	if got := text("#bulk-done"); !strings.Contains(got, "1 resolved with billing's version, 0 skipped") {
		t.Errorf("bulk result %q", got)
	}
	if res, _ := fake.decisions(); len(res) != 2 || res[1].EntryID != "e2" || res[1].Pick != "billing" || res[1].Rev != 1 {
		t.Errorf("after the bulk decision the DLQ got %v", res)
	}
	if n := dialogs(); n != 0 {
		t.Errorf("%d JavaScript dialogs opened: a value was executed", n)
	}
	t.Logf("browser test took %v", time.Since(start).Round(time.Millisecond))
}

// watchDialogs counts the JavaScript dialogs (alert, confirm, prompt) the page opens,
// closing each so that the page does not block.
func watchDialogs(ctx context.Context, t *testing.T) func() int {
	t.Helper()
	var mu sync.Mutex
	n := 0
	err := chromedp.Listen(ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			mu.Lock()
			n++
			mu.Unlock()
			go func() { // not from the listener: it must not run commands
				_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
			}()
		}
	})
	if err != nil {
		t.Fatalf("listening for dialogs: %v", err)
	}
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}
