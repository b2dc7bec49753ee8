package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/segmentio/kafka-go"
)

// ErrNotCopartitioned is returned at start when the input topics do not all have the
// same number of partitions: partition N of every input topic must hold the same
// records, or one record's history would be split between instances.
var ErrNotCopartitioned = errors.New("pipeline: input topics are not co-partitioned")

// partitionCounts returns the number of partitions of each topic; a missing topic is
// an error naming it.
func partitionCounts(ctx context.Context, client *kafka.Client, topics []string) (map[string]int, error) {
	resp, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("pipeline: reading topic metadata: %w", err)
	}
	counts := make(map[string]int, len(topics))
	for _, t := range resp.Topics {
		if t.Error != nil {
			return nil, fmt.Errorf("pipeline: topic %s: %w", t.Name, t.Error)
		}
		counts[t.Name] = len(t.Partitions)
	}
	for _, t := range topics {
		if counts[t] == 0 {
			return nil, fmt.Errorf("pipeline: input topic %s does not exist (create it, or check systems.*.topic)", t)
		}
	}
	return counts, nil
}

// checkCopartitioned refuses input topics whose partition counts differ, saying what
// to change. It returns the common partition count.
func checkCopartitioned(counts map[string]int, topics []string) (int, error) {
	n := counts[topics[0]]
	for _, t := range topics[1:] {
		if counts[t] != n {
			var parts []string
			for _, t := range topics {
				parts = append(parts, fmt.Sprintf("%s has %d", t, counts[t]))
			}
			return 0, fmt.Errorf("%w: %s; give every input topic the same partition count "+
				"(kafka-topics.sh --alter --partitions N on the smaller ones) and key them by the record id", ErrNotCopartitioned, strings.Join(parts, ", "))
		}
	}
	return n, nil
}

// ensureTopics creates the output topics that do not exist yet, with the given
// partition count. Topics that exist are left alone.
func ensureTopics(ctx context.Context, client *kafka.Client, topics []string, partitions int) error {
	resp, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return fmt.Errorf("pipeline: reading topic metadata: %w", err)
	}
	var missing []kafka.TopicConfig
	for _, t := range resp.Topics {
		if t.Error != nil || len(t.Partitions) == 0 {
			missing = append(missing, kafka.TopicConfig{Topic: t.Name, NumPartitions: partitions, ReplicationFactor: -1})
		}
	}
	if len(missing) == 0 {
		return nil
	}
	slices.SortFunc(missing, func(a, b kafka.TopicConfig) int { return strings.Compare(a.Topic, b.Topic) })
	cr, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: missing})
	if err != nil {
		return fmt.Errorf("pipeline: creating output topics: %w", err)
	}
	for name, err := range cr.Errors {
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return fmt.Errorf("pipeline: creating topic %s: %w", name, err)
		}
	}
	return nil
}
