package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/concord-sync/concord/codecs"
	"github.com/concord-sync/concord/config"
	"github.com/concord-sync/concord/dlq"
	"github.com/concord-sync/concord/pipeline/state"
)

// Processor is one concord instance: a member of the consumer group that resolves the
// partitions assigned to it. Several processors with the same configuration split the
// partitions between them and take over from each other.
type Processor struct {
	opts     Options
	cfg      *config.Config
	log      *zap.Logger
	inputs   []string          // input topics (the systems' and the review topic), sorted
	systems  map[string]string // input topic -> system (the review topic maps to "")
	producer *Producer
	client   *kafka.Client
	notes    *notesWithStates // nil: a batch's DLQ note goes in a round trip of its own

	clocks *clocks
	types  columnTypes // learned from the systems' own events
	health *health
	// partitionCount is the input topics' partition count once Run has checked them.
	partitionCount atomic.Int32
	unmapped       sync.Map       // "system\x00field" of unmapped fields already logged
	unmappedCount  map[string]int // system -> distinct unmapped fields seen (under mu)
	mu             sync.Mutex
	partitions     []int // partitions this instance works on now
}

// New checks the options and returns a processor; Run starts it.
func New(opts Options) (*Processor, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	p := &Processor{opts: opts, cfg: opts.Config, log: opts.Logger, systems: map[string]string{}, clocks: newClocks(opts.Metrics), health: newHealth()}
	for name, s := range p.cfg.Systems {
		p.inputs = append(p.inputs, s.Topic)
		p.systems[s.Topic] = name
	}
	p.inputs = append(p.inputs, p.ReviewTopic())
	slices.Sort(p.inputs)
	opts.Metrics.initialize(p.cfg.SystemNames())
	// 0 until the first probe answers.
	opts.Metrics.DependencyUp.WithLabelValues("kafka")
	if _, ok := opts.Store.(Pinger); ok {
		opts.Metrics.DependencyUp.WithLabelValues("redis")
	}
	p.notes = newNotesWithStates(opts.Store, opts.DLQ)
	return p, nil
}

// notesWithStates sends a batch's DLQ note (audit entries and counts) ahead of its
// states' write in the same round trip, when the DLQ and the states are kept by the
// same Redis client (dlq.Store and state.Redis; see state.Redis.PutAfter for why the
// note still lands before the states).
type notesWithStates struct {
	states statesAfter
	dlq    noteQueuer
}

// statesAfter is state.Redis, noteQueuer dlq.Store.
type statesAfter interface {
	PutAfter(ctx context.Context, f state.Fence, writes []state.Write, box *state.Outbox, before func(redis.Pipeliner) error) (beforeErr, err error)
	Client() redis.UniversalClient
}

type noteQueuer interface {
	QueueNote(ctx context.Context, pipe redis.Pipeliner, b dlq.Batch) error
	Client() redis.UniversalClient
}

func newNotesWithStates(store state.Store, rec DLQRecorder) *notesWithStates {
	states, ok := store.(statesAfter)
	if !ok {
		return nil
	}
	notes, ok := rec.(noteQueuer)
	if !ok || notes.Client() != states.Client() {
		return nil
	}
	return &notesWithStates{states: states, dlq: notes}
}

// ReviewTopic is where reviewers' decisions reach the pipeline: co-partitioned with
// the input topics, each decision in its record's partition.
func (p *Processor) ReviewTopic() string { return ReviewTopic(p.cfg) }

// ReviewTopic is the review topic of a configuration.
func ReviewTopic(cfg *config.Config) string { return cfg.Name + ".review" }

// AuditTopic is where the audit trail is kept for long-term retention.
func AuditTopic(cfg *config.Config) string { return cfg.Name + ".audit" }

func (p *Processor) systemTopics() []string {
	return slices.DeleteFunc(slices.Clone(p.inputs), func(t string) bool { return t == p.ReviewTopic() })
}

// Ready reports whether the processor holds its assignment, Redis and Kafka answer,
// and no batch is failing.
func (p *Processor) Ready() bool {
	ok, _ := p.health.readiness()
	return ok
}

// Readiness is Ready with the reasons when not ready.
func (p *Processor) Readiness() (ready bool, why string) { return p.health.readiness() }

// Partitions returns the partition numbers this instance works on now.
func (p *Processor) Partitions() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.partitions)
}

// Run consumes until ctx is cancelled, then finishes the batches in progress, commits
// their offsets and leaves the group. It returns an error when it cannot start (topics
// missing or not co-partitioned, brokers unreachable).
func (p *Processor) Run(ctx context.Context) error {
	brokers := p.cfg.Kafka.Brokers
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	if p.opts.Transport != nil {
		client.Transport = p.opts.Transport
	}
	p.client = client
	systemTopics := p.systemTopics()
	counts, err := partitionCounts(ctx, client, systemTopics)
	if err != nil {
		return err
	}
	n, err := checkCopartitioned(counts, systemTopics)
	if err != nil {
		return err
	}
	p.partitionCount.Store(int32(n))
	if err := ensureTopics(ctx, client, append(p.outputTopics(), p.ReviewTopic()), n); err != nil {
		return err
	}
	if counts, err = partitionCounts(ctx, client, p.inputs); err != nil {
		return err
	}
	if _, err := checkCopartitioned(counts, p.inputs); err != nil {
		return fmt.Errorf("%w (the review topic %s must have as many partitions as the input topics)", err, p.ReviewTopic())
	}
	if ts, ok := p.opts.Store.(TypeStore); ok {
		stored, err := ts.LoadColumnTypes(ctx)
		if err != nil {
			return err
		}
		if err := p.types.load(stored); err != nil {
			return err
		}
	}
	probeCtx, stopProbe := context.WithCancel(ctx)
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		p.probe(probeCtx, p.opts.ProbeInterval)
	}()
	defer func() {
		stopProbe()
		<-probeDone
	}()
	p.producer, err = NewProducer(brokers, p.cfg.Kafka.MaxMessageBytes, p.opts.Producer, p.log)
	if err != nil {
		return err
	}
	defer p.producer.Close()
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                p.cfg.Name,
		Brokers:           brokers,
		Topics:            p.inputs,
		GroupBalancers:    []kafka.GroupBalancer{copartitionBalancer{}},
		StartOffset:       kafka.FirstOffset,
		SessionTimeout:    p.opts.SessionTimeout,
		HeartbeatInterval: p.opts.HeartbeatInterval,
		RebalanceTimeout:  p.opts.RebalanceTimeout,
		JoinGroupBackoff:  p.opts.JoinGroupBackoff,
		ErrorLogger:       KafkaLogger(p.log, "consumer group"),
		Dialer:            p.opts.Dialer,
	})
	if err != nil {
		return fmt.Errorf("pipeline: joining consumer group %s: %w", p.cfg.Name, err)
	}
	p.log.Info("consumer group started", zap.String("group", p.cfg.Name), zap.Strings("topics", p.inputs), zap.Int("partitions", n))
	outboxDone := make(chan struct{})
	go func() {
		defer close(outboxDone)
		p.drainOutbox(ctx)
	}()
	err = p.consume(ctx, cg)
	<-outboxDone
	p.health.setJoined(false)
	if cerr := cg.Close(); cerr != nil && !errors.Is(cerr, kafka.ErrGroupClosed) {
		p.log.Warn("leaving the consumer group", zap.Error(cerr))
	}
	p.log.Info("consumer group left", zap.String("group", p.cfg.Name))
	return err
}

// consume runs one generation after another until ctx is done.
func (p *Processor) consume(ctx context.Context, cg *kafka.ConsumerGroup) error {
	for {
		gen, err := cg.Next(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, kafka.ErrGroupClosed):
			return nil
		case err != nil:
			p.log.Warn("joining the next generation", zap.Error(err))
			continue
		}
		parts := p.assigned(gen)
		p.mu.Lock()
		p.partitions = parts
		p.mu.Unlock()
		p.log.Info("generation joined", zap.Int32("generation", gen.ID), zap.Ints("partitions", parts))
		for _, part := range parts {
			offsets := map[string]int64{}
			for topic, as := range gen.Assignments {
				for _, a := range as {
					if a.ID == part {
						offsets[topic] = a.Offset
					}
				}
			}
			w := newWorker(p, gen, part, offsets)
			w.cache.max = (p.opts.StateCache + len(parts) - 1) / len(parts) // the process's share
			gen.Start(func(gctx context.Context) { w.run(ctx, gctx) })
		}
		p.health.setJoined(true)
	}
}

// assigned returns the partition numbers assigned for every input topic. A partition
// assigned for some topics only (a balancer that does not co-partition) is logged
// and left out: working on it would split a record's history.
func (p *Processor) assigned(gen *kafka.Generation) []int {
	count := map[int]int{}
	for _, as := range gen.Assignments {
		for _, a := range as {
			count[a.ID]++
		}
	}
	var parts []int
	for part, c := range count {
		if c == len(p.inputs) {
			parts = append(parts, part)
		} else {
			p.log.Error("partition not assigned for every input topic; skipped", zap.Int("partition", part))
		}
	}
	slices.Sort(parts)
	return parts
}

// firstOffset is the first offset of a topic's partition.
func (p *Processor) firstOffset(ctx context.Context, topic string, partition int) (int64, error) {
	res, err := p.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{
		Topics: map[string][]kafka.OffsetRequest{topic: {kafka.FirstOffsetOf(partition)}},
	})
	if err != nil {
		return 0, err
	}
	for _, po := range res.Topics[topic] {
		if po.Partition == partition {
			if po.Error != nil {
				return 0, po.Error
			}
			return po.FirstOffset, nil
		}
	}
	return 0, fmt.Errorf("pipeline: no offsets listed for %s/%d", topic, partition)
}

func (p *Processor) outputTopics() []string {
	topics := []string{p.poisonTopic(), AuditTopic(p.cfg)}
	for _, name := range p.cfg.SystemNames() {
		topics = append(topics, p.cfg.Systems[name].Apply.Topic)
	}
	return topics
}

func (p *Processor) poisonTopic() string { return PoisonTopic(p.cfg) }

// PoisonTopic is where messages that cannot be decoded go.
func PoisonTopic(cfg *config.Config) string { return cfg.Name + ".poison" }

// decoders returns one decoder per system (decoders are not safe for concurrent use:
// each worker has its own).
func (p *Processor) decoders() map[string]*codecs.Decoder {
	decs := make(map[string]*codecs.Decoder, len(p.cfg.Systems))
	for name, s := range p.cfg.Systems {
		decs[name] = codecs.NewDecoder(codecs.Options{Unwrapped: s.Envelope == config.EnvelopeUnwrapped, MaxMessageBytes: p.cfg.Kafka.MaxMessageBytes})
	}
	return decs
}

// maxUnmappedFields bounds, per system, the unmapped fields logged and labelled one
// by one: a producer sending ever-new column names must not grow the log and the
// metric series without bound. Further ones count under field "_other".
const maxUnmappedFields = 100

// otherUnmapped is the field label of unmapped fields past maxUnmappedFields.
const otherUnmapped = "_other"

// noteUnmapped logs a field that no authority entry covers, once per system and field,
// for the first maxUnmappedFields fields of a system.
func (p *Processor) noteUnmapped(system, field string) {
	key := system + "\x00" + field
	if _, seen := p.unmapped.Load(key); seen {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, seen := p.unmapped.Load(key); seen {
		return
	}
	if p.unmappedCount == nil {
		p.unmappedCount = map[string]int{}
	}
	switch n := p.unmappedCount[system]; {
	case n < maxUnmappedFields:
		p.unmapped.Store(key, true)
		p.log.Warn("changes to a field in no authority entry are skipped; add it to authority or set resolution.unmapped_fields: shared",
			zap.String("system", system), zap.String("field", field))
	case n == maxUnmappedFields:
		p.log.Warn("more unmapped fields than are logged one by one; the rest count as field _other",
			zap.String("system", system), zap.Int("logged", maxUnmappedFields))
	}
	p.unmappedCount[system]++
}

// unmappedLabel is the field label of an unmapped field's counter.
func (p *Processor) unmappedLabel(system, field string) string {
	if _, ok := p.unmapped.Load(system + "\x00" + field); ok {
		return field
	}
	return otherUnmapped
}
