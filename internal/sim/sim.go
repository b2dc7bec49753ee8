package sim

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// ErrRunning is returned by a second call of Run.
var ErrRunning = errors.New("sim: Run was already called; make a new Sim")

// publishBatchTimeout is how long kafka-go waits to fill a batch. Its default, one
// second, would put a second of latency on every change event.
const publishBatchTimeout = 5 * time.Millisecond

// Sim runs simulated systems against a Kafka cluster. Its methods are safe for
// concurrent use; Run may be called once.
type Sim struct {
	cfg    Config
	log    *zap.Logger
	tables []*table
	byName map[string]*table

	running   atomic.Bool
	stop      chan struct{}
	stopOnce  sync.Once
	pairs     atomic.Int64
	paused    atomic.Bool  // PauseEditing
	edits     *editLog     // Config.EditLog; nil otherwise
	lastApply atomic.Int64 // unix nanoseconds of the last apply consumed, or of New
}

// Stats counts what a Sim did. Edits are made by the simulated users, sink writes by
// the JDBC sinks; both publish change events.
type Stats struct {
	ConcurrentPairs int64                  // concurrent pairs made (each is two edits)
	Systems         map[string]SystemStats // by system name
}

// SystemStats counts what one system did.
type SystemStats struct {
	Edits      int64 // user edits committed: creates, updates and deletes
	Creates    int64 // of Edits, the ones that created a record
	Deletes    int64 // of Edits, the deletes
	Published  int64 // change events acknowledged by Kafka, tombstones not counted
	Tombstones int64 // tombstones acknowledged by Kafka
	Applies    int64 // apply events consumed
	SinkWrites int64 // applies written: every upsert, and deletes of existing rows
	SinkNoops  int64 // deletes of missing rows: nothing written, nothing published
	Rejected   int64 // applies the sink could not write: its task failed (ErrSinkFailed)
	Rewrites   int64 // applies written again after a sink restart (at-least-once)
	Restarts   int64 // sink task restarts (RestartSink)
}

// New validates cfg and returns a Sim that is ready to Run.
func New(cfg Config, log *zap.Logger) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Sim{cfg: cfg, log: log, byName: map[string]*table{}, stop: make(chan struct{})}
	if cfg.EditLog {
		s.edits = &editLog{}
	}
	for _, spec := range cfg.Systems {
		t := newTable(spec)
		t.log = s.edits
		s.tables = append(s.tables, t)
		s.byName[spec.Name] = t
	}
	s.lastApply.Store(time.Now().UnixNano())
	return s, nil
}

// Run edits at the configured rate, publishes every system's change events and
// consumes every apply topic until ctx is done or a Kafka client fails for good. It
// returns once every goroutine it started has ended and its clients are closed: nil
// after ctx is done, else the first failure.
func (s *Sim) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	goRun := func(f func() error) {
		wg.Go(func() {
			if err := f(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				cancel()
			}
		})
	}
	var closers []func() error
	for _, t := range s.tables {
		w := s.writer(t)
		closers = append(closers, w.Close)
		goRun(func() error { return t.publish(ctx, w) })
		goRun(func() error {
			return t.sink(ctx, func() *kafka.Reader { return s.reader(t) }, s.cfg.SinkCommitInterval, s.log, func() { s.lastApply.Store(time.Now().UnixNano()) })
		})
	}
	ed := newEditor(s.cfg, s.tables, s.log, func() { s.pairs.Add(1) })
	ed.paused = &s.paused
	goRun(func() error { return ed.run(ctx, s.stop) })
	wg.Wait()
	for _, closeFn := range closers {
		if err := closeFn(); err != nil {
			s.log.Warn("closing a Kafka client", zap.Error(err))
		}
	}
	return errors.Join(errs...)
}

func (s *Sim) writer(t *table) *kafka.Writer {
	var balancer kafka.Balancer = kafka.Murmur2Balancer{} // Kafka's default partitioner
	if s.cfg.PartitionByID {
		balancer = byRecordID{keyColumn: t.spec.KeyColumn}
	}
	return &kafka.Writer{
		Addr:         kafka.TCP(s.cfg.Brokers...),
		Topic:        t.spec.Topic,
		Balancer:     balancer,
		BatchSize:    maxPublishBatch,
		BatchTimeout: publishBatchTimeout,
		RequiredAcks: kafka.RequireAll,
		ErrorLogger:  kafkaLogger(s.log, t.spec.Name+" writer"),
	}
}

// byRecordID partitions by the murmur2 hash of the record ID in the key, so a record
// has the same partition in every system's topic whatever the key column is called.
type byRecordID struct{ keyColumn string }

// Balance implements kafka.Balancer.
func (b byRecordID) Balance(msg kafka.Message, partitions ...int) int {
	var key map[string]json.RawMessage
	if err := json.Unmarshal(msg.Key, &key); err == nil {
		if payload, ok := key["payload"]; ok && len(key) == 2 { // a JsonConverter envelope
			key = nil
			_ = json.Unmarshal(payload, &key)
		}
		var id string
		if json.Unmarshal(key[b.keyColumn], &id) == nil {
			msg.Key = []byte(id)
		}
	} // else keep the key bytes: the sim's own keys always decode
	return kafka.Murmur2Balancer{}.Balance(msg, partitions...)
}

func (s *Sim) reader(t *table) *kafka.Reader {
	return kafka.NewReader(kafka.ReaderConfig{
		Brokers:        s.cfg.Brokers,
		GroupID:        t.spec.Name + "-sink",
		Topic:          t.spec.ApplyTopic,
		StartOffset:    kafka.FirstOffset,
		MaxWait:        2 * time.Second, // kafka-go's read deadline too (see pipeline's readers)
		CommitInterval: 0,               // the task commits when it chooses (see sinkTask)
		ErrorLogger:    kafkaLogger(s.log, t.spec.Name+" sink"),
	})
}

// kafkaLogger carries kafka-go's error log (a missing topic, an unreachable broker,
// retries) to log at warn level.
func kafkaLogger(log *zap.Logger, who string) kafka.Logger {
	sugar := log.Sugar().With("client", who)
	return kafka.LoggerFunc(func(msg string, args ...any) { sugar.Warnf(msg, args...) })
}

// RestartSink restarts a system's sink task, as a Connect worker restarting or a
// task failing over does: what it wrote since its last offset commit it writes again.
// It returns false for an unknown system.
func (s *Sim) RestartSink(system string) bool {
	t, ok := s.byName[system]
	if !ok {
		return false
	}
	select {
	case t.restart <- struct{}{}:
	default: // a restart is already on its way
	}
	return true
}

// StopEditing stops the simulated users; sinks keep consuming so the sync can settle.
// Safe to call more than once, before or during Run.
func (s *Sim) StopEditing() {
	s.stopOnce.Do(func() { close(s.stop) })
}

// Stats returns the counts so far.
func (s *Sim) Stats() Stats {
	st := Stats{ConcurrentPairs: s.pairs.Load(), Systems: make(map[string]SystemStats, len(s.tables))}
	for _, t := range s.tables {
		st.Systems[t.spec.Name] = t.snapshot()
	}
	return st
}

// Rows returns a copy of a system's table: record ID -> canonical field -> canonical
// JSON value, without the key and timestamp columns. Columns the system does not map
// keep their name. It returns nil for an unknown system.
func (s *Sim) Rows(system string) map[string]map[string]string {
	t, ok := s.byName[system]
	if !ok {
		return nil
	}
	return t.canonicalRows()
}

// Quiet reports whether no apply has been consumed for d and every change committed
// so far has been published: the systems have settled.
func (s *Sim) Quiet(d time.Duration) bool {
	for _, t := range s.tables {
		if t.unpublished.Load() > 0 {
			return false
		}
	}
	return time.Since(time.Unix(0, s.lastApply.Load())) >= d
}
