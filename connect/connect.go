// Package connect builds the clients of the configured Redis and Kafka: the Redis
// mode (standalone, Cluster or Sentinel), an ACL user, TLS with the operator's CA and
// client certificate, and Kafka's TLS and SASL (PLAIN, SCRAM-SHA-256/512) for the
// consumer, the producer and the admin client alike.
//
// Secrets come from the environment or files (config.Redis.ResolvePassword,
// config.SASL.ResolvePassword) and never appear in an error.
package connect

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
	"github.com/twmb/franz-go/pkg/kgo"
	franzsasl "github.com/twmb/franz-go/pkg/sasl"
	franzplain "github.com/twmb/franz-go/pkg/sasl/plain"
	franzscram "github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/concord-sync/concord/config"
)

// ReadFile reads the files the configuration names (os.ReadFile; tests replace it).
type ReadFile func(string) ([]byte, error)

// TLSConfig is the tls.Config of a TLS section, or nil when TLS is off. key names the
// section in errors.
func TLSConfig(key string, t config.TLS, readFile ReadFile) (*tls.Config, error) {
	if !t.On() {
		return nil, nil
	}
	if readFile == nil {
		readFile = os.ReadFile
	}
	c := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // opt-in, warned about by config check and run
	}
	if t.CAFile != "" {
		pem, err := readFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s.ca_file: %w", key, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s.ca_file: %s holds no PEM certificate", key, t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" {
		certPEM, err := readFile(t.CertFile)
		if err != nil {
			return nil, fmt.Errorf("%s.cert_file: %w", key, err)
		}
		keyPEM, err := readFile(t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s.key_file: %w", key, err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("%s.cert_file and key_file: %w", key, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// Redis returns a client for the configured Redis: a plain client (standalone), a
// cluster client (cluster, even with one seed address) or a Sentinel failover client.
func Redis(r config.Redis, readFile ReadFile) (redis.UniversalClient, error) {
	password, err := r.ResolvePassword(readFile)
	if err != nil {
		return nil, err
	}
	tlsConfig, err := TLSConfig("redis.tls", r.TLS, readFile)
	if err != nil {
		return nil, err
	}
	addrs := r.Addresses()
	if len(addrs) == 0 {
		return nil, errors.New("redis: no address configured")
	}
	switch r.Mode {
	case config.RedisCluster:
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: addrs, Username: r.Username, Password: password, TLSConfig: tlsConfig,
		}), nil
	case config.RedisSentinel:
		// The sentinels take the same credentials and TLS as the master: the
		// common deployment; go-redis has separate settings where they differ.
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: r.MasterName, SentinelAddrs: addrs,
			SentinelUsername: r.Username, SentinelPassword: password,
			Username: r.Username, Password: password, DB: r.DB, TLSConfig: tlsConfig,
		}), nil
	default:
		return redis.NewClient(&redis.Options{
			Addr: addrs[0], Username: r.Username, Password: password, DB: r.DB, TLSConfig: tlsConfig,
		}), nil
	}
}

// Kafka is how concord's Kafka clients reach the brokers: the consumer group and
// the replay's readers dial with Dialer, the admin client and the tools' writers use
// Transport, the pipeline's producer and partition readers (franz-go's) take
// Producer. All carry the same TLS and SASL.
type Kafka struct {
	Dialer    *kafka.Dialer
	Transport *kafka.Transport
	Producer  []kgo.Opt
}

// KafkaClients returns the dialer and transport of the configured Kafka.
func KafkaClients(k config.Kafka, readFile ReadFile) (*Kafka, error) {
	tlsConfig, err := TLSConfig("kafka.tls", k.TLS, readFile)
	if err != nil {
		return nil, err
	}
	mech, franzMech, err := saslMechanism(k.SASL, readFile)
	if err != nil {
		return nil, err
	}
	kc := &Kafka{
		Dialer:    &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true, TLS: tlsConfig, SASLMechanism: mech},
		Transport: &kafka.Transport{DialTimeout: 10 * time.Second, TLS: tlsConfig, SASL: mech},
		Producer:  []kgo.Opt{kgo.DialTimeout(10 * time.Second)},
	}
	if tlsConfig != nil {
		kc.Producer = append(kc.Producer, kgo.DialTLSConfig(tlsConfig))
	}
	if franzMech != nil {
		kc.Producer = append(kc.Producer, kgo.SASL(franzMech))
	}
	return kc, nil
}

// saslMechanism returns the configured mechanism for kafka-go and for franz-go, or
// nils when SASL is off.
func saslMechanism(s config.SASL, readFile ReadFile) (sasl.Mechanism, franzsasl.Mechanism, error) {
	if s.Mechanism == "" {
		return nil, nil, nil
	}
	password, err := s.ResolvePassword(readFile)
	if err != nil {
		return nil, nil, err
	}
	switch s.Mechanism {
	case config.SASLPlain:
		return plain.Mechanism{Username: s.Username, Password: password},
			franzplain.Auth{User: s.Username, Pass: password}.AsMechanism(), nil
	case config.SASLScramSHA256:
		m, err := scramMechanism(scram.SHA256, s.Username, password)
		return m, franzscram.Auth{User: s.Username, Pass: password}.AsSha256Mechanism(), err
	case config.SASLScramSHA512:
		m, err := scramMechanism(scram.SHA512, s.Username, password)
		return m, franzscram.Auth{User: s.Username, Pass: password}.AsSha512Mechanism(), err
	}
	return nil, nil, fmt.Errorf("kafka.sasl.mechanism: %q is not one of %s, %s, %s", s.Mechanism, config.SASLPlain, config.SASLScramSHA256, config.SASLScramSHA512)
}

func scramMechanism(algo scram.Algorithm, user, password string) (sasl.Mechanism, error) {
	m, err := scram.Mechanism(algo, user, password)
	if err != nil {
		return nil, fmt.Errorf("kafka.sasl: %w", err)
	}
	return m, nil
}
