package replay

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/concord-sync/concord/codecs"
	"github.com/concord-sync/concord/pipeline"
)

// Window is the part of the topics a replay from Kafka reads: from Since (a time, or
// per topic and partition an offset) up to Until (a time; zero for what the topics
// hold when the replay starts).
type Window struct {
	Since        time.Time
	SinceOffsets map[string]map[int]int64 // topic -> partition -> first offset
	Until        time.Time
}

// ParseSince reads --since: an RFC 3339 time, a duration back from now ("2h"), or
// offsets "topic:partition=offset,…" (partitions not named start at their first
// offset).
func ParseSince(s string, now time.Time) (time.Time, map[string]map[int]int64, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil, nil
	}
	offsets := map[string]map[int]int64{}
	for item := range strings.SplitSeq(s, ",") {
		tp, off, ok := strings.Cut(strings.TrimSpace(item), "=")
		topic, part, ok2 := strings.Cut(tp, ":")
		p, perr := strconv.Atoi(part)
		o, oerr := strconv.ParseInt(off, 10, 64)
		if !ok || !ok2 || perr != nil || oerr != nil || topic == "" {
			return time.Time{}, nil, fmt.Errorf("--since %q: want an RFC 3339 time, a duration (2h) or topic:partition=offset,…", s)
		}
		if offsets[topic] == nil {
			offsets[topic] = map[int]int64{}
		}
		offsets[topic][p] = o
	}
	return time.Time{}, offsets, nil
}

// ParseUntil reads --until: "now" (or empty), an RFC 3339 time, or a duration back
// from now.
func ParseUntil(s string, now time.Time) (time.Time, error) {
	switch s {
	case "", "now":
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--until %q: want now, an RFC 3339 time or a duration (1h)", s)
}

// Progress is how far a replay from Kafka is.
type Progress struct {
	Events  int64 // messages replayed
	Total   int64 // messages in the window (known once the offsets are listed)
	Records int   // distinct records seen
	Elapsed time.Duration
}

// Kafka reads the window of topics with its own readers: no consumer group, nothing
// committed, so the running group is never disturbed.
type Kafka struct {
	Brokers  []string
	Dialer   *kafka.Dialer // nil for plain TCP
	Window   Window
	Progress func(Progress) // called about once a second, and at the end
}

// span is the part of one topic's partition to read.
type span struct {
	topic     string
	partition int
	from, end int64 // [from, end)
}

// RunKafka replays the window of every system's topic, partition by partition: a
// record's events are all in one partition number (co-partitioning), so its history
// is replayed whole. Within a partition the topics are merged by message time (ties
// by topic name, then offset), so the order does not depend on how fast each topic is
// read. Then the pairing windows still open are closed, as Run does.
func (r *Replayer) RunKafka(ctx context.Context, k Kafka) error {
	systems := map[string]string{} // topic -> system
	var topics []string
	for _, name := range r.cfg.SystemNames() {
		t := r.cfg.Systems[name].Topic
		systems[t] = name
		topics = append(topics, t)
	}
	review := pipeline.ReviewTopic(r.cfg)
	if ok, err := k.exists(ctx, review); err != nil {
		return err
	} else if ok {
		topics = append(topics, review) // reviewers' decisions, in their records' partitions
	}
	spans, err := k.spans(ctx, topics)
	if err != nil {
		return err
	}
	var total int64
	for _, s := range spans {
		total += s.end - s.from
	}
	start := time.Now()
	var events int64
	last := start
	report := func(force bool) {
		if k.Progress != nil && (force || time.Since(last) >= time.Second) {
			last = time.Now()
			k.Progress(Progress{Events: events, Total: total, Records: r.records, Elapsed: time.Since(start)})
		}
	}
	byPartition := map[int][]span{}
	for _, s := range spans {
		byPartition[s.partition] = append(byPartition[s.partition], s)
	}
	parts := make([]int, 0, len(byPartition))
	for p := range byPartition {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	for _, p := range parts {
		err := k.merge(ctx, byPartition[p], func(m kafka.Message) error {
			events++
			report(false)
			// The pipeline decides at its wall-clock time, just after the message was
			// appended: the message's time stands for it (and keeps replay time from
			// running backwards), so applies are "sent" when they were.
			r.nowMs = max(r.nowMs, m.Time.UnixMilli())
			if m.Topic == review {
				return r.review(m.Value)
			}
			msg := codecs.Message{Topic: m.Topic, Partition: int32(m.Partition), Offset: m.Offset, Key: m.Key, Value: m.Value}
			return r.message(systems[m.Topic], msg)
		})
		if err != nil {
			return err
		}
	}
	report(true)
	return r.Finish()
}

// exists reports whether a topic exists.
func (k *Kafka) exists(ctx context.Context, topic string) (bool, error) {
	md, err := k.client().Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return false, fmt.Errorf("replay: reading the metadata of %s: %w", topic, err)
	}
	return len(md.Topics) == 1 && md.Topics[0].Error == nil, nil
}

func (k *Kafka) client() *kafka.Client {
	client := &kafka.Client{Addr: kafka.TCP(k.Brokers...), Timeout: 30 * time.Second}
	if k.Dialer != nil {
		client.Transport = &kafka.Transport{TLS: k.Dialer.TLS, SASL: k.Dialer.SASLMechanism}
	}
	return client
}

// review replays a reviewer's decision, as the pipeline applies it.
func (r *Replayer) review(value []byte) error {
	c, err := pipeline.ParseReview(value)
	if err != nil {
		return nil // the pipeline sends it to the poison topic; nothing to replay
	}
	st, err := r.load(c.Partition, c.Record)
	if err != nil {
		return err
	}
	rv := pipeline.ReviewOf(c)
	r.out.Reset()
	r.res.ApplyReview(time.UnixMilli(r.nowMs), st, &rv, &r.out)
	if err := r.emitAll(st); err != nil {
		return err
	}
	return r.save(c.Partition, st)
}

// spans lists, per topic and partition, the offsets of the window.
func (k *Kafka) spans(ctx context.Context, topics []string) ([]span, error) {
	client := k.client()
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("replay: reading the topics' metadata: %w", err)
	}
	req := map[string][]kafka.OffsetRequest{}
	for _, t := range md.Topics {
		if t.Error != nil {
			return nil, fmt.Errorf("replay: topic %s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			req[t.Name] = append(req[t.Name], kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
		}
	}
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: req})
	if err != nil {
		return nil, fmt.Errorf("replay: listing offsets: %w", err)
	}
	var spans []span
	for _, t := range slices.Sorted(maps.Keys(res.Topics)) {
		for _, po := range res.Topics[t] {
			if po.Error != nil {
				return nil, fmt.Errorf("replay: offsets of %s/%d: %w", t, po.Partition, po.Error)
			}
			s := span{topic: t, partition: po.Partition, from: po.FirstOffset, end: po.LastOffset}
			if off, ok := k.Window.SinceOffsets[t][po.Partition]; ok {
				s.from = max(s.from, off)
			}
			spans = append(spans, s)
		}
	}
	if !k.Window.Since.IsZero() {
		if err := k.seekTimes(ctx, client, spans); err != nil {
			return nil, err
		}
	}
	return spans, nil
}

// seekTimes moves each span's start to the first offset at or after Window.Since.
func (k *Kafka) seekTimes(ctx context.Context, client *kafka.Client, spans []span) error {
	req := map[string][]kafka.OffsetRequest{}
	for _, s := range spans {
		req[s.topic] = append(req[s.topic], kafka.TimeOffsetOf(s.partition, k.Window.Since))
	}
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: req})
	if err != nil {
		return fmt.Errorf("replay: offsets at %s: %w", k.Window.Since.Format(time.RFC3339), err)
	}
	for i := range spans {
		s := &spans[i]
		for _, po := range res.Topics[s.topic] {
			if po.Partition != s.partition || po.Error != nil {
				continue
			}
			// The broker answers the first offset at or after the time, or -1
			// when every message is older.
			for off := range po.Offsets {
				if off >= 0 {
					s.from = max(s.from, off)
				} else {
					s.from = s.end
				}
			}
		}
	}
	return nil
}

// merge reads the spans of one partition and hands their messages to fn in time
// order: one reader per topic, the earliest head message first. A reader never
// fetches past its span's end (the partition's end when the replay started), where
// it would wait for new messages.
func (k *Kafka) merge(ctx context.Context, spans []span, fn func(kafka.Message) error) error {
	type head struct {
		r    *kafka.Reader
		s    span
		m    kafka.Message
		live bool // m is the next message to hand over
	}
	var heads []*head
	defer func() {
		for _, h := range heads {
			_ = h.r.Close()
		}
	}()
	// advance fetches the message at offset next, if the span holds it.
	advance := func(h *head, next int64) error {
		h.live = false
		if next >= h.s.end {
			return nil
		}
		m, err := h.r.FetchMessage(ctx)
		if err != nil {
			return fmt.Errorf("replay: reading %s/%d: %w", h.s.topic, h.s.partition, err)
		}
		if m.Offset >= h.s.end || (!k.Window.Until.IsZero() && m.Time.After(k.Window.Until)) {
			return nil // past the window: this topic is done
		}
		h.m, h.live = m, true
		return nil
	}
	for _, s := range spans {
		if s.from >= s.end {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers: k.Brokers, Topic: s.topic, Partition: s.partition, Dialer: k.Dialer,
			MinBytes: 1, MaxBytes: 4 << 20, MaxWait: 500 * time.Millisecond,
		})
		if err := r.SetOffset(s.from); err != nil {
			_ = r.Close()
			return err
		}
		h := &head{r: r, s: s}
		heads = append(heads, h)
		if err := advance(h, s.from); err != nil {
			return err
		}
	}
	for {
		var first *head
		for _, h := range heads {
			if h.live && (first == nil || h.m.Time.Before(first.m.Time) ||
				(h.m.Time.Equal(first.m.Time) && h.s.topic < first.s.topic)) {
				first = h
			}
		}
		if first == nil {
			return nil
		}
		m := first.m
		if err := advance(first, m.Offset+1); err != nil {
			return err
		}
		if err := fn(m); err != nil {
			return err
		}
	}
}
