package pipeline_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/concord-sync/concord/internal/testenv"
	"github.com/concord-sync/concord/pipeline/state"
)

// TestOutboxCarriesTheBatchStillProduced: a batch is decided and written while the
// one before it is still being produced. Its outbox then holds the messages of
// both, so that a crash before the first is acknowledged loses nothing; and its own
// messages are produced only after the first's, so a record's applies keep their
// order.
func TestOutboxCarriesTheBatchStillProduced(t *testing.T) {
	kc, err := testenv.NewKafka(1, testenv.Seed(1, crmTopic, billingTopic)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	var held atomic.Bool
	kc.ControlKey(kmsg.Produce.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		produce, ok := req.(*kmsg.ProduceRequest)
		if !ok {
			return nil, nil, false
		}
		for _, tp := range produce.Topics {
			// concord's producer (franz-go) names topics by ID from v13 on; the test's
			// writer (kafka-go) of the inputs by name.
			if (tp.Topic == "contacts.apply.billing" || tp.TopicID != [16]byte{}) && held.CompareAndSwap(false, true) {
				kc.SleepControl(func() { <-release }) // the first apply's produce waits
			}
		}
		return nil, nil, false
	})
	e := newEnvOn(t, kc.ListenAddrs(), testenv.Redis(t).Client(t), nil)
	e.start("p1")

	e.produce(crmTopic, change("id", "7", "c", 100, 1_700_000_000_000, map[string]any{"email_address": "a@x", "name": "Ann"}))
	testenv.Eventually(t, "the first apply's produce held", held.Load)
	e.produce(crmTopic, change("id", "8", "c", 101, 1_700_000_000_001, map[string]any{"email_address": "b@x", "name": "Bob"}))

	var box state.Outbox
	testenv.Eventually(t, "the second batch's outbox written", func() bool {
		box, err = e.store.Outbox(context.Background(), 0)
		return err == nil && box.Seq >= 2
	})
	var ids []string
	for _, m := range box.Messages {
		if m.Topic == "contacts.apply.billing" {
			ids = append(ids, string(payload(t, m.Key)))
		}
	}
	if len(ids) != 2 || ids[0] != `{"cust_id":"7"}` || ids[1] != `{"cust_id":"8"}` {
		t.Fatalf("the outbox written while the first batch was produced holds the applies to %v, want 7's then 8's", ids)
	}

	unblock()
	got := readApplies(t, e.brokers, "contacts.apply.billing", 2)
	if string(payload(t, got[0].Key)) != `{"cust_id":"7"}` || string(payload(t, got[1].Key)) != `{"cust_id":"8"}` {
		t.Errorf("applies produced as %s, %s; want 7's first", got[0].Key, got[1].Key)
	}
}
