package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/concord-sync/concord/codecs"
	"github.com/concord-sync/concord/pipeline/state"
	"github.com/concord-sync/concord/resolver"
)

// worker processes one partition number of every input topic for one generation.
type worker struct {
	p       *Processor
	gen     *kafka.Generation
	part    int
	offsets map[string]int64 // topic -> first offset to read
	log     *zap.Logger
	fence   state.Fence

	decoders map[string]*codecs.Decoder
	columns  []codecs.ColumnSchema // scratch for learnTypes
	reader   *PartitionReader
	pending  []Fetched // fetched, not yet in a batch

	seq       uint64           // the number of the partition's last outbox written
	positions map[string]int64 // input topic -> next offset, after the last batch decided
	sent      *state.Outbox    // produced, still in the store: cleared when idle
	commits   *committer       // the positions' commits to the group, in the background

	cache   stateCache // the states last written, while the claim holds
	missing []string   // load's, reused
	// heldNames holds the Held and HeldBefore lists of a batch's writes, reused:
	// load appends the ones before, save the ones after.
	heldNames []string
	arena     arena           // the scan's copies of the batch's changes
	output    resolver.Output // the resolver's output, reused from event to event
	batchBuf  []kafka.Message // collect's, reused from batch to batch
	atBuf     []time.Time

	decideTime, writeTime, produceTime prometheus.Observer // concord_batch_stage_seconds
}

func newWorker(p *Processor, gen *kafka.Generation, part int, offsets map[string]int64) *worker {
	return &worker{
		p: p, gen: gen, part: part, offsets: offsets,
		log:      p.log.With(zap.Int("partition", part), zap.Int32("generation", gen.ID)),
		fence:    state.Fence{Partition: int32(part), Generation: int64(gen.ID)},
		decoders: p.decoders(),
		cache:    stateCache{max: p.opts.StateCache}, // the caller divides it among the partitions

		decideTime:  p.opts.Metrics.BatchStage.WithLabelValues(stageDecide),
		writeTime:   p.opts.Metrics.BatchStage.WithLabelValues(stageWrite),
		produceTime: p.opts.Metrics.BatchStage.WithLabelValues(stageProduce),
	}
}

// run works until the generation ends (gctx) or the processor stops (ctx). Stopping
// between batches means the batch in progress finishes and commits first.
func (w *worker) run(ctx, gctx context.Context) {
	if !w.start(ctx, gctx) {
		return
	}
	readCtx, cancel := context.WithCancel(gctx)
	defer cancel()
	stopRead := context.AfterFunc(ctx, cancel)
	defer stopRead()
	reader, err := NewPartitionReader(w.p.cfg.Kafka.Brokers, w.p.opts.Producer, w.part, w.positions, w.p.opts.BatchSize, w.log)
	if err != nil {
		w.log.Error("not working on the partition", zap.Error(err))
		return
	}
	w.reader = reader
	chunks := reader.Start(readCtx)
	w.commits = newCommitter(w, w.p.opts.CommitInterval)
	go w.commits.run(readCtx)
	defer func() {
		cancel()
		w.commits.flush()
		reader.Close()
		for _, topic := range w.p.inputs {
			w.p.opts.Metrics.ConsumerLag.DeleteLabelValues(topic, strconv.Itoa(w.part))
		}
		w.clearSent(context.WithoutCancel(ctx))
	}()
	ticker := time.NewTicker(w.p.opts.ExpireInterval)
	defer ticker.Stop()
	w.log.Info("partition started", zap.Any("offsets", w.positions))
	for {
		if len(w.pending) == 0 {
			select {
			case w.pending = <-chunks:
			case <-readCtx.Done(): // the processor stopping or the generation ending
			case <-ticker.C:
				if !w.tick(ctx, gctx) {
					return
				}
				continue
			}
		}
		// Stopping and the ticker come before the next batch, even one of messages
		// already pending (what the last batch left of a fetch).
		select {
		case <-readCtx.Done():
			if ctx.Err() != nil {
				w.log.Info("partition stopped")
			} else {
				w.log.Info("partition released at the end of the generation")
			}
			return
		case <-ticker.C:
			if !w.tick(ctx, gctx) {
				return
			}
		default:
		}
		batch, fetchedAt := w.collect(chunks)
		if !w.handle(ctx, gctx, batch, fetchedAt) {
			return
		}
		w.reportLag()
	}
}

// tick does what the ticker is for: dropping the delivered outbox, expiring what is
// due and reporting the lag. It returns false when the partition must be given up.
func (w *worker) tick(ctx, gctx context.Context) bool {
	w.clearSent(ctx)
	if !w.expireDue(ctx, gctx) {
		return false
	}
	w.reportLag()
	return true
}

// start claims the partition and finishes what its last owner left: it produces the
// outbox again (a crash may have come before or while it was produced) and sets the
// input positions past the last batch decided, whatever the group has committed.
func (w *worker) start(ctx, gctx context.Context) bool {
	c, err := w.claim(context.WithoutCancel(ctx))
	if err != nil {
		w.log.Warn("partition claimed by a newer generation; not working on it", zap.Error(err))
		return false
	}
	w.fence, w.seq = c.Fence, c.Outbox.Seq
	w.positions = make(map[string]int64, len(w.p.inputs))
	behind := false
	for _, topic := range w.p.inputs {
		off, ok := w.offsets[topic]
		if !ok || off < 0 {
			off = -1 // nothing committed: from the first offset
		}
		if stored, ok := c.Outbox.Offsets[topic]; ok && stored > off {
			off, behind = stored, true
		}
		w.positions[topic] = off
	}
	if len(c.Outbox.Messages) > 0 {
		box := c.Outbox
		msgs := make([]kafka.Message, len(box.Messages))
		for i := range box.Messages {
			msgs[i] = kafkaMessage(&box.Messages[i])
		}
		err := w.retry(ctx, gctx, func(bctx context.Context) error {
			return w.p.producer.Produce(bctx, msgs)
		})
		if err != nil {
			return false
		}
		w.p.opts.Metrics.Redelivered.Add(float64(len(msgs)))
		w.log.Info("produced the outbox of the partition's last batch again", zap.Uint64("seq", box.Seq), zap.Int("messages", len(msgs)))
		w.sent = &box
	}
	if behind {
		// The group's commit lags the store (a crash between a batch's write and its
		// commit): catch it up, so the lag metrics and a later owner agree.
		if err := w.gen.CommitOffsets(w.commitOffsets(w.positions)); err != nil {
			w.log.Warn("committing the stored input positions", zap.Error(err))
		}
	}
	return true
}

// claim takes the partition for this generation. A stored fence of a newer
// generation means either that this member is late (its generation has ended) or that
// the consumer group was deleted and created again, numbering its generations from 1.
// The group coordinator tells them apart: it takes an offset commit from the current
// generation only. So the member commits its start positions and, if the coordinator
// accepts them, supersedes the stored fence: one claim, where waiting for the
// generation to count past the stored one would churn through as many rebalances.
func (w *worker) claim(ctx context.Context) (state.Claimed, error) {
	c, err := w.p.opts.Store.Claim(ctx, w.fence, "")
	if !errors.Is(err, state.ErrFenced) {
		return c, err
	}
	start := map[string]map[int]int64{}
	for _, topic := range w.p.inputs {
		off, ok := c.Outbox.Offsets[topic]
		if !ok {
			off = -1
		}
		if a, ok := w.offsets[topic]; ok && a > off {
			off = a
		}
		if off < 0 {
			// Nothing known: commit the first offset, which changes nothing (an empty
			// commit would be no test at all).
			first, ferr := w.p.firstOffset(ctx, topic, w.part)
			if ferr != nil {
				return c, fmt.Errorf("%w (and the first offset of %s, to test the generation with: %w)", err, topic, ferr)
			}
			off = first
		}
		start[topic] = map[int]int64{w.part: off}
	}
	if cerr := w.gen.CommitOffsets(start); cerr != nil {
		return c, fmt.Errorf("%w (and the group coordinator refused an offset commit of generation %d: %w)", err, w.fence.Generation, cerr)
	}
	w.log.Warn("the partition's fence is of a newer generation than the group's current one (was the consumer group deleted and created again?): taking it over",
		zap.String("stored_fence", c.Stored))
	return w.p.opts.Store.Claim(ctx, w.fence, c.Stored)
}

// clearSent drops from the store the outbox messages known to be produced, so that a
// crash while the partition is idle does not produce them again.
func (w *worker) clearSent(ctx context.Context) {
	if w.sent == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, w.p.opts.BatchTimeout)
	defer cancel()
	if err := w.p.opts.Store.Delivered(ctx, w.fence, w.sent); err != nil {
		w.log.Debug("clearing the delivered outbox; it is produced again if the partition moves", zap.Error(err))
		return
	}
	w.sent = nil
}

// collect gathers a batch: what the reader has already fetched, up to the batch
// size. It never waits for more: an idle input is processed at once (no linger to
// wait out), while under a backlog the reader keeps fetching during the batch
// before, so batches fill anyway. What is over the batch size stays pending.
func (w *worker) collect(chunks <-chan []Fetched) ([]kafka.Message, []time.Time) {
	batch, at := w.batchBuf[:0], w.atBuf[:0]
	for {
		for len(w.pending) > 0 && len(batch) < w.p.opts.BatchSize {
			f := &w.pending[0]
			batch, at = append(batch, f.Message), append(at, f.At)
			w.pending = w.pending[1:]
		}
		if len(batch) == w.p.opts.BatchSize {
			break
		}
		select {
		case w.pending = <-chunks:
			continue
		default:
		}
		break
	}
	w.batchBuf, w.atBuf = batch, at
	return batch, at
}

// handle processes a batch until it is done; it returns false when the partition
// must be given up.
func (w *worker) handle(ctx, gctx context.Context, batch []kafka.Message, fetchedAt []time.Time) bool {
	start := time.Now()
	d, ok := w.runBatch(ctx, gctx, func(bctx context.Context) (*decided, error) { return w.decide(bctx, batch) })
	if !ok {
		return false
	}
	m := w.p.opts.Metrics
	m.Batch.Observe(time.Since(start).Seconds())
	for _, at := range fetchedAt {
		d := d.out.produced.Sub(at)
		m.Latency.Observe(d.Seconds())
		if w.p.opts.OnLatency != nil {
			w.p.opts.OnLatency(d)
		}
	}
	return true
}

// retry runs fn until it succeeds, retrying failures of Kafka or Redis with a
// backoff. It gives up, returning the error, when the partition is lost: fenced by a
// newer generation, or the generation ended before the work was committed (the next
// owner reprocesses it).
func (w *worker) retry(ctx, gctx context.Context, fn func(context.Context) error) error {
	backoff := 100 * time.Millisecond
	for {
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.p.opts.BatchTimeout)
		err := fn(bctx)
		cancel()
		w.p.health.batch(w.part, err)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, state.ErrFenced), errors.Is(err, state.ErrVersionConflict):
			w.p.health.batch(w.part, nil) // not this instance's partition any more
			w.p.opts.Metrics.Fenced.Inc()
			w.log.Warn("partition lost to another instance; giving it up without committing", zap.Error(err))
			return err
		case errors.Is(err, kafka.ErrGenerationEnded), gctx.Err() != nil:
			w.p.health.batch(w.part, nil)
			w.log.Info("generation ended before the batch was committed; the next owner reprocesses it", zap.Error(err))
			return err
		}
		w.p.opts.Metrics.Retries.Inc()
		w.log.Warn("batch failed; retrying", zap.Error(err), zap.Duration("backoff", backoff))
		select {
		case <-time.After(backoff):
		case <-gctx.Done():
			w.p.health.batch(w.part, nil)
			return gctx.Err()
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// reportLag sets the consumer lag of the partition of every input topic: how far the
// last message read is behind the high watermark.
func (w *worker) reportLag() {
	for _, topic := range w.p.inputs {
		if lag := w.reader.Lag(topic); lag >= 0 {
			w.p.opts.Metrics.ConsumerLag.WithLabelValues(topic, strconv.Itoa(w.part)).Set(float64(lag))
		}
	}
}
