package pipeline_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/concord-sync/concord/internal/testenv"
	"github.com/concord-sync/concord/pipeline"
)

// TestPartitionReader reads one partition of two topics from their own offsets (one
// from its first), in order within each topic, no more than the batch at a time,
// with headers and the producer's timestamp, and reports each topic's lag, the one
// with nothing past its offset included.
func TestPartitionReader(t *testing.T) {
	brokers := testenv.Kafka(t, 2, "a", "b")
	w := &kafka.Writer{
		Addr: kafka.TCP(brokers...), BatchTimeout: time.Millisecond,
		Balancer: kafka.BalancerFunc(func(m kafka.Message, _ ...int) int { return m.Partition }),
	}
	defer func() { _ = w.Close() }()
	ts := time.UnixMilli(1_700_000_000_123)
	var msgs []kafka.Message
	for i := range 7 {
		msgs = append(msgs, kafka.Message{
			Topic: "a", Partition: 1, Key: []byte("k"), Value: fmt.Appendf(nil, "a%d", i), Time: ts,
			Headers: []kafka.Header{{Key: "h", Value: fmt.Appendf(nil, "%d", i)}},
		})
	}
	msgs = append(msgs, kafka.Message{Topic: "b", Partition: 1, Key: []byte("k"), Value: []byte("b0"), Time: ts})
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	// a from offset 2, b from its first: b's one message, then at offset 1, nothing more.
	r, err := pipeline.NewPartitionReader(brokers, nil, 1, map[string]int64{"a": 2, "b": -1}, 3, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); r.Close() }()
	chunks := r.Start(ctx)

	got := map[string][]string{}
	for n := 0; n < 6; {
		select {
		case chunk := <-chunks:
			if len(chunk) == 0 || len(chunk) > 3 {
				t.Fatalf("a chunk of %d messages; want 1 to 3", len(chunk))
			}
			for _, f := range chunk {
				if f.Partition != 1 || f.At.IsZero() || !f.Time.Equal(ts) {
					t.Errorf("message %+v: partition, fetch time or timestamp wrong", f.Message)
				}
				if f.Topic == "a" && (len(f.Headers) != 1 || string(f.Headers[0].Value) != fmt.Sprint(f.Offset)) {
					t.Errorf("a@%d headers = %v", f.Offset, f.Headers)
				}
				got[f.Topic] = append(got[f.Topic], fmt.Sprintf("%d:%s", f.Offset, f.Value))
				n++
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("read %v; want a@2..6 and b@0", got)
		}
	}
	if fmt.Sprint(got["a"]) != "[2:a2 3:a3 4:a4 5:a5 6:a6]" || fmt.Sprint(got["b"]) != "[0:b0]" {
		t.Errorf("read %v", got)
	}
	testenv.Eventually(t, "both topics' lag to be 0", func() bool { return r.Lag("a") == 0 && r.Lag("b") == 0 })
	if r.Lag("c") != -1 {
		t.Errorf("the lag of a topic not read = %d, want -1", r.Lag("c"))
	}
}
