package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"

	"github.com/concord-sync/concord/dlq"
	"github.com/concord-sync/concord/pipeline"
	"github.com/concord-sync/concord/pipeline/state"
	"github.com/concord-sync/concord/resolver"
)

// Options configure a benchmark run.
type Options struct {
	Events        int     // change events to process (default 100,000)
	Records       int     // distinct records (default 10,000)
	ConflictRatio float64 // share of updates that meet a concurrent edit (default 0.01)
	Partitions    int     // input partitions (default 4)
	RedisAddr     string  // a real Redis; "" for miniredis
	Latency       time.Duration
	// LatencyRate is the steady rate of the latency phase in events/s; 0 for a
	// quarter of the measured throughput up to 2,000 events/s, below 0 for that
	// share of the measured throughput (-0.5: half of it).
	LatencyRate float64
	// MemoryRecords, when > 0, loads this many records of the run's states into the
	// flushed Redis after the run and measures Redis's memory per record (a real
	// Redis only).
	MemoryRecords int
	// Soak, when its Events > 0, runs the long run of soak.go after the others.
	Soak     SoakOptions
	Log      *zap.Logger
	Progress Progress // nil for none
}

// Result is what concord bench reports (DESIGN.md section 9).
type Result struct {
	Events                     int     `json:"events"`
	Seconds                    float64 `json:"seconds"`
	EventsPerSecond            float64 `json:"events_per_second"`
	PassthroughEventsPerSecond float64 `json:"passthrough_events_per_second"`
	Ratio                      float64 `json:"ratio"`
	LatencyRate                float64 `json:"latency_events_per_second"` // the steady rate the latency was measured at
	P50Ms                      float64 `json:"p50_ms"`
	P99Ms                      float64 `json:"p99_ms"`
	// The latency phase's batches, by stage (concord_batch_stage_seconds): the p99
	// of one batch's time in the stage (at its histogram bucket's upper bound) and
	// the mean.
	DecideP99Ms   float64 `json:"batch_decide_p99_ms"`
	DecideMeanMs  float64 `json:"batch_decide_mean_ms"`
	WriteP99Ms    float64 `json:"batch_write_p99_ms"`
	WriteMeanMs   float64 `json:"batch_write_mean_ms"`
	ProduceP99Ms  float64 `json:"batch_produce_p99_ms"`
	ProduceMeanMs float64 `json:"batch_produce_mean_ms"`
	// StateBytesPerRecord is Redis's own figure: the MEMORY USAGE of state buckets
	// holding at least 2,000 records, per record (0 on miniredis, which has none);
	// StateEncodedBytesPerRecord the mean length of their encoded states;
	// StateKeysSampled how many records (states) that is.
	StateBytesPerRecord        float64 `json:"state_bytes_per_record"`
	StateEncodedBytesPerRecord float64 `json:"state_encoded_bytes_per_record"`
	StateKeysSampled           int     `json:"state_keys_sampled"`
	ResolverEventsPerSecond    float64 `json:"resolver_events_per_second"`
	ResolverAllocsPerEvent     float64 `json:"resolver_allocs_per_event"`
	// ProcessAllocsPerEvent is every allocation of this process during the
	// throughput phase per event: the pipeline's, and the broker's, the sink's and
	// the readers' fetch goroutines'. An upper bound of the pipeline's own.
	ProcessAllocsPerEvent float64 `json:"process_allocs_per_event"`
	MaxRSSBytes           int64   `json:"max_rss_bytes"`
	Conflicts             int64   `json:"conflicts"`
	Batches               int64   `json:"batches"`       // batches of the throughput phase
	BatchMs               float64 `json:"mean_batch_ms"` // their mean duration
	Redis                 string  `json:"redis"`
	Partitions            int     `json:"partitions"`
	Records               int     `json:"records"`

	// --memory-records: used_memory's growth per record loaded, and the MEMORY USAGE
	// per record of buckets holding a sample of MemoryKeysSampled records.
	MemoryRecords             int     `json:"memory_records,omitempty"`
	MemoryUsedBytesPerRecord  float64 `json:"memory_used_bytes_per_record,omitempty"`
	MemoryUsageBytesPerRecord float64 `json:"memory_usage_bytes_per_record,omitempty"`
	MemoryKeysSampled         int     `json:"memory_keys_sampled,omitempty"`
	MemoryLoadSeconds         float64 `json:"memory_load_seconds,omitempty"`

	*SoakResult

	// Notes say which figures were not measured and why.
	Notes      []string    `json:"notes,omitempty"`
	Comparison *Comparison `json:"comparison,omitempty"`
}

func (o *Options) defaults() {
	if o.Events <= 0 {
		o.Events = 100_000
	}
	if o.Records <= 0 {
		o.Records = 10_000
	}
	if o.ConflictRatio < 0 {
		o.ConflictRatio = 0
	}
	if o.Partitions <= 0 {
		o.Partitions = 4
	}
	if o.Latency <= 0 {
		o.Latency = 5 * time.Second
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Progress == nil {
		o.Progress = func(string, int64, int64, string) {}
	}
}

// Run runs the benchmark: the pipeline over a backlog of generated events, the plain
// consume-and-produce pass over the same events, the latency at a steady rate, the
// state size and the resolver alone; then, with Soak.Events, the soak (after the
// first phases' broker is closed, so this process holds only the soak's).
func Run(ctx context.Context, o Options) (*Result, error) {
	o.defaults()
	res, err := measure(ctx, o)
	if err != nil {
		return nil, err
	}
	if o.Soak.Events > 0 {
		if res.SoakResult, err = soak(ctx, o); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// measure runs every phase but the soak.
func measure(ctx context.Context, o Options) (*Result, error) {
	topics := []string{crmTopic, billingTopic, billingApplyTopic, "pass.crm", "pass.billing", "pass.out"}
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(o.Partitions), topics...),
		kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(o.Partitions))
	if err != nil {
		return nil, fmt.Errorf("bench: starting kfake: %w", err)
	}
	defer kc.Close()
	res := &Result{Redis: o.RedisAddr, Partitions: o.Partitions, Records: o.Records}
	addr := o.RedisAddr
	if addr == "" {
		mr, err := miniredis.Run()
		if err != nil {
			return nil, fmt.Errorf("bench: starting miniredis: %w", err)
		}
		defer mr.Close()
		addr, res.Redis = mr.Addr(), "miniredis"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer func() { _ = rdb.Close() }()
	if err := rdb.FlushDB(ctx).Err(); err != nil && o.RedisAddr != "" {
		return nil, fmt.Errorf("bench: redis at %s: %w", addr, err)
	}
	broker := kc.ListenAddrs()[0]

	// The backlog is the CRM's updates; billing's echoes and edits come from the sink
	// as concord's applies arrive, half of the events.
	wl := newWorkload(o.Records, o.Partitions, 0, 1, func() int64 { return time.Now().UnixMilli() })
	wl.sinkEchoes = true
	msgs := generate(wl, (o.Events+1)/2)
	if err := produce(ctx, broker, msgs, nil); err != nil {
		return nil, err
	}
	if err := produce(ctx, broker, msgs, map[string]string{crmTopic: "pass.crm", billingTopic: "pass.billing"}); err != nil {
		return nil, err
	}

	p, err := newPipeline(broker, addr, rdb, o)
	if err != nil {
		return nil, err
	}
	sk, err := newSink(broker, o.Partitions, o.ConflictRatio, 1)
	if err != nil {
		return nil, err
	}
	sinkCtx, stopSink := context.WithCancel(ctx)
	defer func() { stopSink(); sk.close() }()
	sk.start(sinkCtx)
	p.sink, p.broker = sk, broker
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	events, secs, err := p.throughput(ctx, len(msgs), o.Progress)
	if err != nil {
		return nil, err
	}
	runtime.ReadMemStats(&after)
	res.ProcessAllocsPerEvent = float64(after.Mallocs-before.Mallocs) / float64(events)
	res.Events = events
	res.Seconds, res.EventsPerSecond = secs, float64(events)/secs
	res.Conflicts = int64(sumOf(p.reg, "concord_conflicts_total"))
	res.Batches, res.BatchMs = histogramOf(p.reg, "concord_batch_seconds")

	pass, err := passthrough(ctx, broker, o.Partitions, len(msgs), o.Progress)
	if err != nil {
		return nil, err
	}
	res.PassthroughEventsPerSecond = float64(len(msgs)) / pass // of the backlog it copies
	res.Ratio = res.EventsPerSecond / res.PassthroughEventsPerSecond

	switch {
	case o.LatencyRate > 0:
		res.LatencyRate = o.LatencyRate
	case o.LatencyRate < 0:
		res.LatencyRate = -o.LatencyRate * res.EventsPerSecond
	default:
		res.LatencyRate = min(2000, res.EventsPerSecond/4)
	}
	stagesBefore := stageHistograms(p.reg)
	res.P50Ms, res.P99Ms, err = p.latency(ctx, broker, wl, res.LatencyRate, o.Latency, o.Progress)
	if err != nil {
		return nil, err
	}
	stagesAfter := stageHistograms(p.reg)
	res.DecideP99Ms, res.DecideMeanMs = stagesAfter["decide"].since(stagesBefore["decide"])
	res.WriteP99Ms, res.WriteMeanMs = stagesAfter["write"].since(stagesBefore["write"])
	res.ProduceP99Ms, res.ProduceMeanMs = stagesAfter["produce"].since(stagesBefore["produce"])
	if err := p.stop(); err != nil {
		return nil, err
	}
	if err := measureMemory(ctx, rdb, o, res); err != nil {
		return nil, err
	}
	hot := whileTicking(o.Progress, PhaseResolver, func() testing.BenchmarkResult { return testing.Benchmark(HotPath) })
	res.ResolverEventsPerSecond = 2 * float64(hot.N) / hot.T.Seconds()
	res.ResolverAllocsPerEvent = float64(hot.AllocsPerOp()) / 2
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		res.MaxRSSBytes = ru.Maxrss * 1024 // kilobytes on Linux
	}
	return res, nil
}

// measureMemory fills the state figures from the run's states and, with
// MemoryRecords, loads that many records and measures Redis's memory per record.
func measureMemory(ctx context.Context, rdb *redis.Client, o Options, res *Result) error {
	realRedis := o.RedisAddr != ""
	o.Progress(PhaseMemory, 0, 1, "buckets")
	s, err := sampleState(ctx, rdb, state.NewRedis(rdb, "bench"), realRedis, o.Progress)
	if err != nil {
		return err
	}
	res.StateBytesPerRecord, res.StateEncodedBytesPerRecord, res.StateKeysSampled = s.usage, s.encoded, s.keys
	if !realRedis {
		res.Notes = append(res.Notes, "state_bytes_per_record (Redis's MEMORY USAGE) is not available on miniredis: give --redis")
		if o.MemoryRecords > 0 {
			res.Notes = append(res.Notes, "--memory-records needs a real Redis (miniredis has no used_memory or MEMORY USAGE): give --redis")
		}
		return nil
	}
	if o.MemoryRecords <= 0 {
		return nil
	}
	m, err := loadRecords(ctx, rdb, s.states, o.MemoryRecords, o.Partitions, o.Progress)
	if err != nil {
		return err
	}
	res.MemoryRecords, res.MemoryUsedBytesPerRecord, res.MemoryUsageBytesPerRecord = o.MemoryRecords, m.usedPerRecord, m.usagePerRecord
	res.MemoryKeysSampled, res.MemoryLoadSeconds = m.keys, m.seconds
	return nil
}

func generate(wl *workload, n int) []kafka.Message {
	var msgs []kafka.Message
	for len(msgs) < n {
		msgs = append(msgs, wl.next()...)
	}
	return msgs
}

// partitioned keeps each message's own partition (the workload routes by record id).
var partitioned = kafka.BalancerFunc(func(m kafka.Message, _ ...int) int { return m.Partition })

// produce writes the messages, each to its own partition, to their topics or to the
// topics rename gives instead.
func produce(ctx context.Context, broker string, msgs []kafka.Message, rename map[string]string) error {
	w := &kafka.Writer{Addr: kafka.TCP(broker), Balancer: partitioned, BatchTimeout: 2 * time.Millisecond, BatchSize: 5000, RequiredAcks: kafka.RequireAll}
	defer func() { _ = w.Close() }()
	out := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		if t, ok := rename[m.Topic]; ok {
			m.Topic = t
		}
		out[i] = m
	}
	for chunk := range slices.Chunk(out, 10_000) {
		if err := w.WriteMessages(ctx, chunk...); err != nil {
			return fmt.Errorf("bench: producing the workload: %w", err)
		}
	}
	return nil
}

// bpipeline is a processor under measurement.
type bpipeline struct {
	proc      *pipeline.Processor
	reg       *prometheus.Registry
	cancel    context.CancelFunc
	done      chan error
	recording atomic.Bool
	mu        sync.Mutex
	latencies []time.Duration
	sink      *sink // billing's sink, writing the echoes
	broker    string
}

func newPipeline(broker, redisAddr string, rdb *redis.Client, o Options) (*bpipeline, error) {
	cfg, err := Config(broker, redisAddr)
	if err != nil {
		return nil, err
	}
	r, err := resolver.New(cfg)
	if err != nil {
		return nil, err
	}
	b := &bpipeline{reg: prometheus.NewRegistry(), done: make(chan error, 1)}
	b.proc, err = pipeline.New(pipeline.Options{
		Config: cfg, Rules: pipeline.StaticRules{R: r}, Store: state.NewRedis(rdb, cfg.Name),
		DLQ: dlq.NewStore(rdb, cfg.Name), Logger: o.Log, Metrics: pipeline.NewMetrics(b.reg),
		OnLatency: func(d time.Duration) {
			if b.recording.Load() {
				b.mu.Lock()
				b.latencies = append(b.latencies, d)
				b.mu.Unlock()
			}
		},
	})
	return b, err
}

// throughput starts the processor on the backlog and returns how many events it
// processed (the backlog and the sink's echoes and edits) and how long it took, from
// holding its partitions to having processed every event and the sink having
// nothing left to write.
func (b *bpipeline) throughput(ctx context.Context, backlog int, progress Progress) (int, float64, error) {
	runCtx, cancel := context.WithCancel(ctx)
	b.cancel = cancel
	go func() { b.done <- b.proc.Run(runCtx) }()
	if err := waitUntil(ctx, b.done, func() bool { return b.proc.Ready() }); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	var n float64
	err := waitUntil(ctx, b.done, func() bool {
		n = sumOf(b.reg, "concord_events_total")
		want := float64(backlog) + float64(b.sink.echoed.Load())
		progress(PhasePipeline, int64(n), int64(2*backlog), "events")
		return n >= want && b.settled(ctx, backlog)
	})
	return int(n), time.Since(start).Seconds(), err
}

// settled reports whether the sink has nothing left to write and the pipeline has
// processed all it wrote, on top of before events.
func (b *bpipeline) settled(ctx context.Context, before int) bool {
	if err := b.sink.err(); err != nil {
		return false
	}
	// The cheap test first: the sink's asks the broker.
	return sumOf(b.reg, "concord_events_total") >= float64(before)+float64(b.sink.echoed.Load()) && b.sink.settled(ctx, b.broker)
}

// latency produces live events at a steady rate for d and returns the p50 and p99
// of their consume-to-produce latency, in milliseconds.
func (b *bpipeline) latency(ctx context.Context, broker string, wl *workload, rate float64, d time.Duration, progress Progress) (float64, float64, error) {
	w := &kafka.Writer{Addr: kafka.TCP(broker), Balancer: partitioned, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer func() { _ = w.Close() }()
	b.recording.Store(true)
	before := sumOf(b.reg, "concord_events_total")
	sent := 0
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for time.Since(start) < d {
		<-tick.C
		progress(PhaseLatency, time.Since(start).Milliseconds(), d.Milliseconds(), "ms")
		due := int(rate/2*time.Since(start).Seconds()) - sent // the sink adds an echo to each
		var msgs []kafka.Message
		for len(msgs) < due {
			msgs = append(msgs, wl.next()...)
		}
		if len(msgs) > 0 {
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				return 0, 0, fmt.Errorf("bench: producing live events: %w", err)
			}
			sent += len(msgs)
		}
	}
	echoed := b.sink.echoed.Load()
	if err := waitUntil(ctx, b.done, func() bool {
		return b.settled(ctx, int(before)+sent-int(echoed))
	}); err != nil {
		return 0, 0, err
	}
	b.recording.Store(false)
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.latencies) == 0 {
		return 0, 0, errors.New("bench: no latency measured")
	}
	slices.Sort(b.latencies)
	at := func(q float64) float64 {
		return float64(b.latencies[int(q*float64(len(b.latencies)-1))].Microseconds()) / 1000
	}
	return at(0.50), at(0.99), nil
}

func (b *bpipeline) stop() error {
	b.cancel()
	return <-b.done
}

// whileTicking runs fn, reporting the phase every 100 ms until it returns (for a
// phase that cannot tell how far it is).
func whileTicking[T any](progress Progress, phase string, fn func() T) T {
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			progress(phase, 0, 0, "")
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	defer func() { close(stop); <-stopped }()
	return fn()
}

func waitUntil(ctx context.Context, done <-chan error, cond func() bool) error {
	for !cond() {
		select {
		case err := <-done:
			return fmt.Errorf("bench: the processor stopped: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// sumOf adds up every series of a counter in the registry.
func sumOf(reg *prometheus.Registry, name string) float64 {
	families, err := reg.Gather()
	if err != nil {
		return 0
	}
	var total float64
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// histogramOf returns a histogram's count and mean in milliseconds.
// stageHistogram is a snapshot of one stage's concord_batch_stage_seconds.
type stageHistogram struct {
	count  uint64
	sum    float64
	bounds []float64 // upper bounds, seconds
	cum    []uint64  // cumulative counts per bound
}

func stageHistograms(reg *prometheus.Registry) map[string]stageHistogram {
	out := map[string]stageHistogram{}
	families, err := reg.Gather()
	if err != nil {
		return out
	}
	for _, f := range families {
		if f.GetName() != "concord_batch_stage_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			var stage string
			for _, l := range m.GetLabel() {
				if l.GetName() == "stage" {
					stage = l.GetValue()
				}
			}
			h := m.GetHistogram()
			sh := stageHistogram{count: h.GetSampleCount(), sum: h.GetSampleSum()}
			for _, b := range h.GetBucket() {
				sh.bounds = append(sh.bounds, b.GetUpperBound())
				sh.cum = append(sh.cum, b.GetCumulativeCount())
			}
			out[stage] = sh
		}
	}
	return out
}

// since is the p99 and the mean, in milliseconds, of the observations made after
// before: the p99 as the upper bound of the bucket it falls in (the last bucket's
// bound when it is beyond them).
func (h stageHistogram) since(before stageHistogram) (p99, mean float64) {
	n := h.count - before.count
	if n == 0 {
		return 0, 0
	}
	mean = 1000 * (h.sum - before.sum) / float64(n)
	want := uint64(math.Ceil(0.99 * float64(n)))
	for i, bound := range h.bounds {
		c := h.cum[i]
		if i < len(before.cum) {
			c -= before.cum[i]
		}
		p99 = 1000 * bound
		if c >= want {
			break
		}
	}
	return p99, mean
}

func histogramOf(reg *prometheus.Registry, name string) (int64, float64) {
	families, err := reg.Gather()
	if err != nil {
		return 0, 0
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			h := f.GetMetric()[0].GetHistogram()
			if n := h.GetSampleCount(); n > 0 {
				return int64(n), 1000 * h.GetSampleSum() / float64(n)
			}
		}
	}
	return 0, 0
}
