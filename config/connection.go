package config

import (
	"fmt"
	"os"
	"strings"
)

// Redis modes.
const (
	RedisStandalone = "standalone"
	RedisCluster    = "cluster"
	RedisSentinel   = "sentinel"
)

// SASL mechanisms for Kafka.
const (
	SASLPlain       = "plain"
	SASLScramSHA256 = "scram-sha-256"
	SASLScramSHA512 = "scram-sha-512"
)

// Environment variables of the connection settings (beside EnvKafkaBrokers,
// EnvRedisAddr and EnvRedisPassword).
const (
	EnvRedisUsername     = "CONCORD_REDIS_USERNAME"
	EnvKafkaSASLUsername = "CONCORD_KAFKA_SASL_USERNAME"
	EnvKafkaSASLPassword = "CONCORD_KAFKA_SASL_PASSWORD"
)

// TLS configures a TLS connection. It is on when Enabled is true or any file is set.
// Without CAFile the system's roots verify the server; CertFile and KeyFile are the
// client's certificate for mutual TLS. InsecureSkipVerify turns verification off
// (tests only; it is reported by Config.Warnings).
type TLS struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// On reports whether TLS is configured.
func (t TLS) On() bool {
	return t.Enabled || t.CAFile != "" || t.CertFile != "" || t.KeyFile != ""
}

// SASL configures Kafka authentication. The password comes from
// CONCORD_KAFKA_SASL_PASSWORD, else PasswordFile; it never sits in the file.
type SASL struct {
	Mechanism    string `yaml:"mechanism"` // plain, scram-sha-256 or scram-sha-512; empty for none
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	Password     string `yaml:"-"` // CONCORD_KAFKA_SASL_PASSWORD
}

// Addresses are the configured Redis addresses: addrs, or addr.
func (r *Redis) Addresses() []string {
	if len(r.Addrs) > 0 {
		return r.Addrs
	}
	if r.Addr == "" {
		return nil
	}
	return []string{r.Addr}
}

// ResolvePassword returns the Redis password: the environment's or the file's
// (CONCORD_REDIS_PASSWORD was already applied to Password), else Password.
func (r *Redis) ResolvePassword(readFile func(string) ([]byte, error)) (string, error) {
	if r.Password != "" || r.PasswordFile == "" {
		return r.Password, nil
	}
	return secretFile("redis.password_file", r.PasswordFile, readFile)
}

// ResolvePassword returns the SASL password: CONCORD_KAFKA_SASL_PASSWORD, else the
// content of password_file.
func (s *SASL) ResolvePassword(readFile func(string) ([]byte, error)) (string, error) {
	if s.Password != "" {
		return s.Password, nil
	}
	if s.PasswordFile == "" {
		return "", fmt.Errorf("kafka.sasl: no password (set %s or kafka.sasl.password_file)", EnvKafkaSASLPassword)
	}
	return secretFile("kafka.sasl.password_file", s.PasswordFile, readFile)
}

func secretFile(key, path string, readFile func(string) ([]byte, error)) (string, error) {
	if readFile == nil {
		readFile = os.ReadFile
	}
	b, err := readFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	pw := strings.TrimSpace(string(b))
	if pw == "" {
		return "", fmt.Errorf("%s: %s is empty", key, path)
	}
	return pw, nil
}

// applyConnectionEnv applies the connection settings' environment overrides.
func (c *Config) applyConnectionEnv(getenv func(string) string) {
	if v := getenv(EnvRedisUsername); v != "" {
		c.Redis.Username = v
	}
	if v := getenv(EnvKafkaSASLUsername); v != "" {
		c.Kafka.SASL.Username = v
	}
	if v := getenv(EnvKafkaSASLPassword); v != "" {
		c.Kafka.SASL.Password = v
	}
}

// connectionWarnings are the connection settings that work but should not be used.
func (c *Config) connectionWarnings() []string {
	var out []string
	if c.Redis.TLS.InsecureSkipVerify {
		out = append(out, "redis.tls.insecure_skip_verify is on: the Redis server's certificate is not verified")
	}
	if c.Kafka.TLS.InsecureSkipVerify {
		out = append(out, "kafka.tls.insecure_skip_verify is on: the brokers' certificates are not verified")
	}
	if c.Kafka.SASL.Mechanism == SASLPlain && !c.Kafka.TLS.On() {
		out = append(out, "kafka.sasl.mechanism plain without kafka.tls sends the password in clear text")
	}
	if c.Redis.Password != "" && c.src != nil && c.src.line("redis.password") > 0 {
		out = append(out, "redis.password is written in the file: prefer CONCORD_REDIS_PASSWORD or redis.password_file")
	}
	return out
}

// redisConnection checks the Redis settings.
func (v *validator) redisConnection() {
	r := &v.c.Redis
	if r.Addr != "" && len(r.Addrs) > 0 && v.c.src != nil && v.c.src.line("redis.addr") > 0 {
		v.add("redis.addrs", "set redis.addr or redis.addrs, not both")
	}
	addrs := r.Addresses()
	if len(addrs) == 0 {
		v.add("redis.addr", "required (set it in the file or with %s)", EnvRedisAddr)
	}
	for i, a := range r.Addrs {
		if strings.TrimSpace(a) == "" {
			v.add(fmt.Sprintf("redis.addrs[%d]", i), "empty address")
		}
	}
	v.checkEnum("redis.mode", r.Mode, RedisStandalone, RedisCluster, RedisSentinel)
	switch r.Mode {
	case RedisStandalone:
		if len(addrs) > 1 {
			v.add("redis.addrs", "%d addresses in standalone mode, which uses one: set redis.mode: cluster for a Redis Cluster, or sentinel (with master_name)", len(addrs))
		}
		if r.MasterName != "" {
			v.add("redis.master_name", "is for redis.mode: sentinel")
		}
	case RedisCluster:
		if r.DB != 0 {
			v.add("redis.db", "a Redis Cluster has database 0 only (got %d)", r.DB)
		}
		if r.MasterName != "" {
			v.add("redis.master_name", "is for redis.mode: sentinel")
		}
	case RedisSentinel:
		if r.MasterName == "" {
			v.add("redis.master_name", "required with redis.mode: sentinel (the master set's name, as in sentinel.conf)")
		}
	}
	if r.DB < 0 {
		v.add("redis.db", "must not be negative (got %d)", r.DB)
	}
	if r.Password != "" && r.PasswordFile != "" && v.c.src != nil && v.c.src.line("redis.password") > 0 {
		v.add("redis.password_file", "set redis.password or redis.password_file, not both")
	}
	v.tls("redis.tls", r.TLS)
}

// kafkaConnection checks the Kafka TLS and SASL settings.
func (v *validator) kafkaConnection() {
	k := &v.c.Kafka
	if k.MaxMessageBytes < 1024 {
		v.add("kafka.max_message_bytes", "must be at least 1024 (got %d)", k.MaxMessageBytes)
	}
	v.tls("kafka.tls", k.TLS)
	s := k.SASL
	if s.Mechanism == "" {
		if s.Username != "" || s.PasswordFile != "" {
			v.add("kafka.sasl.mechanism", "required when kafka.sasl has a username or password_file (plain, scram-sha-256 or scram-sha-512)")
		}
		return
	}
	v.checkEnum("kafka.sasl.mechanism", s.Mechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512)
	if s.Username == "" {
		v.add("kafka.sasl.username", "required with kafka.sasl.mechanism (or set %s)", EnvKafkaSASLUsername)
	}
	if s.Password == "" && s.PasswordFile == "" {
		v.add("kafka.sasl.password_file", "the SASL password: set %s or kafka.sasl.password_file", EnvKafkaSASLPassword)
	}
}

func (v *validator) tls(key string, t TLS) {
	if (t.CertFile == "") != (t.KeyFile == "") {
		v.add(key+".cert_file", "a client certificate needs both cert_file and key_file")
	}
}

// summarizeConnection describes how Redis and Kafka are reached, secrets left out.
func (c *Config) redisSummary() string {
	r := &c.Redis
	s := fmt.Sprintf("%s %s", r.Mode, strings.Join(r.Addresses(), ", "))
	if r.Mode == RedisSentinel {
		s += " (master " + r.MasterName + ")"
	}
	if r.Mode != RedisCluster {
		s += fmt.Sprintf(" db %d", r.DB)
	}
	if r.Username != "" {
		s += ", user " + r.Username
	}
	if r.TLS.On() {
		s += ", TLS"
	}
	return s
}

func (c *Config) kafkaSummary() string {
	k := &c.Kafka
	s := fmt.Sprintf("%s (session timeout %s, heartbeat %s", strings.Join(k.Brokers, ", "), k.SessionTimeout, k.HeartbeatInterval)
	if k.TLS.On() {
		s += ", TLS"
	}
	if k.SASL.Mechanism != "" {
		s += ", SASL " + k.SASL.Mechanism + " as " + k.SASL.Username
	}
	return s + ")"
}

// LogLevels are the values of log.level and --log-level.
var LogLevels = []string{"debug", "info", "warn", "error"}

func (v *validator) log() {
	v.checkEnum("log.level", v.c.Log.Level, LogLevels...)
	v.checkEnum("log.format", v.c.Log.Format, LogAuto, LogJSON, LogText)
}
