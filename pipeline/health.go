package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// Pinger is a store that can tell whether its server answers (state.Redis).
type Pinger interface {
	Ping(ctx context.Context) error
}

// health is what readiness knows: whether the processor holds its assignment,
// whether Redis and Kafka answered the last probe, and how many partitions have a
// batch failing right now. The probes find an outage while the input is idle; the
// batches find it first under load.
type health struct {
	mu      sync.Mutex
	joined  bool
	probes  map[string]error // dependency -> last probe's error
	failing map[int]error    // partition -> the error its batch is retrying
}

func newHealth() *health {
	return &health{probes: map[string]error{}, failing: map[int]error{}}
}

func (h *health) setJoined(v bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.joined = v
}

func (h *health) probed(dependency string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.probes[dependency] = err
}

// batch notes a partition's batch failing (err) or done (nil).
func (h *health) batch(partition int, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		delete(h.failing, partition)
	} else {
		h.failing[partition] = err
	}
}

// readiness says whether the processor is ready, and if not, why.
func (h *health) readiness() (bool, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var why []string
	if !h.joined {
		why = append(why, "not holding a consumer-group assignment yet")
	}
	for _, dep := range []string{"redis", "kafka"} {
		if err := h.probes[dep]; err != nil {
			why = append(why, fmt.Sprintf("%s does not answer: %v", dep, err))
		}
	}
	for part, err := range h.failing {
		why = append(why, fmt.Sprintf("partition %d: batch failing: %v", part, err))
		break // one is enough to say why; the log has them all
	}
	if len(h.failing) > 1 {
		why = append(why, fmt.Sprintf("(%d partitions with failing batches)", len(h.failing)))
	}
	return len(why) == 0, strings.Join(why, "; ")
}

// probeTimeout bounds one probe of a dependency.
const probeTimeout = 2 * time.Second

// probe checks Redis and Kafka every interval until ctx is done, for readiness and
// concord_dependency_up.
func (p *Processor) probe(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		p.probeOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (p *Processor) probeOnce(ctx context.Context) {
	if pinger, ok := p.opts.Store.(Pinger); ok {
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		p.noteProbe(ctx, "redis", pinger.Ping(pctx))
		cancel()
	}
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	p.noteProbe(ctx, "kafka", p.pingKafka(pctx))
}

func (p *Processor) noteProbe(ctx context.Context, dependency string, err error) {
	if ctx.Err() != nil {
		return // stopping: not an outage
	}
	up := 1.0
	if err != nil {
		up = 0
	}
	p.opts.Metrics.DependencyUp.WithLabelValues(dependency).Set(up)
	p.health.probed(dependency, err)
}

// pingKafka asks a broker for the input topics' metadata.
func (p *Processor) pingKafka(ctx context.Context) error {
	res, err := p.client.Metadata(ctx, &kafka.MetadataRequest{Topics: p.inputs})
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range res.Topics {
		if t.Error != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.Name, t.Error))
		}
	}
	return errors.Join(errs...)
}

// KafkaLogger carries a kafka-go client's error log (a broker unreachable, a request
// refused) into log at warn level, so that an outage is told in the process's own
// structured log, not on bare stderr.
func KafkaLogger(log *zap.Logger, client string) kafka.Logger {
	return kafka.LoggerFunc(func(msg string, args ...any) {
		log.Warn("kafka-go: "+fmt.Sprintf(msg, args...), zap.String("client", client))
	})
}
