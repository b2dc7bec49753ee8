package testenv_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/concord-sync/concord/internal/testenv"
)

func TestPostgresGivesEachTestItsOwnEmptyDatabase(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]string{}
	var port int
	for i := range 3 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			pg := testenv.Postgres(t)
			c := pg.Conn(t)
			var n int
			if err := c.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("a new test's database has %d tables; want none", n)
			}
			if _, err := c.Exec(ctx, `CREATE TABLE t (id int PRIMARY KEY)`); err != nil {
				t.Fatal(err)
			}
			var db string
			if err := c.QueryRow(ctx, `SELECT current_database()`).Scan(&db); err != nil || db != pg.Database {
				t.Fatalf("current_database() = %q, %v; want %q", db, err, pg.Database)
			}
			mu.Lock()
			defer mu.Unlock()
			if other, ok := seen[db]; ok {
				t.Errorf("database %s handed to %s and %s", db, other, t.Name())
			}
			seen[db] = t.Name()
			if port != 0 && port != pg.Port {
				t.Errorf("tests got servers on ports %d and %d; want one server per test binary", port, pg.Port)
			}
			port = pg.Port
		})
	}
}

func TestPostgresIsARealServer(t *testing.T) {
	pg := testenv.Postgres(t)
	c := pg.Conn(t)
	var version, fsync, listen string
	if err := c.QueryRow(ctx, `SELECT current_setting('server_version_num'), current_setting('fsync'), current_setting('listen_addresses')`).Scan(&version, &fsync, &listen); err != nil {
		t.Fatal(err)
	}
	if fsync != "off" || listen != "127.0.0.1" {
		t.Errorf("fsync=%s listen_addresses=%s; want off and 127.0.0.1", fsync, listen)
	}
	// Something miniredis-like could not do: PostgreSQL's own type checking.
	_, err := c.Exec(ctx, `SELECT 1 + 'x'::text`)
	if err == nil {
		t.Error("int + text succeeded; want PostgreSQL's operator error")
	}
	t.Logf("PostgreSQL %s on %s:%d", version, pg.Host, pg.Port)
}
