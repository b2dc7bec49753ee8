package pipeline_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/concord-sync/concord/config"
	"github.com/concord-sync/concord/connect"
	"github.com/concord-sync/concord/dlq"
	"github.com/concord-sync/concord/internal/testenv"
	"github.com/concord-sync/concord/pipeline"
)

// TestPipelineOverKafkaTLSAndSASL runs the pipeline against a broker that takes
// TLS connections with SCRAM-SHA-512 only, as a managed Kafka would: the consumer
// group, the readers, the writer and the admin client all authenticate.
func TestPipelineOverKafkaTLSAndSASL(t *testing.T) {
	certs := testenv.NewCerts(t)
	const user, pass = "concord", "kafka-s3cret"
	brokers := testenv.KafkaWith(t, []kfake.Opt{
		kfake.EnableSASL(), kfake.TLS(certs.ServerTLS(true)), kfake.Superuser("SCRAM-SHA-512", user, pass),
	}, 1, crmTopic, billingTopic)
	kc, err := connect.KafkaClients(config.Kafka{
		Brokers: brokers,
		TLS:     config.TLS{CAFile: certs.CAFile, CertFile: certs.ClientCertFile, KeyFile: certs.ClientKeyFile},
		SASL:    config.SASL{Mechanism: config.SASLScramSHA512, Username: user, Password: pass},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvOn(t, brokers, testenv.Redis(t).Client(t), kc)
	p, _ := e.start("p1")
	testenv.Eventually(t, "ready", p.Ready)
	e.produce(crmTopic, change("id", "1", "c", 10, 1_700_000_000_000, map[string]any{"notes": "over tls"}))
	apply := readAppliesWith(t, brokers, kc.Dialer, "contacts.apply.billing", 1)[0]
	if !strings.Contains(string(apply.Value), "over tls") {
		t.Errorf("apply = %s", apply.Value)
	}
}

// TestPipelineOnARedisClusterWithFailover runs the pipeline and the review loop on
// a real Redis Cluster of three masters with a replica each, and kills a master's
// process in the middle: its replica takes over, the batches that failed meanwhile
// are retried, and no change is lost.
func TestPipelineOnARedisClusterWithFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six redis-server processes")
	}
	cluster := testenv.RedisReplicatedCluster(t)
	rdb, err := connect.Redis(config.Redis{Addrs: cluster.Addrs(), Mode: config.RedisCluster}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	e := newEnvOn(t, testenv.Kafka(t, 4, crmTopic, billingTopic), rdb, nil)
	p, _ := e.start("p1")
	testenv.Eventually(t, "ready", p.Ready)
	const records, t0 = 30, 1_700_000_000_000
	round := func(n int, lsn int64) {
		msgs := make([]kafka.Message, records)
		for i := range msgs {
			op := "c"
			if n > 1 {
				op = "u"
			}
			msgs[i] = change("id", fmt.Sprint(i), op, lsn, t0+lsn, map[string]any{"notes": fmt.Sprintf("round %d of %d", n, i)})
		}
		e.produce(crmTopic, msgs...)
	}
	round(1, 10)
	readApplies(t, e.brokers, "contacts.apply.billing", records)

	masters, err := cluster.Masters(context.Background())
	if err != nil || len(masters) != 3 {
		t.Fatalf("masters = %v, %v", masters, err)
	}
	cluster.Kill(t, masters[0])
	round(2, 20) // while the cluster fails over
	cluster.AwaitHealthy(t)
	applies := readApplies(t, e.brokers, "contacts.apply.billing", 2*records)
	seen := map[string]bool{}
	for _, a := range applies {
		seen[string(payload(t, a.Value))] = true
	}
	for i := range records {
		want := fmt.Sprintf("round 2 of %d", i)
		found := false
		for v := range seen {
			if strings.Contains(v, want) {
				found = true
			}
		}
		if !found {
			t.Errorf("record %d: no apply of %q after the failover", i, want)
		}
	}

	// The review loop on the cluster: a conflict waits, a reviewer resolves it, the
	// decision comes back through the review topic and is applied.
	e.produceTo(crmTopic, 1, change("id", "r", "c", 1, t0, map[string]any{"notes": "crm", "phone": "1"}))
	e.produceTo(billingTopic, 1, change("cust_id", "r", "c", 1, t0+100, map[string]any{"notes": "billing", "phone": "1", "updated_at": t0 + 100}))
	var entry *dlq.Entry
	testenv.Eventually(t, "the DLQ entry", func() bool {
		entries, err := e.dlq.List(context.Background(), dlq.Filter{Status: dlq.StatusPending})
		if err == nil && len(entries) == 1 {
			entry = entries[0]
		}
		return entry != nil
	})
	svc := dlq.NewService(e.dlq, []string{"notes", "phone"}, nil)
	if _, err := svc.Resolve(context.Background(), dlq.Resolution{
		EntryID: entry.ID, Rev: entry.Rev, Fields: map[string]string{"notes": "billing"}, Reviewer: "ann",
	}); err != nil {
		t.Fatal(err)
	}
	if err := pipeline.DrainOutbox(context.Background(), e.cfg, e.dlq, e.producer); err != nil {
		t.Fatal(err)
	}
	readAll(t, e.brokers, "contacts.apply.crm", func(ms []kafka.Message) bool {
		for _, m := range ms {
			if header(m, "concord.rule") == "review" && strings.Contains(string(m.Value), `"billing"`) {
				return true
			}
		}
		return false
	})
}
