package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/concord-sync/concord/dlq/web"
)

// httpLimits bound what one client can hold of the HTTP server (concord run, demo and
// dlq serve): a request's headers and body must arrive in time and be of bounded
// size, a response must be written in time, and an idle connection is closed.
type httpLimits struct {
	ReadHeader time.Duration // headers (a slowloris client trickling them is cut here)
	Read       time.Duration // headers and body
	Write      time.Duration // from the end of the headers to the end of the response
	Idle       time.Duration // a kept-alive connection between requests
	MaxHeader  int           // bytes of request headers
	MaxBody    int64         // bytes of a request body (413 beyond)
}

// defaultHTTPLimits: the slowest legitimate client is a reviewer on a poor link and
// Prometheus scraping a large registry, both far inside these.
var defaultHTTPLimits = httpLimits{
	ReadHeader: 10 * time.Second,
	Read:       30 * time.Second,
	Write:      60 * time.Second,
	Idle:       2 * time.Minute,
	MaxHeader:  64 << 10,
	MaxBody:    1 << 20,
}

// openPaths are served without credentials: load balancers and orchestrators probe
// them, and they say nothing but whether the instance lives and is ready.
var openPaths = map[string]bool{"/healthz": true, "/readyz": true}

// serveHTTP listens on addr and serves h in the background within defaultHTTPLimits;
// it returns the server and its base URL (with the port chosen when addr asked for
// port 0). guard is the review page when sign-in is configured: then every path but
// openPaths needs its credentials (the page itself, its assets, /metrics, and paths
// that do not exist, which so reveal nothing). A nil guard serves everything openly.
func serveHTTP(addr string, h http.Handler, guard *web.Handler, log *zap.Logger) (*http.Server, string, error) {
	return serveHTTPWithin(addr, h, guard, defaultHTTPLimits, log)
}

func serveHTTPWithin(addr string, h http.Handler, guard *web.Handler, limits httpLimits, log *zap.Logger) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("--http %s: %w", addr, err)
	}
	srv := newHTTPServer(protect(h, guard, limits.MaxBody), limits, log)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", zap.Error(err))
		}
	}()
	log.Info("serving http", zap.String("addr", ln.Addr().String()), zap.Bool("sign_in", guard != nil))
	return srv, "http://" + ln.Addr().String(), nil
}

// newHTTPServer is the server of h within limits. The server's own complaints (a
// client that hung up, a handler that panicked) go to log; they carry no headers.
func newHTTPServer(h http.Handler, limits httpLimits, log *zap.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: limits.ReadHeader,
		ReadTimeout:       limits.Read,
		WriteTimeout:      limits.Write,
		IdleTimeout:       limits.Idle,
		MaxHeaderBytes:    limits.MaxHeader,
		ErrorLog:          zap.NewStdLog(log.Named("http").WithOptions(zap.IncreaseLevel(zap.WarnLevel))),
	}
}

// protect bounds every request body to maxBody and, with a guard, requires its
// credentials everywhere but openPaths.
func protect(h http.Handler, guard *web.Handler, maxBody int64) http.Handler {
	limited := limitBodies(h, maxBody)
	if guard == nil {
		return limited
	}
	guarded := guard.Guard(limited)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if openPaths[r.URL.Path] {
			limited.ServeHTTP(w, r)
			return
		}
		guarded.ServeHTTP(w, r)
	})
}

// limitBodies refuses a body announced larger than max with 413 at once, and cuts
// one that turns out larger while it is read (the review page answers 413 then).
func limitBodies(h http.Handler, maxBody int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxBody {
			w.Header().Set("Connection", "close")
			http.Error(w, fmt.Sprintf("request body over %d bytes", maxBody), http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		h.ServeHTTP(w, r)
	})
}

func shutdownHTTP(srv *http.Server, log *zap.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("http shutdown", zap.Error(err))
	}
}
