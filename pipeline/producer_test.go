package pipeline

import (
	"fmt"
	"testing"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestProducerPartitionsAsJava: the producer puts a keyed message where Java's
// default partitioner does, toPositive(murmur2(key)) % partitions, so that applies
// land with the sink connectors' own records of the key and concord's co-partitioned
// topics line up. The hashes are the vectors of Kafka's UtilsTest.testMurmur2
// (clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java). It also
// agrees with kafka-go's Murmur2Balancer, which the tests' writers and the sinks'
// emulations use, and keeps a review message's own partition.
func TestProducerPartitionsAsJava(t *testing.T) {
	java := map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	}
	p := explicitOrMurmur2().ForTopic("t")
	for key, hash := range java {
		for _, n := range []int{1, 3, 7, 12, 50} {
			want := int(uint32(hash)&0x7fffffff) % n
			if got := p.Partition(&kgo.Record{Key: []byte(key)}, n); got != want {
				t.Errorf("key %q over %d partitions: partition %d, Java's %d", key, n, got, want)
			}
		}
	}
	parts := []int{0, 1, 2, 3, 4, 5, 6, 7}
	for i := range 1000 {
		key := []byte(fmt.Sprintf(`{"id":"%d"}`, i))
		if got, want := p.Partition(&kgo.Record{Key: key}, len(parts)), (kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: key}, parts...); got != want {
			t.Fatalf("key %s: partition %d, kafka-go's Murmur2Balancer %d", key, got, want)
		}
	}
	review := &kgo.Record{Key: []byte("r-1"), Partition: 5, Headers: []kgo.RecordHeader{{Key: headerExplicitPartition, Value: []byte("5")}}}
	if got := p.Partition(review, len(parts)); got != 5 {
		t.Errorf("a review message naming partition 5 went to %d", got)
	}
}
