package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// validYAML is a small valid configuration that the Validate cases break one way each.
const validYAML = `
name: contacts
systems:
  crm:
    topic: crm.public.contacts
    key: [id]
    fields: {email: email_address}
  billing:
    topic: billing.public.customers
    key: [id]
    timestamp: updated_at
    fields: {name: full_name}
authority:
  email: crm
  name: crm
  notes: shared
`

func mustParse(t *testing.T, yaml string) *Config {
	t.Helper()
	c, err := Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

// wantProblems checks that err lists exactly the wanted problems, each written as
// "key: part of the message".
func wantProblems(t *testing.T, err error, want ...string) {
	t.Helper()
	var invalid *ValidationError
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("want no problems, got %v", err)
		}
		return
	}
	if !errors.As(err, &invalid) {
		t.Fatalf("want a *ValidationError, got %v", err)
	}
	if len(invalid.Problems) != len(want) {
		t.Fatalf("want %d problems, got %d:\n%s", len(want), len(invalid.Problems), problemLines(invalid))
	}
	for i, w := range want {
		key, msg, _ := strings.Cut(w, ": ")
		if p := invalid.Problems[i]; p.Key != key || !strings.Contains(p.Msg, msg) {
			t.Errorf("problem %d = %q, want key %q with %q", i, p.Error(), key, msg)
		}
	}
}

func problemLines(e *ValidationError) string {
	var b strings.Builder
	for _, p := range e.Problems {
		b.WriteString(p.Error() + "\n")
	}
	return b.String()
}

func TestValidateAcceptsValidConfig(t *testing.T) {
	wantProblems(t, mustParse(t, validYAML).Validate())
}

func TestValidateRules(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   []string
	}{
		{"missing name", func(c *Config) { c.Name = "" }, []string{"name: required"}},
		{"name not usable in topics", func(c *Config) { c.Name = "my contacts" }, []string{`name: "my contacts" may contain only letters`}},
		{"name with a colon", func(c *Config) { c.Name = "a:b" }, []string{`name: "a:b" may contain only`}},
		{"heartbeat too close to the session timeout", func(c *Config) {
			c.Kafka.SessionTimeout, c.Kafka.HeartbeatInterval = Duration{6 * time.Second}, Duration{3 * time.Second}
		}, []string{"kafka.heartbeat_interval: 3s is more than a third of kafka.session_timeout (6s)"}},
		{"session timeout not positive", func(c *Config) { c.Kafka.SessionTimeout = Duration{-time.Second} }, []string{"kafka.session_timeout: must be positive"}},
		{"standalone with several addresses", func(c *Config) { c.Redis.Addrs = []string{"a:1", "b:1"} }, []string{"redis.addrs: 2 addresses in standalone mode"}},
		{"tiny message limit", func(c *Config) { c.Kafka.MaxMessageBytes = 10 }, []string{"kafka.max_message_bytes: must be at least 1024 (got 10)"}},
		{"unknown log level", func(c *Config) { c.Log.Level = "verbose" }, []string{`log.level: "verbose" is not one of: debug, info, warn, error`}},
		{"unknown log format", func(c *Config) { c.Log.Format = "xml" }, []string{`log.format: "xml" is not one of: auto, json, text`}},
		{"unknown redis mode", func(c *Config) { c.Redis.Mode = "replicated" }, []string{`redis.mode: "replicated" is not one of: standalone, cluster, sentinel`}},
		{"sentinel without master", func(c *Config) { c.Redis.Mode = RedisSentinel }, []string{"redis.master_name: required with redis.mode: sentinel"}},
		{"cluster with a database", func(c *Config) { c.Redis.Mode, c.Redis.DB = RedisCluster, 3 }, []string{"redis.db: a Redis Cluster has database 0 only"}},
		{"master name outside sentinel", func(c *Config) { c.Redis.MasterName = "m" }, []string{"redis.master_name: is for redis.mode: sentinel"}},
		{"client cert without key", func(c *Config) { c.Redis.TLS.CertFile = "c.pem" }, []string{"redis.tls.cert_file: a client certificate needs both"}},
		{"sasl without mechanism", func(c *Config) { c.Kafka.SASL.Username = "u" }, []string{"kafka.sasl.mechanism: required"}},
		{"unknown sasl mechanism", func(c *Config) {
			c.Kafka.SASL = SASL{Mechanism: "gssapi", Username: "u", PasswordFile: "p"}
		}, []string{`kafka.sasl.mechanism: "gssapi" is not one of: plain`}},
		{"sasl without user or password", func(c *Config) { c.Kafka.SASL.Mechanism = SASLScramSHA512 }, []string{
			"kafka.sasl.username: required", "kafka.sasl.password_file: the SASL password",
		}},
		{"no brokers", func(c *Config) { c.Kafka.Brokers = nil }, []string{"kafka.brokers: required (set it in the file or with CONCORD_KAFKA_BROKERS)"}},
		{"empty broker", func(c *Config) { c.Kafka.Brokers = []string{"k:9092", " "} }, []string{"kafka.brokers[1]: empty broker address"}},
		{"no redis addr", func(c *Config) { c.Redis.Addr = "" }, []string{"redis.addr: required"}},
		{"negative redis db", func(c *Config) { c.Redis.DB = -1 }, []string{"redis.db: must not be negative"}},
		{"one system", func(c *Config) {
			delete(c.Systems, "billing")
			c.Authority = nil
		}, []string{"systems: need at least two systems to sync, found 1"}},
		{"bad system name", func(c *Config) { renameSystem(c, "billing", "bill ing") }, []string{`systems.bill ing: system name "bill ing" may contain only`}},
		{"system named shared", func(c *Config) { renameSystem(c, "billing", "shared") }, []string{`systems.shared: "shared" cannot be a system name`}},
		{"no topic", func(c *Config) { c.Systems["crm"].Topic = "" }, []string{"systems.crm.topic: required"}},
		{"same topic twice", func(c *Config) { c.Systems["billing"].Topic = "crm.public.contacts" }, []string{
			`systems.billing.topic: "crm.public.contacts" is also the topic of systems.crm`,
		}},
		{"same apply topic twice", func(c *Config) { c.Systems["billing"].Apply.Topic = "contacts.apply.crm" }, []string{
			`systems.billing.apply.topic: "contacts.apply.crm" is also the apply topic of systems.crm`,
		}},
		{"apply topic is an input topic", func(c *Config) { c.Systems["crm"].Apply.Topic = "billing.public.customers" }, []string{
			`systems.crm.apply.topic: "billing.public.customers" is the input topic of systems.billing; concord would read its own applies and loop`,
		}},
		{"apply topic is own input topic", func(c *Config) { c.Systems["crm"].Apply.Topic = "crm.public.contacts" }, []string{
			`systems.crm.apply.topic: "crm.public.contacts" is the input topic of systems.crm`,
		}},
		{"apply topic is the poison topic", func(c *Config) { c.Systems["crm"].Apply.Topic = "contacts.poison" }, []string{
			`systems.crm.apply.topic: "contacts.poison" is reserved`,
		}},
		{"empty apply topic", func(c *Config) { c.Systems["crm"].Apply.Topic = "" }, []string{"systems.crm.apply.topic: required"}},
		{"missing key", func(c *Config) { c.Systems["crm"].Key = nil }, []string{"systems.crm.key: required"}},
		{"different keys", func(c *Config) { c.Systems["billing"].Key = []string{"customer_id"} }, []string{
			"systems.billing.key: [customer_id] differs from systems.crm.key [id]",
		}},
		{"same key fields in another order", func(c *Config) {
			c.Systems["crm"].Key = []string{"tenant", "id"}
			c.Systems["billing"].Key = []string{"id", "tenant"}
		}, []string{"systems.billing.key: [id, tenant] differs from systems.crm.key [tenant, id]"}},
		{"key field twice", func(c *Config) { c.Systems["crm"].Key = []string{"id", "id"} }, []string{`systems.crm.key[1]: "id" is listed twice`}},
		{"empty key field", func(c *Config) { c.Systems["crm"].Key = []string{""} }, []string{"systems.crm.key[0]: empty field name"}},
		{"column mapped twice", func(c *Config) { c.Systems["crm"].Fields["mail"] = "email_address" }, []string{
			`systems.crm.fields.mail: column "email_address" is also mapped from systems.crm.fields.email`,
		}},
		{"empty column", func(c *Config) { c.Systems["crm"].Fields["phone"] = "" }, []string{"systems.crm.fields.phone: empty column name"}},
		{"timestamp is the key column", func(c *Config) { c.Systems["billing"].Timestamp = "id" }, []string{
			`systems.billing.timestamp: "id" is a key column`,
		}},
		{"timestamp is the mapped key column", func(c *Config) {
			c.Systems["billing"].Fields["id"] = "customer_id"
			c.Systems["billing"].Timestamp = "customer_id"
		}, []string{`systems.billing.timestamp: "customer_id" is a key column`}},
		{"empty timestamp", func(c *Config) { c.Systems["billing"].Timestamp = "" }, []string{"systems.billing.timestamp: must not be empty"}},
		{"other source timestamp", func(c *Config) { c.Systems["crm"].Timestamp = "source.ts_us" }, []string{
			`systems.crm.timestamp: "source.ts_us": of the source block only source.ts_ms is supported`,
		}},
		{"origin marker is the key", func(c *Config) { c.Systems["crm"].OriginMarker = "id" }, []string{`systems.crm.origin_marker: "id" is a key column`}},
		{"origin marker is the timestamp", func(c *Config) { c.Systems["billing"].OriginMarker = "updated_at" }, []string{
			`systems.billing.origin_marker: "updated_at" is also the timestamp column`,
		}},
		{"authority names no system", func(c *Config) { c.Authority["email"] = "crmm" }, []string{
			`authority.email: "crmm" is not a system (billing, crm) or "shared"`,
		}},
		{"authority on a key field", func(c *Config) { c.Authority["id"] = "crm" }, []string{`authority.id: "id" is a key field`}},
		{"authority on a timestamp column", func(c *Config) { c.Authority["updated_at"] = Shared }, []string{
			`authority.updated_at: "updated_at" is the timestamp column of systems.billing`,
		}},
		{"bad envelope", func(c *Config) { c.Systems["crm"].Envelope = "avro" }, []string{`systems.crm.envelope: "avro" is not one of: debezium, unwrapped`}},
		{"bad apply format", func(c *Config) { c.Systems["crm"].Apply.Format = "csv" }, []string{`systems.crm.apply.format: "csv" is not one of: debezium, flat`}},
		{"bad column type", func(c *Config) { c.Systems["crm"].Columns = map[string]string{"balance": "decimal(2"} }, []string{
			`systems.crm.columns.balance: column type "decimal(2": want decimal(P,S) or decimal(S)`,
		}},
		{"bad sink", func(c *Config) { c.Systems["crm"].Apply.Sink = "jdbc" }, []string{`systems.crm.apply.sink: "jdbc" is not one of: debezium, confluent`}},
		{"confluent reads flat only", func(c *Config) { c.Systems["crm"].Apply.Sink = SinkConfluent }, []string{
			"systems.crm.apply.sink: the Confluent JDBC sink reads format flat only (it has no Debezium change-event support); format is debezium",
		}},
		{"column types", func(c *Config) {
			c.Systems["crm"].Columns = map[string]string{"balance": "decimal(12,2)", "renewed": "zoned_timestamp", "meta": "json"}
		}, nil},
		{"bad granularity", func(c *Config) { c.Resolution.Granularity = "row" }, []string{`resolution.granularity: "row" is not one of: field, record`}},
		{"bad deletes", func(c *Config) { c.Resolution.Deletes = "keep" }, []string{`resolution.deletes: "keep" is not one of: review, delete_wins, update_wins`}},
		{"bad unmapped_fields", func(c *Config) { c.Resolution.UnmappedFields = "sync" }, []string{`resolution.unmapped_fields: "sync" is not one of: skip, shared`}},
		{"negative durations", func(c *Config) {
			r := &c.Resolution
			r.ClockSkewTolerance.Duration = -time.Second
			r.PairWindow.Duration = -time.Second
			r.TombstoneRetention.Duration = -time.Hour
		}, []string{
			"resolution.clock_skew_tolerance: must not be negative (got -1s)",
			"resolution.pair_window: must not be negative",
			"resolution.tombstone_retention: must not be negative (got -1h)",
		}},
		{"zero apply timeout and window", func(c *Config) {
			c.Resolution.ApplyTimeout.Duration = 0
			c.Resolution.LoopGuard.Window.Duration = -time.Minute
		}, []string{"resolution.apply_timeout: must be positive (got 0s)", "resolution.loop_guard.window: must be positive (got -1m)"}},
		{"max applies below one", func(c *Config) { c.Resolution.LoopGuard.MaxApplies = 0 }, []string{"resolution.loop_guard.max_applies: must be at least 1 (got 0)"}},
		{"initial_load_prefer unknown", func(c *Config) { c.Resolution.InitialLoadPrefer = "erp" }, []string{
			`resolution.initial_load_prefer: "erp" is not a system (billing, crm)`,
		}},
		{"override with one system", func(c *Config) { addOverride(c, "crm") }, []string{
			"resolution.clock_skew_overrides[0].systems: must name exactly two systems, found 1",
		}},
		{"override with an unknown system", func(c *Config) { addOverride(c, "crm", "erp") }, []string{
			`resolution.clock_skew_overrides[0].systems: "erp" is not a system (billing, crm)`,
		}},
		{"override with the same system twice", func(c *Config) { addOverride(c, "crm", "crm") }, []string{
			"resolution.clock_skew_overrides[0].systems: names crm twice",
		}},
		{"override pair twice", func(c *Config) {
			addOverride(c, "crm", "billing")
			addOverride(c, "billing", "crm")
		}, []string{"resolution.clock_skew_overrides[1].systems: the pair billing/crm is already set by resolution.clock_skew_overrides[0]"}},
		{"negative override", func(c *Config) {
			addOverride(c, "crm", "billing")
			c.Resolution.ClockSkewOverrides[0].Tolerance.Duration = -time.Second
		}, []string{"resolution.clock_skew_overrides[0].tolerance: must not be negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, validYAML)
			tt.mutate(c)
			wantProblems(t, c.Validate(), tt.want...)
		})
	}
}

func renameSystem(c *Config, from, to string) {
	s := c.Systems[from]
	delete(c.Systems, from)
	s.Name = to
	c.Systems[to] = s
	for field, owner := range c.Authority {
		if owner == from {
			c.Authority[field] = to
		}
	}
}

func addOverride(c *Config, systems ...string) {
	o := SkewOverride{Systems: systems, Tolerance: Duration{time.Second}}
	c.Resolution.ClockSkewOverrides = append(c.Resolution.ClockSkewOverrides, o)
}

func TestValidateReportsEveryProblemWithLines(t *testing.T) {
	c := mustParse(t, `
name: bad name
systems:
  crm:
    topic: t
    key: [id]
  billing:
    topic: t
authority:
  email: crmm
`)
	err := c.Validate()
	wantProblems(t, err,
		`name: "bad name" may contain only`,
		"systems.billing.key: required",
		`systems.billing.topic: "t" is also the topic of systems.crm`,
		`authority.email: "crmm" is not a system (billing, crm) or "shared"`,
	)
	var invalid *ValidationError
	errors.As(err, &invalid)
	wantLines := []int{2, 7, 8, 10} // a missing key points at its parent
	for i, p := range invalid.Problems {
		if p.Line != wantLines[i] {
			t.Errorf("%s: line %d, want %d", p.Key, p.Line, wantLines[i])
		}
	}
	var one Problem
	if !errors.As(err, &one) || one.Key != "name" {
		t.Errorf("errors.As(err, &Problem) = %v, want the first problem", one)
	}
}

func TestValidateFileErrors(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"invalid.yaml", []string{
			`name: "contacts app" may contain only`,
			`systems.crm.fields.mail: column "email_address" is also mapped from systems.crm.fields.email`,
			`systems.billing.topic: "crm.public.contacts" is also the topic of systems.crm`,
			"systems.billing.key: [customer_id] differs from systems.crm.key [id]",
			`systems.billing.timestamp: "customer_id" is a key column`,
			`resolution.granularity: "rows" is not one of: field, record`,
			"resolution.loop_guard.max_applies: must be at least 1 (got 0)",
			`authority.email: "crmm" is not a system (billing, crm) or "shared"`,
			`authority.id: "id" is a key field`,
		}},
		{"unknown-keys.yaml", []string{
			`kafka.broker: unknown key, did you mean "brokers"?`,
			`systems.crm.fieldz: unknown key, did you mean "fields"?`,
			`systems.crm.apply.formt: unknown key, did you mean "format"?`,
			`resolution.pair_window: "5 minutes" is not a duration`,
			`resolution.loop_guard.windows: unknown key, did you mean "window"?`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := loadWithEnv(t, "../testdata/config/"+tt.file, nil)
			wantProblems(t, err, tt.want...)
		})
	}
}
