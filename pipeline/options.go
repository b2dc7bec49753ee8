package pipeline

import (
	"context"
	"errors"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/concord-sync/concord/config"
	"github.com/concord-sync/concord/dlq"
	"github.com/concord-sync/concord/pipeline/state"
	"github.com/concord-sync/concord/resolver"
)

// DLQRecorder records the resolver's DLQ decisions and notes each batch's automatic
// decisions for the audit trail and pattern detection. Recording a Change twice must
// have the effect of recording it once (batches are reprocessed after a crash).
// Outbox and Ack hold the review decisions and audit entries waiting to be produced.
type DLQRecorder interface {
	Record(ctx context.Context, changes []dlq.Change) error
	Note(ctx context.Context, b dlq.Batch) error
	Outbox(ctx context.Context, limit int) ([]dlq.OutboxItem, error)
	Ack(ctx context.Context, items []dlq.OutboxItem) error
}

// Rules gives the resolver to use for the next batch; hot reload swaps it.
type Rules interface {
	Resolver() *resolver.Resolver
}

// StaticRules is Rules that never change.
type StaticRules struct{ R *resolver.Resolver }

// Resolver implements Rules.
func (s StaticRules) Resolver() *resolver.Resolver { return s.R }

// Options configure a Processor. Config, Rules, Store, DLQ, Logger and Metrics are
// required; the rest have defaults.
type Options struct {
	Config  *config.Config
	Rules   Rules
	Store   state.Store
	DLQ     DLQRecorder
	Logger  *zap.Logger
	Metrics *Metrics

	BatchSize int // most messages per batch (default 500)
	// StateCache is how many record states the process keeps decoded between
	// batches, shared evenly by the partitions it holds (default 10,000; negative for
	// none): a record in its partition's share is not read from the store again while
	// the worker's claim holds.
	StateCache int
	// ExpireInterval is how often records with a due deadline (pairing window, apply
	// timeout) are expired without a new event (default 1s).
	ExpireInterval time.Duration

	SessionTimeout    time.Duration // consumer-group session timeout (default kafka.session_timeout)
	HeartbeatInterval time.Duration // default kafka.heartbeat_interval
	RebalanceTimeout  time.Duration // default 10s
	JoinGroupBackoff  time.Duration // default 1s
	// CommitInterval is the least time between two commits of a partition's input
	// positions to the consumer group, which are made in the background (commit.go;
	// default 100ms).
	CommitInterval time.Duration
	// BatchTimeout bounds the outputs of one batch (produce, DLQ, state);
	// a batch that cannot finish is retried (default 30s).
	BatchTimeout time.Duration
	// ProbeInterval is how often Redis and Kafka are probed for readiness (default 1s).
	ProbeInterval time.Duration

	// Dialer, Transport and Producer reach Kafka (TLS, SASL: see package connect);
	// nil for plain TCP. The consumer group dials with Dialer, the admin client uses
	// Transport, the producer and the partitions' readers (franz-go's) these options.
	Dialer    *kafka.Dialer
	Transport *kafka.Transport
	Producer  []kgo.Opt

	Now func() time.Time // default time.Now

	// OnLatency, when set, is called with each message's consume-to-produce latency
	// (concord bench keeps them to compute exact percentiles).
	OnLatency func(time.Duration)
}

func (o *Options) defaults() error {
	switch {
	case o.Config == nil:
		return errors.New("pipeline: Options.Config is required")
	case o.Rules == nil:
		return errors.New("pipeline: Options.Rules is required")
	case o.Store == nil:
		return errors.New("pipeline: Options.Store is required")
	case o.DLQ == nil:
		return errors.New("pipeline: Options.DLQ is required")
	case o.Logger == nil:
		return errors.New("pipeline: Options.Logger is required")
	case o.Metrics == nil:
		return errors.New("pipeline: Options.Metrics is required")
	}
	setDefault(&o.BatchSize, 500)
	if o.StateCache == 0 {
		o.StateCache = 10_000
	}
	setDefault(&o.ExpireInterval, time.Second)
	setDefault(&o.SessionTimeout, o.Config.Kafka.SessionTimeout.Duration)
	setDefault(&o.SessionTimeout, 10*time.Second) // a Config without defaults applied
	setDefault(&o.HeartbeatInterval, o.Config.Kafka.HeartbeatInterval.Duration)
	setDefault(&o.HeartbeatInterval, time.Second)
	setDefault(&o.RebalanceTimeout, 10*time.Second)
	setDefault(&o.JoinGroupBackoff, time.Second)
	setDefault(&o.BatchTimeout, 30*time.Second)
	setDefault(&o.CommitInterval, 100*time.Millisecond)
	setDefault(&o.ProbeInterval, time.Second)
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

func setDefault[T int | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}
