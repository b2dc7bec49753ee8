package pipeline_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/concord-sync/concord/internal/testenv"
	"github.com/concord-sync/concord/pipeline"
	"github.com/concord-sync/concord/pipeline/state"
	"github.com/concord-sync/concord/resolver"
)

// downStore is a store whose server can be taken away: every call fails while down.
type downStore struct {
	state.Store
	down atomic.Bool
}

var errDown = errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")

func (s *downStore) Ping(ctx context.Context) error {
	if s.down.Load() {
		return errDown
	}
	p, ok := s.Store.(pipeline.Pinger)
	if !ok {
		return errors.New("the wrapped store cannot be pinged")
	}
	return p.Ping(ctx)
}

func (s *downStore) Get(ctx context.Context, p int32, records []string) ([]*resolver.State, error) {
	if s.down.Load() {
		return nil, errDown
	}
	return s.Store.Get(ctx, p, records)
}

func (s *downStore) Due(ctx context.Context, p int32, nowMs int64, limit int) ([]string, error) {
	if s.down.Load() {
		return nil, errDown
	}
	return s.Store.Due(ctx, p, nowMs, limit)
}

// TestReadinessFollowsRedis: /readyz must not say ready while every batch fails
// against a missing Redis, and must say ready again once it is back; the batch
// waiting meanwhile goes through.
func TestReadinessFollowsRedis(t *testing.T) {
	e := newEnv(t, 1)
	store := &downStore{Store: e.store}
	p, _ := e.startWith("p1", store)
	testenv.Eventually(t, "ready", p.Ready)

	store.down.Store(true)
	testenv.Eventually(t, "not ready while Redis is down", func() bool { return !p.Ready() })
	if _, why := p.Readiness(); !strings.Contains(why, "redis does not answer") {
		t.Errorf("readiness reason = %q, want it to name redis", why)
	}
	if up := testutil.ToFloat64(e.metrics["p1"].DependencyUp.WithLabelValues("redis")); up != 0 {
		t.Errorf("concord_dependency_up{dependency=redis} = %v while down", up)
	}
	e.produce(crmTopic, change("id", "1", "c", 10, 1_700_000_000_000, map[string]any{"notes": "while down"}))
	testenv.Eventually(t, "the batch to fail and be retried", func() bool { return testutil.ToFloat64(e.metrics["p1"].Retries) > 0 })

	store.down.Store(false)
	testenv.Eventually(t, "ready again once Redis is back", p.Ready)
	if up := testutil.ToFloat64(e.metrics["p1"].DependencyUp.WithLabelValues("kafka")); up != 1 {
		t.Errorf("concord_dependency_up{dependency=kafka} = %v", up)
	}
	readApplies(t, e.brokers, "contacts.apply.billing", 1)
}
