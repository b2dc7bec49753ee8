// Package testenv gives tests the services concord talks to, started the way the
// project's tests expect: fast, isolated and cleaned up.
//
// Redis: Redis(t) hands a test its own empty logical database on ONE redis-server per
// test binary, started lazily on a free 127.0.0.1 port with no persistence (`--save ""
// --appendonly no`, a temporary --dir) and stopped when the package's tests end. A
// package that uses it calls Main from its TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// Databases are handed out one per test (so t.Parallel tests never share one) and
// flushed before use. When redis-server is not on PATH, Redis falls back to an
// in-process miniredis per test and says so with t.Log; with CI=true it fails the test
// instead, so CI never passes without having run against real Redis. Server.Real tells
// the two apart for tests of features miniredis lacks. Miniredis(t) always gives a
// miniredis, for tests that run against both.
//
// RedisCluster(t) gives a one-node Redis Cluster (all 16384 slots on one redis-server,
// started once per test binary too): it only has database 0, so each test gets a
// unique name to prefix its keys with. It is what proves that scripts and multi-key
// commands stay within one hash slot: a cluster node refuses CROSSSLOT commands even
// when it owns every slot. Without redis-server it skips the test (fails with CI=true).
//
// Postgres(t) gives a test its own new database (dropped, sessions and all, when it
// ends) on ONE PostgreSQL cluster per test binary: initdb into a temporary directory
// (trust authentication, user "postgres"), fsync off, listening on a free 127.0.0.1
// port with its unix socket in that directory, started on first use and stopped by
// Main. Debian keeps the binaries off PATH, so /usr/lib/postgresql/*/bin is searched
// (newest version first) before PATH. As root the server runs as the "postgres" OS
// user the package creates, since initdb and postgres refuse root. Without PostgreSQL
// the test is skipped; with CI=true it fails instead.
//
// Server processes are killed with the test binary if it dies before Main stops them
// (Linux: the parent-death signal).
package testenv
