package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SoakOptions configure the long run (concord bench --soak-events): concord run in
// a child process consumes a stream of the workload's events that this process
// produces in chunks, keeping at most Backlog events unconsumed, while the broker's
// logs are trimmed behind concord's committed offsets (DeleteRecords, which kfake
// implements by dropping whole segments), so that the run's length is bounded by
// time, not by the in-process broker's memory, and concord's own memory (its heap
// and RSS from its /metrics, with the broker in another process) is what is sampled.
type SoakOptions struct {
	Events  int    // events to stream (0: no soak)
	Binary  string // the concord executable run as `run --config FILE --http ADDR`
	Dir     string // receives its configuration, log and samples.csv (default: a temporary directory, removed)
	Chunk   int    // events produced at a time (default 20,000)
	Backlog int    // most events produced and not yet consumed (default 60,000)
	// Rate, when > 0, produces the events at this steady rate (events/s) instead of
	// as fast as concord consumes them: the heap is then compared at one load, not
	// at whatever throughput the machine gives at each moment.
	Rate float64
}

// SoakResult are the long run's figures. Heap is go_memstats_heap_inuse_bytes and
// RSS process_resident_memory_bytes of the child, sampled every second. "Warm" is the
// median of the samples taken while the events consumed were between 10% and 20% of
// the total, "end" the median of the samples of the last 10%, "max" the largest
// sample after warm-up (10%).
type SoakResult struct {
	SoakEvents          int     `json:"soak_events"`
	SoakSeconds         float64 `json:"soak_seconds"`
	SoakEventsPerSecond float64 `json:"soak_events_per_second"`
	SoakRate            float64 `json:"soak_rate,omitempty"` // the steady rate asked for, 0 for as fast as it goes
	SoakHeapWarmBytes   float64 `json:"soak_heap_warm_bytes"`
	SoakHeapEndBytes    float64 `json:"soak_heap_end_bytes"`
	SoakHeapMaxBytes    float64 `json:"soak_heap_max_bytes"`
	SoakHeapChangePct   float64 `json:"soak_heap_change_pct"`
	SoakRSSWarmBytes    float64 `json:"soak_rss_warm_bytes"`
	SoakRSSEndBytes     float64 `json:"soak_rss_end_bytes"`
	SoakRSSMaxBytes     float64 `json:"soak_rss_max_bytes"`
	// The heap goal (go_memstats_next_gc_bytes) is set at each GC from the heap
	// live after it: the steadiest view of the live heap (about half the goal at
	// GOGC 100), where heap in use swings with the GC cycle.
	SoakHeapGoalWarmBytes float64 `json:"soak_heap_goal_warm_bytes"`
	SoakHeapGoalEndBytes  float64 `json:"soak_heap_goal_end_bytes"`
	SoakHeapGoalMaxBytes  float64 `json:"soak_heap_goal_max_bytes"`
	SoakHeapGoalChangePct float64 `json:"soak_heap_goal_change_pct"`
	// SoakBenchHeapMaxBytes is this process's largest heap during the soak: the
	// in-process broker and the producer, set aside from concord's figures.
	SoakBenchHeapMaxBytes float64 `json:"soak_bench_heap_max_bytes"`
	SoakSamples           int     `json:"soak_samples"`
	SoakDir               string  `json:"soak_dir,omitempty"`
}

// maxFailedScrapes is how many scrapes of the child's /metrics in a row may fail (a
// loaded machine) before the soak gives up.
const maxFailedScrapes = 30

// stallLimit is how long the soak waits for concord run to process an event before it
// gives up.
const stallLimit = 2 * time.Minute

// soakSample is one scrape of the child's /metrics.
type soakSample struct {
	events          float64
	heap, goal, rss float64
}

func (s *SoakOptions) defaults() {
	if s.Chunk <= 0 {
		s.Chunk = 20_000
	}
	if s.Backlog <= 0 {
		s.Backlog = 60_000
	}
}

// soak runs the long run: its own broker, a flushed Redis (o.RedisAddr, else a
// miniredis of this process), concord run as a child.
func soak(ctx context.Context, o Options) (*SoakResult, error) {
	so := o.Soak
	so.defaults()
	if so.Binary == "" {
		return nil, errors.New("bench: the soak needs the concord binary to run")
	}
	// 1 MiB segments: kfake frees a log only by whole segments (100 MiB by default).
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(o.Partitions), crmTopic, billingTopic),
		kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(o.Partitions),
		kfake.BrokerConfigs(map[string]string{"log.segment.bytes": strconv.Itoa(1 << 20)}))
	if err != nil {
		return nil, fmt.Errorf("bench: starting kfake: %w", err)
	}
	defer kc.Close()
	broker := kc.ListenAddrs()[0]
	addr := o.RedisAddr
	if addr == "" {
		mr, err := miniredis.Run()
		if err != nil {
			return nil, err
		}
		defer mr.Close()
		addr = mr.Addr()
	} else {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		err := rdb.FlushDB(ctx).Err()
		_ = rdb.Close()
		if err != nil {
			return nil, fmt.Errorf("bench: redis at %s: %w", addr, err)
		}
	}
	dir := so.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "concord-soak-"); err != nil {
			return nil, err
		}
		defer func() { _ = os.RemoveAll(dir) }()
	}
	child, err := startChild(ctx, so.Binary, dir, broker, addr)
	if err != nil {
		return nil, err
	}
	defer child.stop()
	admin, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		return nil, err
	}
	defer admin.Close()

	wl := newWorkload(o.Records, o.Partitions, o.ConflictRatio, 2, func() int64 { return time.Now().UnixMilli() })
	w := &kafka.Writer{Addr: kafka.TCP(broker), Balancer: partitioned, BatchTimeout: 2 * time.Millisecond, BatchSize: 5000, RequiredAcks: kafka.RequireAll}
	defer func() { _ = w.Close() }()
	var samples []soakSample
	var last soakSample
	var benchHeap float64
	failed, advanced := 0, time.Now()
	csv, err := os.Create(filepath.Join(dir, "samples.csv"))
	if err != nil {
		return nil, err
	}
	defer func() { _ = csv.Close() }()
	_, _ = fmt.Fprintln(csv, "seconds,events,heap_inuse_bytes,next_gc_bytes,rss_bytes")
	start, nextSample, nextTrim := time.Now(), time.Now(), time.Now().Add(2*time.Second)
	produced := 0
	for {
		now := time.Now()
		if now.After(nextSample) {
			nextSample = now.Add(time.Second)
			s, err := child.sample(ctx)
			switch {
			case err == nil:
				failed = 0
				if s.events > last.events {
					advanced = now
				} else if now.Sub(advanced) > stallLimit {
					return nil, fmt.Errorf("bench: concord run processed no event for %s at %.0f events (log in %s)", stallLimit, s.events, child.log)
				}
				samples, last = append(samples, s), s
				benchHeap = max(benchHeap, heapObjects())
				_, _ = fmt.Fprintf(csv, "%.3f,%.0f,%.0f,%.0f,%.0f\n", time.Since(start).Seconds(), s.events, s.heap, s.goal, s.rss)
				o.Progress(PhaseSoak, int64(s.events), int64(so.Events), "events")
			case failed < maxFailedScrapes:
				failed++ // a scrape lost to a loaded machine: skip it
			default:
				return nil, fmt.Errorf("%w (%d scrapes in a row)", err, failed+1)
			}
		}
		if last.events >= float64(so.Events) {
			break
		}
		if now.After(nextTrim) {
			if err := trim(ctx, admin, "bench", []string{crmTopic, billingTopic}); err != nil {
				return nil, err
			}
			nextTrim = now.Add(2 * time.Second)
		}
		want := min(so.Chunk, so.Events-produced)
		if so.Rate > 0 { // a steady rate: what is due by now, in pieces of at least 1% of a second's
			want = min(want, int(so.Rate*time.Since(start).Seconds())-produced)
			if want < max(1, int(so.Rate/100)) {
				want = 0
			}
		}
		if want > 0 && float64(produced)-last.events < float64(so.Backlog) {
			chunk := generate(wl, want)
			if err := w.WriteMessages(ctx, chunk...); err != nil {
				return nil, fmt.Errorf("bench: producing the soak's events: %w", err)
			}
			produced += len(chunk)
			continue
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-child.exited:
			return nil, fmt.Errorf("bench: concord run exited during the soak (log in %s)", child.log)
		case <-time.After(100 * time.Millisecond):
		}
	}
	res := summarize(samples, float64(last.events))
	res.SoakEvents, res.SoakSeconds = int(last.events), time.Since(start).Seconds()
	res.SoakEventsPerSecond = last.events / res.SoakSeconds
	res.SoakBenchHeapMaxBytes, res.SoakRate = benchHeap, so.Rate
	if so.Dir != "" {
		res.SoakDir = so.Dir
	}
	return res, nil
}

// summarize computes the heap and RSS figures of the samples (see SoakResult).
func summarize(samples []soakSample, total float64) *SoakResult {
	var warmHeap, warmRSS, warmGoal, endHeap, endRSS, endGoal []float64
	res := &SoakResult{SoakSamples: len(samples)}
	for _, s := range samples {
		switch {
		case s.events < 0.1*total:
			continue
		case s.events < 0.2*total:
			warmHeap, warmRSS, warmGoal = append(warmHeap, s.heap), append(warmRSS, s.rss), append(warmGoal, s.goal)
		case s.events >= 0.9*total:
			endHeap, endRSS, endGoal = append(endHeap, s.heap), append(endRSS, s.rss), append(endGoal, s.goal)
		}
		res.SoakHeapMaxBytes, res.SoakRSSMaxBytes = max(res.SoakHeapMaxBytes, s.heap), max(res.SoakRSSMaxBytes, s.rss)
		res.SoakHeapGoalMaxBytes = max(res.SoakHeapGoalMaxBytes, s.goal)
	}
	res.SoakHeapWarmBytes, res.SoakRSSWarmBytes = median(warmHeap), median(warmRSS)
	res.SoakHeapEndBytes, res.SoakRSSEndBytes = median(endHeap), median(endRSS)
	res.SoakHeapGoalWarmBytes, res.SoakHeapGoalEndBytes = median(warmGoal), median(endGoal)
	if res.SoakHeapWarmBytes > 0 {
		res.SoakHeapChangePct = 100 * (res.SoakHeapEndBytes - res.SoakHeapWarmBytes) / res.SoakHeapWarmBytes
	}
	if res.SoakHeapGoalWarmBytes > 0 {
		res.SoakHeapGoalChangePct = 100 * (res.SoakHeapGoalEndBytes - res.SoakHeapGoalWarmBytes) / res.SoakHeapGoalWarmBytes
	}
	return res
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

// trim deletes the records of the group's input topics below its committed
// offsets, and every record of the other topics (concord's outputs: nobody reads
// them in the soak).
func trim(ctx context.Context, admin *kgo.Client, group string, inputs []string) error {
	meta := kmsg.NewPtrMetadataRequest()
	mresp, err := meta.RequestWith(ctx, admin)
	if err != nil {
		return fmt.Errorf("bench: metadata: %w", err)
	}
	committed, err := committedOffsets(ctx, admin, group)
	if err != nil {
		return err
	}
	del := kmsg.NewPtrDeleteRecordsRequest()
	del.TimeoutMillis = 5000
	for _, t := range mresp.Topics {
		if t.Topic == nil || strings.HasPrefix(*t.Topic, "__") {
			continue
		}
		dt := kmsg.NewDeleteRecordsRequestTopic()
		dt.Topic = *t.Topic
		for _, p := range t.Partitions {
			to := int64(-1) // to the high watermark
			if slices.Contains(inputs, *t.Topic) {
				off, ok := committed[*t.Topic][p.Partition]
				if !ok || off <= 0 {
					continue
				}
				to = off
			}
			dp := kmsg.NewDeleteRecordsRequestTopicPartition()
			dp.Partition, dp.Offset = p.Partition, to
			dt.Partitions = append(dt.Partitions, dp)
		}
		if len(dt.Partitions) > 0 {
			del.Topics = append(del.Topics, dt)
		}
	}
	if len(del.Topics) == 0 {
		return nil
	}
	dresp, err := del.RequestWith(ctx, admin)
	if err != nil {
		return fmt.Errorf("bench: deleting consumed records: %w", err)
	}
	for _, t := range dresp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("bench: deleting consumed records of %s/%d: %w", t.Topic, p.Partition, err)
			}
		}
	}
	return nil
}

// committedOffsets are the group's committed offsets by topic and partition. The
// request names the group both ways: v8 and later read Groups, earlier ones Group.
func committedOffsets(ctx context.Context, admin *kgo.Client, group string) (map[string]map[int32]int64, error) {
	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.Group = group
	g := kmsg.NewOffsetFetchRequestGroup()
	g.Group = group
	fetch.Groups = append(fetch.Groups, g)
	resp, err := fetch.RequestWith(ctx, admin)
	if err != nil {
		return nil, fmt.Errorf("bench: fetching the group's offsets: %w", err)
	}
	committed := map[string]map[int32]int64{}
	add := func(topic string, partition int32, offset int64) {
		if committed[topic] == nil {
			committed[topic] = map[int32]int64{}
		}
		committed[topic][partition] = offset
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			add(t.Topic, p.Partition, p.Offset)
		}
	}
	for _, rg := range resp.Groups {
		for _, t := range rg.Topics {
			for _, p := range t.Partitions {
				add(t.Topic, p.Partition, p.Offset)
			}
		}
	}
	return committed, nil
}

// child is `concord run` as a child process.
type child struct {
	cmd    *exec.Cmd
	http   string
	log    string
	exited chan struct{}
}

// startChild writes the bench's configuration to dir and starts concord run with
// it, its log in dir/concord.log, and returns once it is ready.
func startChild(ctx context.Context, bin, dir, broker, redisAddr string) (*child, error) {
	cfg := filepath.Join(dir, "concord.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, configYAML, broker, redisAddr), 0o600); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	httpAddr := l.Addr().String()
	_ = l.Close()
	c := &child{http: httpAddr, log: filepath.Join(dir, "concord.log"), exited: make(chan struct{})}
	logf, err := os.Create(c.log)
	if err != nil {
		return nil, err
	}
	c.cmd = exec.Command(bin, "run", "--config", cfg, "--http", httpAddr, "--log-level", "warn")
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	setParentDeathSignal(c.cmd)
	if err := c.cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("bench: starting %s run: %w", bin, err)
	}
	go func() {
		_ = c.cmd.Wait()
		_ = logf.Close()
		close(c.exited)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if body, status, err := c.get(ctx, "/readyz"); err == nil && status == http.StatusOK {
			return c, nil
		} else if time.Now().After(deadline) {
			c.stop()
			return nil, fmt.Errorf("bench: concord run was not ready within 60s (last: %d %q; log in %s): %w", status, body, c.log, err)
		}
		select {
		case <-c.exited:
			return nil, fmt.Errorf("bench: concord run exited before it was ready (log in %s)", c.log)
		case <-ctx.Done():
			c.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and waits, killing the child after 30 s.
func (c *child) stop() {
	select {
	case <-c.exited:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

var soakHTTP = &http.Client{Timeout: 10 * time.Second}

func (c *child) get(ctx context.Context, path string) (string, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.http+path, nil)
	if err != nil {
		return "", 0, err
	}
	resp, err := soakHTTP.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode, err
}

var (
	eventsSeries = regexp.MustCompile(`(?m)^concord_events_total(?:\{[^}]*\})? ([0-9.e+-]+)$`)
	heapSeries   = regexp.MustCompile(`(?m)^go_memstats_heap_inuse_bytes ([0-9.e+-]+)$`)
	goalSeries   = regexp.MustCompile(`(?m)^go_memstats_next_gc_bytes ([0-9.e+-]+)$`)
	rssSeries    = regexp.MustCompile(`(?m)^process_resident_memory_bytes ([0-9.e+-]+)$`)
)

// sample scrapes the child's events consumed, heap in use and RSS.
func (c *child) sample(ctx context.Context) (soakSample, error) {
	body, status, err := c.get(ctx, "/metrics")
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("status %d", status)
	}
	if err != nil {
		return soakSample{}, fmt.Errorf("bench: concord run's /metrics: %w (log in %s)", err, c.log)
	}
	var s soakSample
	for _, m := range eventsSeries.FindAllStringSubmatch(body, -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		s.events += v
	}
	if m := heapSeries.FindStringSubmatch(body); m != nil {
		s.heap, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := goalSeries.FindStringSubmatch(body); m != nil {
		s.goal, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := rssSeries.FindStringSubmatch(body); m != nil {
		s.rss, _ = strconv.ParseFloat(m[1], 64)
	}
	return s, nil
}

// heapObjects is this process's heap in live and unswept objects.
func heapObjects() float64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return float64(s[0].Value.Uint64())
}
