package testenv_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/concord-sync/concord/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var ctx = context.Background()

func TestRedisGivesEachTestAnEmptyDatabase(t *testing.T) {
	var mu sync.Mutex
	dbs := map[int]string{}
	for i := range 4 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			s := testenv.Redis(t)
			c := s.Client(t)
			if n, err := c.DBSize(ctx).Result(); err != nil || n != 0 {
				t.Fatalf("DBSIZE of a new test's database = %d, %v; want 0", n, err)
			}
			if err := c.Set(ctx, "k", t.Name(), 0).Err(); err != nil {
				t.Fatal(err)
			}
			if s.Real {
				mu.Lock()
				defer mu.Unlock()
				if other, ok := dbs[s.DB]; ok {
					t.Errorf("database %d handed to %s and %s at once", s.DB, other, t.Name())
				}
				dbs[s.DB] = t.Name()
			}
		})
	}
}

func TestRedisIsRealWhenInstalled(t *testing.T) {
	s := testenv.Redis(t)
	if os.Getenv("CI") == "true" && !s.Real {
		t.Fatal("CI ran against miniredis")
	}
	if !s.Real {
		t.Skip("redis-server is not installed")
	}
	info, err := s.Client(t).Info(ctx, "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	if want := "redis_version:"; !strings.Contains(info, want) {
		t.Errorf("INFO server lacks %q: %q", want, info)
	}
}

func TestMiniredis(t *testing.T) {
	s := testenv.Miniredis(t)
	if s.Real || s.Mini == nil {
		t.Fatalf("Miniredis() = %+v", s)
	}
	if err := s.Client(t).Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Mini.Get("k"); v != "v" {
		t.Errorf("miniredis holds %q", v)
	}
}

func TestRedisClusterRefusesCrossSlot(t *testing.T) {
	cl := testenv.RedisCluster(t)
	c := cl.Client(t)
	a, b := "{"+cl.Name+"}:a", "{"+cl.Name+"}:b"
	if err := c.MSet(ctx, a, 1, b, 2).Err(); err != nil {
		t.Fatalf("MSET within one hash slot: %v", err)
	}
	// Through a plain client, so that the cluster client does not split the command.
	node := testenv.Server{Addr: cl.Addr}
	err := node.Client(t).MGet(ctx, cl.Name+":x", cl.Name+":y").Err()
	if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Errorf("MGET across slots on a cluster node: err = %v, want CROSSSLOT", err)
	}
	if other := testenv.RedisCluster(t); other.Name == cl.Name {
		t.Errorf("two tests got the key prefix %q", cl.Name)
	}
}
