package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"

	"github.com/concord-sync/concord/config"
	"github.com/concord-sync/concord/resolver"
)

// LiveRules is Rules whose resolver a reload swaps atomically: each batch takes the
// resolver current when it starts, so a new configuration applies from the next batch.
type LiveRules struct {
	cur atomic.Pointer[resolver.Resolver]
}

// NewLiveRules starts with r.
func NewLiveRules(r *resolver.Resolver) *LiveRules {
	l := &LiveRules{}
	l.cur.Store(r)
	return l
}

// Resolver implements Rules.
func (l *LiveRules) Resolver() *resolver.Resolver { return l.cur.Load() }

// Reloader reloads the authority map and the resolution settings from the
// configuration file when it changes or when asked (SIGHUP). An invalid file keeps
// the running configuration: the problem is logged and counted
// (concord_config_reloads_total{result="invalid"}). Other settings (topics, keys,
// column mappings, addresses) need a restart: changes to them are logged and left out.
type Reloader struct {
	path    string
	running *config.Config // what the processor started with
	rules   *LiveRules
	log     *zap.Logger
	metrics *Metrics
	mu      sync.Mutex // one reload at a time
	last    *config.Config
}

// NewReloader returns a reloader of the file at path for a processor started with
// running and rules.
func NewReloader(path string, running *config.Config, rules *LiveRules, log *zap.Logger, m *Metrics) *Reloader {
	return &Reloader{path: path, running: running, rules: rules, log: log, metrics: m, last: running}
}

// Reload reads the file again and, if it is valid, makes its authority map and
// resolution settings current. It returns the problem when the file is invalid.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	next, err := config.Load(r.path)
	if err == nil {
		err = r.apply(next)
	}
	if err != nil {
		r.metrics.Reloads.WithLabelValues("invalid").Inc()
		r.log.Error("configuration reload refused; the running configuration stays", zap.String("file", r.path), zap.Error(err))
		return err
	}
	r.metrics.Reloads.WithLabelValues("ok").Inc()
	return nil
}

func (r *Reloader) apply(next *config.Config) error {
	merged := *r.running
	merged.Authority, merged.Resolution = next.Authority, next.Resolution
	if restart := needsRestart(r.running, next); len(restart) > 0 {
		r.log.Warn("configuration changes that need a restart are not applied", zap.Strings("keys", restart))
	}
	if err := merged.Validate(); err != nil {
		return err
	}
	res, err := resolver.New(&merged)
	if err != nil {
		return err
	}
	r.rules.cur.Store(res)
	if !reflect.DeepEqual(r.last.Authority, next.Authority) || !reflect.DeepEqual(r.last.Resolution, next.Resolution) {
		r.log.Info("configuration reloaded: authority and resolution settings apply from the next batch", zap.String("file", r.path))
	}
	r.last = next
	return nil
}

// needsRestart names the top-level keys that differ and are not reloaded.
func needsRestart(a, b *config.Config) []string {
	var keys []string
	if a.Name != b.Name {
		keys = append(keys, "name")
	}
	if !reflect.DeepEqual(a.Kafka, b.Kafka) {
		keys = append(keys, "kafka")
	}
	if !reflect.DeepEqual(a.Redis, b.Redis) {
		keys = append(keys, "redis")
	}
	if !sameSystems(a, b) {
		keys = append(keys, "systems")
	}
	return keys
}

func sameSystems(a, b *config.Config) bool {
	if len(a.Systems) != len(b.Systems) {
		return false
	}
	for name, s := range a.Systems {
		o, ok := b.Systems[name]
		if !ok || s.Topic != o.Topic || !reflect.DeepEqual(s.Key, o.Key) || s.Timestamp != o.Timestamp ||
			!reflect.DeepEqual(s.Fields, o.Fields) || s.Apply != o.Apply || s.Envelope != o.Envelope || s.OriginMarker != o.OriginMarker {
			return false
		}
	}
	return true
}

// Watch reloads whenever the file is written, created or renamed into place (editors
// and Kubernetes ConfigMaps replace files), until ctx is done. It watches the
// directory, settling bursts of events for 200ms.
func (r *Reloader) Watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("pipeline: watching %s: %w", r.path, err)
	}
	defer func() { _ = w.Close() }()
	dir, name := filepath.Split(filepath.Clean(r.path))
	if dir == "" {
		dir = "."
	}
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("pipeline: watching %s: %w", dir, err)
	}
	var settle <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-w.Events:
			if filepath.Base(ev.Name) == name && ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) != 0 {
				settle = time.After(200 * time.Millisecond)
			}
		case err := <-w.Errors:
			r.log.Warn("watching the configuration file", zap.Error(err))
		case <-settle:
			settle = nil
			_ = r.Reload() // logged and counted
		}
	}
}
