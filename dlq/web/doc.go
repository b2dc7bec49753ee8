// Package web is the DLQ review page (DESIGN.md section 5): a server-rendered HTML
// interface to list, inspect, resolve and dismiss DLQ entries, read the audit trail and
// see recurring conflict patterns.
//
// Handler serves everything under Prefix ("/review/") so that it shares a mux with
// /healthz, /readyz and /metrics. Every request must authenticate (a bearer token or
// HTTP basic auth, Auth); every POST must carry the CSRF token the pages embed. Pages
// are html/template (every value escaped) and the assets are embedded, so the page
// works without any external network and without JavaScript.
package web
