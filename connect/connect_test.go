package connect_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/concord-sync/concord/config"
	"github.com/concord-sync/concord/connect"
	"github.com/concord-sync/concord/internal/testenv"
	"github.com/concord-sync/concord/pipeline"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func ping(t *testing.T, r config.Redis) error {
	t.Helper()
	rdb, err := connect.Redis(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rdb.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return rdb.Ping(ctx).Err()
}

// TestRedisTLS: against a real redis-server that takes TLS only and requires a
// client certificate, concord connects with the configured CA and client
// certificate, and fails without them.
func TestRedisTLS(t *testing.T) {
	certs := testenv.NewCerts(t)
	addr := testenv.RedisTLS(t, certs, true)
	full := config.Redis{Addr: addr, Mode: config.RedisStandalone, TLS: config.TLS{
		CAFile: certs.CAFile, CertFile: certs.ClientCertFile, KeyFile: certs.ClientKeyFile,
	}}
	if err := ping(t, full); err != nil {
		t.Fatalf("PING over TLS with the CA and a client certificate: %v", err)
	}
	noClientCert := full
	noClientCert.TLS.CertFile, noClientCert.TLS.KeyFile = "", ""
	if err := ping(t, noClientCert); err == nil {
		t.Error("PING without the client certificate the server requires succeeded")
	}
	noCA := full
	noCA.TLS.CAFile = ""
	if err := ping(t, noCA); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("PING without the CA: err = %v, want a certificate verification error", err)
	}
	wrongName := full
	wrongName.TLS.ServerName = "redis.example.com"
	if err := ping(t, wrongName); err == nil {
		t.Error("PING with a server name the certificate does not carry succeeded")
	}
	plain := full
	plain.TLS = config.TLS{}
	if err := ping(t, plain); err == nil {
		t.Error("a plain-text PING to a TLS-only server succeeded")
	}
}

func TestRedisModes(t *testing.T) {
	cl := testenv.RedisCluster(t)
	rdb, err := connect.Redis(config.Redis{Addr: cl.Addr, Mode: config.RedisCluster}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rdb.Close() }()
	if _, ok := rdb.(*redis.ClusterClient); !ok {
		t.Errorf("mode cluster with one seed address gave a %T, want a cluster client", rdb)
	}
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	failover, err := connect.Redis(config.Redis{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}, Mode: config.RedisSentinel, MasterName: "m"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = failover.Close()
	if _, err := connect.Redis(config.Redis{Addr: "x:1", Mode: config.RedisStandalone, PasswordFile: "/nonexistent/pw"}, nil); err == nil ||
		!strings.Contains(err.Error(), "redis.password_file") {
		t.Errorf("a missing password file: err = %v", err)
	}
}

func TestRedisACLUser(t *testing.T) {
	srv := testenv.Redis(t)
	admin := srv.Client(t)
	ctx := context.Background()
	if err := admin.Do(ctx, "ACL", "SETUSER", "concord-test", "on", ">s3cret", "~*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Do(ctx, "ACL", "DELUSER", "concord-test").Err() })
	pwFile := t.TempDir() + "/pw"
	writeFile(t, pwFile, "s3cret\n")
	if err := ping(t, config.Redis{Addr: srv.Addr, Mode: config.RedisStandalone, Username: "concord-test", PasswordFile: pwFile}); err != nil {
		t.Errorf("the ACL user with its password from a file: %v", err)
	}
	if err := ping(t, config.Redis{Addr: srv.Addr, Mode: config.RedisStandalone, Username: "concord-test", Password: "wrong"}); err == nil {
		t.Error("a wrong password was accepted")
	}
}

// TestKafkaTLSAndSASL: against kfake with SASL on and TLS, every mechanism
// produces and consumes through the dialer and transport connect builds, and a
// wrong password is refused.
func TestKafkaTLSAndSASL(t *testing.T) {
	certs := testenv.NewCerts(t)
	const user, pass = "concord", "kafka-s3cret"
	brokers := testenv.KafkaWith(t, []kfake.Opt{
		kfake.EnableSASL(), kfake.TLS(certs.ServerTLS(false)),
		kfake.Superuser("PLAIN", user, pass), kfake.Superuser("SCRAM-SHA-256", user, pass), kfake.Superuser("SCRAM-SHA-512", user, pass),
	}, 1, "t")
	for _, mech := range []string{config.SASLPlain, config.SASLScramSHA256, config.SASLScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			k := config.Kafka{Brokers: brokers, TLS: config.TLS{CAFile: certs.CAFile}, SASL: config.SASL{Mechanism: mech, Username: user, Password: pass}}
			kc, err := connect.KafkaClients(k, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), testenv.Deadline)
			defer cancel()
			w := &kafka.Writer{Addr: kafka.TCP(brokers...), Transport: kc.Transport, Topic: "t", BatchTimeout: time.Millisecond}
			defer func() { _ = w.Close() }()
			if err := w.WriteMessages(ctx, kafka.Message{Value: []byte(mech)}); err != nil {
				t.Fatalf("producing with %s over TLS: %v", mech, err)
			}
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: "t", Dialer: kc.Dialer, MaxWait: 100 * time.Millisecond})
			defer func() { _ = r.Close() }()
			if _, err := r.FetchMessage(ctx); err != nil {
				t.Fatalf("consuming with %s over TLS: %v", mech, err)
			}
			if err := produceFranz(ctx, brokers, kc.Producer, mech, testenv.Deadline); err != nil {
				t.Fatalf("producing with franz-go, %s over TLS: %v", mech, err)
			}

			k.SASL.Password = "wrong"
			bad, err := connect.KafkaClients(k, nil)
			if err != nil {
				t.Fatal(err)
			}
			client := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: bad.Transport, Timeout: 10 * time.Second}
			if _, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{"t"}}); err == nil {
				t.Error("a wrong SASL password was accepted")
			}
			if err := produceFranz(ctx, brokers, bad.Producer, mech, 2*time.Second); err == nil {
				t.Error("a wrong SASL password was accepted by the franz-go producer")
			}
		})
	}
}

// produceFranz produces one record to topic t with the pipeline's producer and opts,
// within timeout (kfake closes the connection on a wrong password, which franz-go
// retries, where a real broker's authentication error fails at once).
func produceFranz(ctx context.Context, brokers []string, opts []kgo.Opt, value string, timeout time.Duration) error {
	p, err := pipeline.NewProducer(brokers, 0, opts, zap.NewNop())
	if err != nil {
		return err
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return p.Produce(ctx, []kafka.Message{{Topic: "t", Key: []byte(value), Value: []byte(value)}})
}

func TestTLSConfigErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		tls  config.TLS
		want string
	}{
		{config.TLS{CAFile: "/nonexistent/ca.pem"}, "kafka.tls.ca_file"},
		{config.TLS{CertFile: "/nonexistent/c.pem", KeyFile: "/nonexistent/k.pem"}, "kafka.tls.cert_file"},
	} {
		if _, err := connect.TLSConfig("kafka.tls", tc.tls, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("TLSConfig(%+v) = %v, want an error naming %s", tc.tls, err, tc.want)
		}
	}
	notPEM := t.TempDir() + "/ca.pem"
	writeFile(t, notPEM, "not a certificate")
	if _, err := connect.TLSConfig("redis.tls", config.TLS{CAFile: notPEM}, nil); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("a CA file without a certificate: %v", err)
	}
	if c, err := connect.TLSConfig("redis.tls", config.TLS{}, nil); c != nil || err != nil {
		t.Errorf("TLS off: %v, %v", c, err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRedisSentinelFailover: through a real Sentinel, concord finds the master, and
// after the master's process is killed it writes to the promoted replica.
func TestRedisSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a failover")
	}
	s := testenv.RedisSentinel(t)
	rdb, err := connect.Redis(config.Redis{Addrs: []string{s.Addr}, Mode: config.RedisSentinel, MasterName: s.MasterName}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rdb.Close() }()
	ctx := context.Background()
	if err := rdb.Set(ctx, "k", "before", 0).Err(); err != nil {
		t.Fatalf("writing through the sentinel: %v", err)
	}
	s.KillMaster()
	deadline := time.Now().Add(testenv.Deadline)
	for {
		err := rdb.Set(ctx, "k", "after", 0).Err()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write after the failover: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if v, err := rdb.Get(ctx, "k").Result(); err != nil || v != "after" {
		t.Errorf("after the failover k = %q, %v", v, err)
	}
}
