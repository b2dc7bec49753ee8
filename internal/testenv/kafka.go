package testenv

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Kafka starts an in-process Kafka broker (franz-go's kfake, speaking the real
// protocol over 127.0.0.1) with the given topics, each with the given number of
// partitions, and stops it when the test ends. It returns the broker addresses.
// Group session timeouts down to 100ms are accepted so group tests run fast.
func Kafka(t testing.TB, partitions int, topics ...string) []string {
	t.Helper()
	return KafkaWith(t, nil, partitions, topics...)
}

// KafkaWith is Kafka with further kfake options (SASL users, TLS).
func KafkaWith(t testing.TB, extra []kfake.Opt, partitions int, topics ...string) []string {
	t.Helper()
	c, err := NewKafka(partitions, append(extra, seed(partitions, topics)...)...)
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// NewKafka starts a kfake cluster the caller closes (for the demo and benchmarks).
// extra are further options: seed topics with Seed.
func NewKafka(partitions int, extra ...kfake.Opt) (*kfake.Cluster, error) {
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.GroupMinSessionTimeout(100 * time.Millisecond),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(partitions),
	}
	return kfake.NewCluster(append(opts, extra...)...)
}

// Seed are the options that create topics with the given partitions.
func Seed(partitions int, topics ...string) []kfake.Opt { return seed(partitions, topics) }

func seed(partitions int, topics []string) []kfake.Opt {
	if len(topics) == 0 {
		return nil
	}
	return []kfake.Opt{kfake.SeedTopics(int32(partitions), topics...)}
}
