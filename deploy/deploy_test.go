package deploy_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/concord-sync/concord/codecs"
	"github.com/concord-sync/concord/config"
)

// root is the repository root: tests run in the deploy directory.
const root = ".."

// Paths inside the repository.
const (
	composePath     = "docker-compose.yml"
	dockerfilePath  = "Dockerfile"
	dockerignore    = ".dockerignore"
	concordConfig   = "deploy/concord/concord.yaml"
	connectDir      = "deploy/connect"
	prometheusDir   = "deploy/prometheus"
	dashboardsDir   = "deploy/grafana/dashboards"
	dashboardPath   = "deploy/grafana/dashboards/concord.json"
	datasourcesPath = "deploy/grafana/provisioning/datasources/prometheus.yml"
	providersPath   = "deploy/grafana/provisioning/dashboards/concord.yml"
)

// metricKind says how a metric concord exposes may be named in a query: a classic
// histogram only through its _bucket, _sum and _count series.
type metricKind int

const (
	plain metricKind = iota
	histogram
)

// concordMetrics are the metrics concord exposes on /metrics (DESIGN.md section 6
// and the pipeline and DLQ collectors). Rules and dashboards may use no other
// concord_ name, apart from the recording rules of rules.yml.
var concordMetrics = map[string]metricKind{
	"concord_events_total":                     plain,
	"concord_decisions_total":                  plain,
	"concord_conflicts_total":                  plain,
	"concord_echoes_total":                     plain,
	"concord_duplicates_total":                 plain,
	"concord_poison_total":                     plain,
	"concord_unmapped_fields_total":            plain,
	"concord_batch_seconds":                    histogram,
	"concord_batch_stage_seconds":              histogram,
	"concord_sync_lag_seconds":                 histogram,
	"concord_consumer_lag":                     plain,
	"concord_records":                          plain,
	"concord_parity_drift_records":             plain,
	"concord_clock_offset_seconds":             plain,
	"concord_clock_offset_uncertainty_seconds": plain,
	"concord_dlq_depth":                        plain,
	"concord_dlq_oldest_age_seconds":           plain,
	"concord_dlq_conflict_rate_per_1000":       plain,
	"concord_pattern_field_conflicts":          plain,
	"concord_pattern_system_losses":            plain,
	"concord_pattern_authority_suggestion":     plain,
	"concord_config_reloads_total":             plain,
	"concord_fenced_total":                     plain,
	"concord_batch_retries_total":              plain,
}

const conflictRateRule = "concord:conflicts_per_1000_events:rate5m"

// The alerts DESIGN.md section 6 asks for.
var requiredAlerts = []string{
	"ConcordConflictRateDoubled",
	"ConcordDLQDepthHigh",
	"ConcordDLQOldestTooOld",
	"ConcordSyncLagHigh",
	"ConcordParityDrift",
	"ConcordPoisonMessages",
}

// ---- docker-compose.yml ----

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string                      `yaml:"image"`
	Build       any                         `yaml:"build"`
	Command     any                         `yaml:"command"` // a string or a list
	Entrypoint  any                         `yaml:"entrypoint"`
	Environment map[string]string           `yaml:"environment"`
	Ports       []string                    `yaml:"ports"`
	Volumes     []string                    `yaml:"volumes"`
	DependsOn   map[string]composeCondition `yaml:"depends_on"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
}

type composeCondition struct {
	Condition string `yaml:"condition"`
}

// mount is one entry of a service's volumes: a bind mount of a path in the
// repository, or a named volume.
type mount struct {
	source, target string
	bind           bool
}

func (s composeService) mounts(t *testing.T) []mount {
	t.Helper()
	var ms []mount
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || len(parts) > 3 {
			t.Fatalf("volume %q: want SOURCE:TARGET[:MODE]", v)
		}
		bind := strings.HasPrefix(parts[0], ".") || strings.HasPrefix(parts[0], "/")
		ms = append(ms, mount{source: parts[0], target: parts[1], bind: bind})
	}
	return ms
}

// mountedAt returns the repository path bound at target in the service's container.
func (s composeService) mountedAt(t *testing.T, target string) (string, bool) {
	t.Helper()
	for _, m := range s.mounts(t) {
		if m.bind && m.target == target {
			return filepath.Clean(m.source), true
		}
	}
	return "", false
}

// targetOf returns where the repository path source is bound in the container.
func (s composeService) targetOf(t *testing.T, source string) (string, bool) {
	t.Helper()
	for _, m := range s.mounts(t) {
		if m.bind && filepath.Clean(m.source) == filepath.Clean(source) {
			return m.target, true
		}
	}
	return "", false
}

// words returns a command or entrypoint as a list of words.
func words(t *testing.T, v any) []string {
	t.Helper()
	switch v := v.(type) {
	case nil:
		return nil
	case string:
		return strings.Fields(v)
	case []any:
		out := make([]string, len(v))
		for i, w := range v {
			s, ok := w.(string)
			if !ok {
				t.Fatalf("command word %v is not a string", w)
			}
			out[i] = s
		}
		return out
	default:
		t.Fatalf("command %v: want a string or a list", v)
		return nil
	}
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	data := readFile(t, composePath)
	var c composeFile
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("%s: %v", composePath, err)
	}
	return c
}

func (c composeFile) service(t *testing.T, name string) composeService {
	t.Helper()
	s, ok := c.Services[name]
	if !ok {
		t.Fatalf("%s: no service %q", composePath, name)
	}
	return s
}

func TestComposeServices(t *testing.T) {
	var top map[string]any
	if err := yaml.Unmarshal(readFile(t, composePath), &top); err != nil {
		t.Fatalf("%s: %v", composePath, err)
	}
	if _, ok := top["version"]; ok {
		t.Errorf("%s: the compose specification has no top-level version key; remove it", composePath)
	}

	c := loadCompose(t)
	for _, name := range []string{"kafka", "kafka-init", "connect", "connect-init", "crm", "billing", "redis", "concord", "prometheus", "grafana"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("no service %q", name)
		}
	}
	images := map[string]string{
		"kafka":        "apache/kafka:",
		"connect":      "quay.io/debezium/connect:",
		"crm":          "postgres:16",
		"billing":      "postgres:16",
		"connect-init": "curlimages/curl:",
	}
	for name, prefix := range images {
		if img := c.service(t, name).Image; !strings.HasPrefix(img, prefix) {
			t.Errorf("services.%s.image = %q, want %s...", name, img, prefix)
		}
	}
	for _, db := range []string{"crm", "billing"} {
		want := []string{"postgres", "-c", "wal_level=logical"}
		if got := words(t, c.service(t, db).Command); !slices.Equal(got, want) {
			t.Errorf("services.%s.command = %q, want %q (Debezium needs logical decoding)", db, got, want)
		}
	}
	if got := strings.Join(words(t, c.service(t, "redis").Command), " "); !strings.Contains(got, "redis-server --appendonly yes") {
		t.Errorf("services.redis.command = %q, want redis-server --appendonly yes (AOF: the state store must survive a restart)", got)
	}
	if got := strings.Join(words(t, c.service(t, "redis").Command), " "); !strings.Contains(got, "--hash-max-listpack-value 1024") {
		t.Errorf("services.redis.command = %q, want --hash-max-listpack-value 1024 (state buckets as listpacks, README)", got)
	}
	concord := c.service(t, "concord")
	if concord.Build == nil {
		t.Error("services.concord: want build (the Dockerfile at the root)")
	}
	wantCmd := []string{"run", "--config", "/etc/concord/concord.yaml", "--http", "0.0.0.0:8080"}
	if got := words(t, concord.Command); !slices.Equal(got, wantCmd) {
		t.Errorf("services.concord.command = %q, want %q", got, wantCmd)
	}
	if v := concord.Environment[config.EnvHTTPToken]; !regexp.MustCompile(`^\$\{` + config.EnvHTTPToken + `:-.+\}$`).MatchString(v) {
		t.Errorf("services.concord.environment.%s = %q, want ${%[1]s:-a local default}", config.EnvHTTPToken, v)
	}

	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		if s.Image != "" && (!strings.Contains(path.Base(s.Image), ":") || strings.HasSuffix(s.Image, ":latest")) {
			t.Errorf("services.%s.image = %q: pin a version", name, s.Image)
		}
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("services.%s.ports %q: publish on 127.0.0.1 only", name, p)
			}
		}
		for _, dep := range sortedKeys(s.DependsOn) {
			target, ok := c.Services[dep]
			switch cond := s.DependsOn[dep].Condition; {
			case !ok:
				t.Errorf("services.%s.depends_on: no service %q", name, dep)
			case cond == "service_healthy" && target.Healthcheck == nil:
				t.Errorf("services.%s waits for %s to be healthy, but %[2]s has no healthcheck", name, dep)
			}
		}
	}
}

func TestComposeMountsExist(t *testing.T) {
	c := loadCompose(t)
	for _, name := range sortedKeys(c.Services) {
		for _, m := range c.Services[name].mounts(t) {
			if !m.bind {
				if _, ok := c.Volumes[m.source]; !ok {
					t.Errorf("services.%s mounts volume %q, which is not declared under volumes", name, m.source)
				}
				continue
			}
			if _, err := os.Stat(filepath.Join(root, m.source)); err != nil {
				t.Errorf("services.%s mounts %s: %v", name, m.source, err)
			}
		}
	}
	for _, db := range []string{"crm", "billing"} {
		want := "deploy/postgres/" + db + "/init.sql"
		if got, ok := c.service(t, db).mountedAt(t, "/docker-entrypoint-initdb.d/init.sql"); !ok || got != want {
			t.Errorf("services.%s: /docker-entrypoint-initdb.d/init.sql is %q, want %s", db, got, want)
		}
	}
	if got, ok := c.service(t, "concord").mountedAt(t, "/etc/concord/concord.yaml"); !ok || got != concordConfig {
		t.Errorf("services.concord: /etc/concord/concord.yaml is %q, want %s", got, concordConfig)
	}
}

// ---- concord's configuration ----

func loadConcord(t *testing.T) *config.Config {
	t.Helper()
	// The file must be valid on its own, whatever the test's environment says.
	for _, env := range []string{config.EnvKafkaBrokers, config.EnvRedisAddr, config.EnvRedisPassword, config.EnvHTTPToken} {
		t.Setenv(env, "")
	}
	cfg, err := config.Load(filepath.Join(root, concordConfig))
	if err != nil {
		t.Fatalf("config.Load(%s): %v", concordConfig, err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("%s: Validate: %v", concordConfig, err)
	}
	return cfg
}

func TestConcordConfig(t *testing.T) {
	cfg := loadConcord(t)
	c := loadCompose(t)

	if !slices.Equal(cfg.Kafka.Brokers, []string{"kafka:9092"}) {
		t.Errorf("kafka.brokers = %q, want [kafka:9092] (the compose network)", cfg.Kafka.Brokers)
	}
	if adv := c.service(t, "kafka").Environment["KAFKA_ADVERTISED_LISTENERS"]; !strings.Contains(adv, "://kafka:9092") {
		t.Errorf("kafka advertises %q; concord connects to kafka:9092", adv)
	}
	if host, _, _ := strings.Cut(cfg.Redis.Addr, ":"); host != "redis" {
		t.Errorf("redis.addr = %q, want the compose service redis", cfg.Redis.Addr)
	}
	wantAuthority := map[string]string{
		"email": "crm", "name": "crm", "payment_status": "billing", "notes": config.Shared, "phone": config.Shared,
	}
	for field, owner := range wantAuthority {
		if got := cfg.Authority[field]; got != owner {
			t.Errorf("authority.%s = %q, want %q", field, got, owner)
		}
	}
	concord := c.service(t, "concord")
	for _, user := range sortedKeys(cfg.HTTP.Users) {
		u := cfg.HTTP.Users[user]
		if u.PasswordEnv == "" {
			t.Errorf("http.users.%s: want password_env (secrets come from the environment)", user)
		} else if _, ok := concord.Environment[u.PasswordEnv]; !ok {
			t.Errorf("http.users.%s.password_env %s is not set in services.concord.environment", user, u.PasswordEnv)
		}
	}
	if len(cfg.HTTP.Users) == 0 {
		t.Error("http.users: want at least one reviewer")
	}
}

// ---- Kafka Connect connectors ----

type connector struct {
	name string
	cfg  map[string]string
}

func (c connector) get(t *testing.T, key string) string {
	t.Helper()
	v, ok := c.cfg[key]
	if !ok {
		t.Fatalf("%s: no %s", c.name, key)
	}
	return v
}

func (c connector) expect(t *testing.T, key, want string) {
	t.Helper()
	if got := c.cfg[key]; got != want {
		t.Errorf("%s: %s = %q, want %q", c.name, key, got, want)
	}
}

func loadConnectors(t *testing.T) (sources, sinks []connector) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, connectDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no connector configs in %s (%v)", connectDir, err)
	}
	for _, f := range files {
		var cfg map[string]string
		if err := json.Unmarshal(readFile(t, filepath.Join(connectDir, filepath.Base(f))), &cfg); err != nil {
			t.Fatalf("%s: want a JSON object of strings (PUT /connectors/NAME/config): %v", f, err)
		}
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		if cfg["name"] != name {
			t.Errorf("%s: name %q, want the file's base name %q (register.sh PUTs to /connectors/<base name>/config)", f, cfg["name"], name)
		}
		c := connector{name: name, cfg: cfg}
		switch class := cfg["connector.class"]; class {
		case "io.debezium.connector.postgresql.PostgresConnector":
			sources = append(sources, c)
		case "io.debezium.connector.jdbc.JdbcSinkConnector":
			sinks = append(sinks, c)
		default:
			t.Errorf("%s: unexpected connector.class %q", f, class)
		}
	}
	return sources, sinks
}

// table is a CREATE TABLE of an init.sql.
type table struct {
	columns    []string
	primaryKey []string
	replicaIDs string // REPLICA IDENTITY, when the script sets one
}

var (
	createTableRE = regexp.MustCompile(`(?is)CREATE TABLE\s+([\w.]+)\s*\((.*?)\n\);`)
	replicaRE     = regexp.MustCompile(`(?i)ALTER TABLE\s+([\w.]+)\s+REPLICA IDENTITY\s+(\w+)`)
)

// parseTables reads the tables an init.sql creates, by qualified name (public.x).
func parseTables(t *testing.T, file string) map[string]*table {
	t.Helper()
	sql := string(readFile(t, file))
	tables := map[string]*table{}
	for _, m := range createTableRE.FindAllStringSubmatch(sql, -1) {
		tb := &table{}
		for line := range strings.SplitSeq(m[2], "\n") {
			line = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(line), ","))
			fields := strings.Fields(line)
			if len(fields) < 2 || strings.HasPrefix(line, "--") {
				continue
			}
			if up := strings.ToUpper(fields[0]); up == "PRIMARY" || up == "CONSTRAINT" || up == "UNIQUE" {
				t.Fatalf("%s: write the primary key inline (column ... PRIMARY KEY) so this test can read it", file)
			}
			tb.columns = append(tb.columns, fields[0])
			if strings.Contains(strings.ToUpper(line), "PRIMARY KEY") {
				tb.primaryKey = append(tb.primaryKey, fields[0])
			}
		}
		tables[qualify(m[1])] = tb
	}
	for _, m := range replicaRE.FindAllStringSubmatch(sql, -1) {
		if tb, ok := tables[qualify(m[1])]; ok {
			tb.replicaIDs = strings.ToUpper(m[2])
		}
	}
	return tables
}

func qualify(name string) string {
	if !strings.Contains(name, ".") {
		return "public." + name
	}
	return name
}

// kafkaInitTopics returns the topics the kafka-init service creates and their
// partition count.
func kafkaInitTopics(t *testing.T, c composeFile) ([]string, int) {
	t.Helper()
	script := strings.Join(words(t, c.service(t, "kafka-init").Command), " ")
	m := regexp.MustCompile(`for topic in ([^;]+);`).FindStringSubmatch(script)
	p := regexp.MustCompile(`--partitions (\d+)`).FindStringSubmatch(script)
	if m == nil || p == nil {
		t.Fatalf("services.kafka-init.command: want `for topic in ...; do kafka-topics.sh --create ... --partitions N`, got %q", script)
	}
	n, _ := strconv.Atoi(p[1])
	var topics []string
	for _, w := range strings.Fields(m[1]) {
		if w != `\` {
			topics = append(topics, w)
		}
	}
	return topics, n
}

func TestConnectorsMatchConcordConfig(t *testing.T) {
	cfg := loadConcord(t)
	c := loadCompose(t)
	sources, sinks := loadConnectors(t)
	initTopics, partitions := kafkaInitTopics(t, c)
	connect := c.service(t, "connect")

	// Every ${env:X} a connector reads must be set on the Connect worker, whose
	// config provider "env" must be configured.
	if connect.Environment["CONNECT_CONFIG_PROVIDERS"] != "env" ||
		connect.Environment["CONNECT_CONFIG_PROVIDERS_ENV_CLASS"] != "org.apache.kafka.common.config.provider.EnvVarConfigProvider" {
		t.Error("services.connect: configure the env config provider (CONNECT_CONFIG_PROVIDERS, CONNECT_CONFIG_PROVIDERS_ENV_CLASS)")
	}
	envRef := regexp.MustCompile(`\$\{env:(\w+)\}`)
	for _, cn := range slices.Concat(sources, sinks) {
		for _, key := range sortedKeys(cn.cfg) {
			for _, m := range envRef.FindAllStringSubmatch(cn.cfg[key], -1) {
				if _, ok := connect.Environment[m[1]]; !ok {
					t.Errorf("%s: %s reads ${env:%s}, which services.connect.environment does not set", cn.name, key, m[1])
				}
			}
		}
	}

	// tableOf[system] is the table the system's source captures; the sink must
	// write the same table of the same database.
	type capture struct{ host, db, table string }
	captured := map[string]capture{}
	var slots []string
	for _, src := range sources {
		table := src.get(t, "table.include.list")
		if strings.Contains(table, ",") {
			t.Fatalf("%s: capture one table per connector (concord reads one topic per system)", src.name)
		}
		topic := src.get(t, "topic.prefix") + "." + table
		system := systemByTopic(cfg, topic)
		if system == "" {
			t.Errorf("%s produces %s, which is no systems.*.topic of %s", src.name, topic, concordConfig)
			continue
		}
		if _, dup := captured[system]; dup {
			t.Errorf("%s: a second source for system %s", src.name, system)
		}
		host, db := src.get(t, "database.hostname"), src.get(t, "database.dbname")
		captured[system] = capture{host: host, db: db, table: qualify(table)}
		checkDatabaseService(t, c, src.name, host, db)

		s := cfg.Systems[system]
		src.expect(t, "plugin.name", "pgoutput")
		// concord learns the target's column types from the schemas of its own
		// events: they must be there, and say what the columns are (with
		// decimal.handling.mode string or double a numeric column's schema says
		// string or double, and applies would be typed so).
		if m := src.cfg["decimal.handling.mode"]; m != "" && m != "precise" {
			t.Errorf("%s: decimal.handling.mode = %q, want precise (the default)", src.name, m)
		}
		src.expect(t, "key.converter.schemas.enable", "true")
		src.expect(t, "value.converter.schemas.enable", "true")
		// concord needs no tombstones (a delete is an op d event) and the
		// PartitionRouting SMT routes records by their payload, which a tombstone
		// lacks: none are sent.
		src.expect(t, "tombstones.on.delete", "false")
		src.expect(t, "errors.tolerance", "none")
		if m := src.cfg["time.precision.mode"]; m != "adaptive_time_microseconds" && m != "connect" {
			t.Errorf("%s: time.precision.mode = %q, want adaptive_time_microseconds or connect", src.name, m)
		}
		src.expect(t, "key.converter", "org.apache.kafka.connect.json.JsonConverter")
		src.expect(t, "value.converter", "org.apache.kafka.connect.json.JsonConverter")
		if len(s.Key) != 1 {
			t.Fatalf("systems.%s.key: this stack routes by a single key field, got %q", system, s.Key)
		}
		src.expect(t, "transforms.PartitionRouting.type", "io.debezium.transforms.partitions.PartitionRouting")
		src.expect(t, "transforms.PartitionRouting.partition.payload.fields", "change."+s.Column(s.Key[0]))
		src.expect(t, "transforms.PartitionRouting.partition.topic.num", strconv.Itoa(partitions))
		src.expect(t, "topic.creation.default.partitions", strconv.Itoa(partitions))
		if !slices.Contains(strings.Split(src.cfg["transforms"], ","), "PartitionRouting") {
			t.Errorf("%s: transforms = %q, want PartitionRouting in it", src.name, src.cfg["transforms"])
		}
		slots = append(slots, src.get(t, "slot.name"))
		if !slices.Contains(initTopics, topic) {
			t.Errorf("services.kafka-init does not create %s with %d partitions", topic, partitions)
		}
	}
	slices.Sort(slots)
	if len(slices.Compact(slots)) != len(sources) {
		t.Errorf("replication slot names must differ: %q", slots)
	}

	sunk := map[string]bool{}
	for _, sink := range sinks {
		topic := sink.get(t, "topics")
		system := systemByApplyTopic(cfg, topic)
		if system == "" {
			t.Errorf("%s consumes %s, which is no systems.*.apply.topic of %s", sink.name, topic, concordConfig)
			continue
		}
		sunk[system] = true
		s := cfg.Systems[system]
		// Debezium's JDBC sink needs a Connect schema on key and value; it reads
		// concord's debezium format as change events and flat as flattened rows
		// (codecs.ApplyEncoder).
		if !s.Apply.WithSchema() {
			t.Errorf("systems.%s.apply: schema false, which %s refuses", system, sink.name)
		}
		// A sink that skips what it cannot write loses that write for good.
		sink.expect(t, "errors.tolerance", "none")
		sink.expect(t, "value.converter", "org.apache.kafka.connect.json.JsonConverter")
		sink.expect(t, "value.converter.schemas.enable", "true")
		sink.expect(t, "key.converter", "org.apache.kafka.connect.json.JsonConverter")
		sink.expect(t, "key.converter.schemas.enable", "true")
		sink.expect(t, "insert.mode", "upsert")
		sink.expect(t, "primary.key.mode", "record_key")
		sink.expect(t, "delete.enabled", "true")
		sink.expect(t, "schema.evolution", "none")

		keyColumns := make([]string, len(s.Key))
		for i, k := range s.Key {
			keyColumns[i] = s.Column(k)
		}
		sink.expect(t, "primary.key.fields", strings.Join(keyColumns, ","))
		checkKeySchema(t, sink, keyColumns)

		want, ok := captured[system]
		if !ok {
			t.Errorf("%s writes system %s, which no source captures", sink.name, system)
			continue
		}
		host, db := parseJDBCURL(t, sink.name, sink.get(t, "connection.url"))
		if host != want.host || db != want.db {
			t.Errorf("%s writes %s/%s, but %s's source captures %s/%s", sink.name, host, db, system, want.host, want.db)
		}
		if got := qualify(sink.get(t, "collection.name.format")); got != want.table {
			t.Errorf("%s writes table %s, but %s's source captures %s", sink.name, got, system, want.table)
		}
		if !slices.Contains(initTopics, topic) {
			t.Errorf("services.kafka-init does not create %s", topic)
		}
	}
	for _, system := range cfg.SystemNames() {
		if _, ok := captured[system]; !ok {
			t.Errorf("system %s: no source connector produces %s", system, cfg.Systems[system].Topic)
		}
		if !sunk[system] {
			t.Errorf("system %s: no sink connector consumes %s", system, cfg.Systems[system].Apply.Topic)
		}
	}
	if review := cfg.Name + ".review"; !slices.Contains(initTopics, review) {
		t.Errorf("services.kafka-init does not create %s, which must be co-partitioned with the input topics", review)
	}

	// The tables the sources capture have every column concord reads or writes.
	for _, system := range sortedKeys(captured) {
		checkTable(t, c, cfg, system, captured[system].host, captured[system].table)
	}
}

func systemByTopic(cfg *config.Config, topic string) string {
	for _, name := range cfg.SystemNames() {
		if cfg.Systems[name].Topic == topic {
			return name
		}
	}
	return ""
}

func systemByApplyTopic(cfg *config.Config, topic string) string {
	for _, name := range cfg.SystemNames() {
		if cfg.Systems[name].Apply.Topic == topic {
			return name
		}
	}
	return ""
}

// checkDatabaseService checks that host is a PostgreSQL service of the compose file
// whose database is db.
func checkDatabaseService(t *testing.T, c composeFile, connector, host, db string) {
	t.Helper()
	svc, ok := c.Services[host]
	switch {
	case !ok:
		t.Errorf("%s: database host %q is not a compose service", connector, host)
	case svc.Environment["POSTGRES_DB"] != db:
		t.Errorf("%s: database %q, but services.%s creates %q", connector, db, host, svc.Environment["POSTGRES_DB"])
	}
}

var jdbcURLRE = regexp.MustCompile(`^jdbc:postgresql://([\w.-]+):5432/(\w+)$`)

func parseJDBCURL(t *testing.T, connector, url string) (host, db string) {
	t.Helper()
	m := jdbcURLRE.FindStringSubmatch(url)
	if m == nil {
		t.Fatalf("%s: connection.url %q: want jdbc:postgresql://HOST:5432/DB", connector, url)
	}
	return m[1], m[2]
}

// checkKeySchema checks that the sink reads the key schema concord writes: with
// format flat and schema true, concord's apply keys carry a Connect schema, a required
// struct of the key columns (as codecs.ApplyEncoder encodes them), so the sink needs
// key.converter.schemas.enable and no schema of its own.
func checkKeySchema(t *testing.T, sink connector, keyColumns []string) {
	t.Helper()
	if got := sink.get(t, "key.converter.schemas.enable"); got != "true" {
		t.Errorf("%s: key.converter.schemas.enable = %q, want true (concord's keys carry their schema)", sink.name, got)
	}
	if _, ok := sink.cfg["key.converter.schema.content"]; ok {
		t.Errorf("%s: key.converter.schema.content is set; concord's keys carry their own schema", sink.name)
	}
	a := codecs.Apply{}
	for _, c := range keyColumns {
		a.Key = append(a.Key, codecs.TypedColumn{Name: c, Value: []byte(`"k-1"`)})
	}
	key, err := codecs.ApplyEncoder{Format: codecs.FormatFlat, Schema: true}.AppendKey(nil, &a)
	if err != nil {
		t.Fatal(err)
	}
	var envelope struct {
		Schema struct {
			Type   string `json:"type"`
			Fields []struct {
				Field    string `json:"field"`
				Type     string `json:"type"`
				Optional bool   `json:"optional"`
			} `json:"fields"`
		} `json:"schema"`
		Payload map[string]any `json:"payload"`
	}
	if err := json.Unmarshal(key, &envelope); err != nil {
		t.Fatalf("concord's key %s: %v", key, err)
	}
	var fields []string
	for _, f := range envelope.Schema.Fields {
		fields = append(fields, f.Field)
		if f.Type != "string" || f.Optional {
			t.Errorf("key schema field %s: type %s optional %v, want a required string", f.Field, f.Type, f.Optional)
		}
	}
	if envelope.Schema.Type != "struct" || !slices.Equal(fields, keyColumns) || len(envelope.Payload) != len(keyColumns) {
		t.Errorf("concord's key %s is not a struct of the key columns %q", key, keyColumns)
	}
}

// checkTable checks the table a system's source captures against concord's view of
// the system: the key columns are the primary key, the timestamp column exists, and
// every field in authority has a column (concord sends every synced field to every
// system, and the sinks run with schema.evolution none).
func checkTable(t *testing.T, c composeFile, cfg *config.Config, system, host, name string) {
	t.Helper()
	initSQL, ok := c.service(t, host).mountedAt(t, "/docker-entrypoint-initdb.d/init.sql")
	if !ok {
		t.Errorf("services.%s mounts no init.sql", host)
		return
	}
	tb, ok := parseTables(t, initSQL)[name]
	if !ok {
		t.Errorf("%s does not create %s, which system %s's source captures", initSQL, name, system)
		return
	}
	s := cfg.Systems[system]
	var keyColumns []string
	for _, k := range s.Key {
		keyColumns = append(keyColumns, s.Column(k))
	}
	if !slices.Equal(tb.primaryKey, keyColumns) {
		t.Errorf("%s: %s's primary key is %q, want systems.%s's key columns %q", initSQL, name, tb.primaryKey, system, keyColumns)
	}
	if column, ok := s.TimestampColumn(); ok && !slices.Contains(tb.columns, column) {
		t.Errorf("%s: %s has no column %s (systems.%s.timestamp)", initSQL, name, column, system)
	}
	for _, field := range sortedKeys(cfg.Authority) {
		if column := s.Column(field); !slices.Contains(tb.columns, column) {
			t.Errorf("%s: %s has no column %s for field %s (authority), which concord applies to %s", initSQL, name, column, field, system)
		}
	}
	if system == "crm" && tb.replicaIDs != "FULL" {
		t.Errorf("%s: %s: want REPLICA IDENTITY FULL", initSQL, name)
	}
}

// ---- Dockerfile ----

// instruction is one Dockerfile instruction, its continuation lines joined.
type instruction struct{ cmd, args string }

func parseDockerfile(t *testing.T) []instruction {
	t.Helper()
	var out []instruction
	var cur strings.Builder
	for line := range strings.SplitSeq(string(readFile(t, dockerfilePath)), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// shellWords splits a command line the way sh would for plain words and quoted
// strings (no variables or escapes: a Dockerfile build line needs none).
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case r == '&' || r == ';' || r == '|':
			return nil, fmt.Errorf("%q: keep the go build on a RUN line of its own", s)
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("%q: unterminated quote", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// goBuild is the Dockerfile's go build line: its environment assignments, its
// arguments after "go", and the output path.
type goBuild struct {
	env    []string
	args   []string
	output string
}

func parseGoBuild(t *testing.T, steps []instruction) goBuild {
	t.Helper()
	var runs []string
	for _, s := range steps {
		if s.cmd == "RUN" && strings.Contains(s.args, "go build") {
			runs = append(runs, s.args)
		}
	}
	if len(runs) != 1 {
		t.Fatalf("%s: want one RUN with go build, got %d", dockerfilePath, len(runs))
	}
	ws, err := shellWords(runs[0])
	if err != nil {
		t.Fatalf("%s: %v", dockerfilePath, err)
	}
	var b goBuild
	for len(ws) > 0 && strings.Contains(ws[0], "=") {
		b.env, ws = append(b.env, ws[0]), ws[1:]
	}
	if len(ws) < 2 || ws[0] != "go" || ws[1] != "build" {
		t.Fatalf("%s: RUN %s: want [ENV=VALUE ...] go build ...", dockerfilePath, runs[0])
	}
	b.args = ws[1:]
	for i, w := range b.args {
		if w == "-o" && i+1 < len(b.args) {
			b.output = b.args[i+1]
		}
	}
	return b
}

func TestDockerfile(t *testing.T) {
	steps := parseDockerfile(t)
	var froms []string
	var final []instruction // the instructions of the last stage
	for _, s := range steps {
		if s.cmd == "FROM" {
			froms = append(froms, s.args)
			final = nil
			continue
		}
		final = append(final, s)
	}
	if len(froms) < 2 || !regexp.MustCompile(`^golang:1\.26\S* AS \w+`).MatchString(froms[0]) {
		t.Fatalf("%s: want a golang:1.26 builder stage and a final stage, got FROM %q", dockerfilePath, froms)
	}
	last := froms[len(froms)-1]
	if !strings.HasPrefix(last, "scratch") && !regexp.MustCompile(`^gcr\.io/distroless/static\S*:nonroot$`).MatchString(last) {
		t.Errorf("%s: final stage FROM %s, want distroless/static:nonroot or scratch", dockerfilePath, last)
	}

	b := parseGoBuild(t, steps)
	for _, want := range []string{"CGO_ENABLED=0"} {
		if !slices.Contains(b.env, want) {
			t.Errorf("%s: go build environment %q, want %s", dockerfilePath, b.env, want)
		}
	}
	for _, want := range []string{"-trimpath", "-ldflags", "-s -w", "./cmd/concord"} {
		if !slices.Contains(b.args, want) {
			t.Errorf("%s: go build %q, want %q among the arguments", dockerfilePath, b.args, want)
		}
	}

	byCmd := map[string][]string{}
	for _, s := range final {
		byCmd[s.cmd] = append(byCmd[s.cmd], s.args)
	}
	copied := false
	for _, c := range byCmd["COPY"] {
		if ws := strings.Fields(c); len(ws) == 3 && strings.HasPrefix(ws[0], "--from=") && ws[1] == b.output && ws[2] == "/concord" {
			copied = true
		}
	}
	if !copied {
		t.Errorf("%s: the final stage does not COPY --from=<builder> %s /concord", dockerfilePath, b.output)
	}
	users := byCmd["USER"]
	if len(users) == 0 {
		t.Errorf("%s: the final stage sets no USER", dockerfilePath)
	} else if u, _, _ := strings.Cut(users[len(users)-1], ":"); u == "root" || u == "0" {
		t.Errorf("%s: USER %s: run as a non-root user", dockerfilePath, users[len(users)-1])
	}
	if !slices.Contains(byCmd["EXPOSE"], "8080") {
		t.Errorf("%s: want EXPOSE 8080", dockerfilePath)
	}
	if ep := byCmd["ENTRYPOINT"]; len(ep) != 1 || ep[0] != `["/concord"]` {
		t.Errorf(`%s: ENTRYPOINT %q, want ["/concord"]`, dockerfilePath, ep)
	}
}

// TestDockerignoreKeepsBuildInputs checks that .dockerignore leaves in what the
// Dockerfile's build needs: the module files and every Go package's sources and
// embedded files.
func TestDockerignoreKeepsBuildInputs(t *testing.T) {
	var patterns []string
	for line := range strings.SplitSeq(string(readFile(t, dockerignore)), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, strings.TrimPrefix(line, "/"))
		}
	}
	for _, p := range patterns {
		if strings.HasPrefix(p, "!") {
			t.Fatalf("%s: exceptions (%s) are not supported by this test; list what to exclude", dockerignore, p)
		}
	}
	inputs := []string{"go.mod", "go.sum", "cmd/concord/main.go", "cmd/concord/demo.yaml", "dlq/web/static", "dlq/web/templates", "pipeline/state/put.lua"}
	for _, in := range inputs {
		for _, p := range patterns {
			for prefix := in; prefix != "."; prefix = path.Dir(prefix) {
				if ok, err := path.Match(p, prefix); err != nil {
					t.Fatalf("%s: pattern %q: %v", dockerignore, p, err)
				} else if ok {
					t.Errorf("%s: %q excludes %s, which the image build needs", dockerignore, p, in)
				}
			}
		}
	}
	for _, want := range []string{".git", "concord"} {
		if !slices.Contains(patterns, want) {
			t.Errorf("%s: want %s excluded from the build context", dockerignore, want)
		}
	}
}

// TestDockerfileBuildCommand runs the Dockerfile's go build line, with the same
// environment and flags, into a temporary directory, and checks the binary runs.
func TestDockerfileBuildCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the concord binary; skipped in -short mode")
	}
	b := parseGoBuild(t, parseDockerfile(t))
	if b.output == "" {
		t.Fatalf("%s: go build has no -o", dockerfilePath)
	}
	bin := filepath.Join(t.TempDir(), "concord")
	args := slices.Clone(b.args)
	args[slices.Index(args, "-o")+1] = bin

	cmd := exec.CommandContext(t.Context(), goTool(t), args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), b.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}

	check := exec.CommandContext(t.Context(), bin, "config", "check", "--config", filepath.Join(root, concordConfig))
	check.Env = append(os.Environ(), config.EnvKafkaBrokers+"=", config.EnvRedisAddr+"=")
	out, err := check.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "valid") {
		t.Fatalf("the built binary: concord config check --config %s: %v\n%s", concordConfig, err, out)
	}
}

// goTool returns the go command: the one on PATH, else the one of the toolchain
// running this test.
func goTool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if goroot := os.Getenv("GOROOT"); goroot != "" {
		return filepath.Join(goroot, "bin", "go")
	}
	t.Fatal("no go command on PATH and GOROOT is not set")
	return ""
}

// ---- Prometheus ----

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadRules(t *testing.T) []rule {
	t.Helper()
	var f ruleFile
	if err := yaml.Unmarshal(readFile(t, prometheusDir+"/rules.yml"), &f); err != nil {
		t.Fatalf("rules.yml: %v", err)
	}
	var rules []rule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	return rules
}

// recordedNames returns the names of the recording rules, which queries may use
// beside concord's own metrics.
func recordedNames(rules []rule) []string {
	var names []string
	for _, r := range rules {
		if r.Record != "" {
			names = append(names, r.Record)
		}
	}
	return names
}

var concordNameRE = regexp.MustCompile(`\bconcord[_:][A-Za-z0-9_:]*`)

// unknownMetrics returns the concord_ and concord: names in a PromQL expression that
// are neither concord metrics nor recording rules.
func unknownMetrics(expr string, recorded []string) []string {
	var unknown []string
	for _, name := range concordNameRE.FindAllString(expr, -1) {
		if slices.Contains(recorded, name) {
			continue
		}
		if kind, ok := concordMetrics[name]; ok && kind == plain {
			continue
		}
		known := false
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok {
				if kind, ok := concordMetrics[base]; ok && kind == histogram {
					known = true
				}
			}
		}
		if !known {
			unknown = append(unknown, name)
		}
	}
	return unknown
}

func TestRulesDefinitions(t *testing.T) {
	rules := loadRules(t)
	recorded := recordedNames(rules)
	if !slices.Contains(recorded, conflictRateRule) {
		t.Errorf("rules.yml: no recording rule %s", conflictRateRule)
	}
	alerts := map[string]rule{}
	for _, r := range rules {
		if bad := unknownMetrics(r.Expr, recorded); len(bad) > 0 {
			t.Errorf("rules.yml: %s%s uses %q, which concord does not expose", r.Record, r.Alert, bad)
		}
		if r.Alert == "" {
			continue
		}
		alerts[r.Alert] = r
		if s := r.Labels["severity"]; s != "warning" && s != "critical" {
			t.Errorf("%s: severity %q, want warning or critical", r.Alert, s)
		}
		for _, a := range []string{"summary", "description"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("%s: no %s annotation", r.Alert, a)
			}
		}
	}
	for _, name := range requiredAlerts {
		if _, ok := alerts[name]; !ok {
			t.Errorf("rules.yml: no alert %s", name)
		}
	}
	if dlq := alerts["ConcordDLQDepthHigh"].Expr; strings.Contains(dlq, "sum(") {
		t.Errorf("ConcordDLQDepthHigh: %q: every instance exports the same DLQ depth; take the max, not the sum", dlq)
	}
}

// TestRulesUnitTestsCoverEveryAlert checks that rules_test.yml shows every alert both
// firing and not firing, and checks the recording rule's value.
func TestRulesUnitTestsCoverEveryAlert(t *testing.T) {
	var f struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
			PromQLExprTest []struct {
				Expr       string `yaml:"expr"`
				ExpSamples []any  `yaml:"exp_samples"`
			} `yaml:"promql_expr_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(readFile(t, prometheusDir+"/rules_test.yml"), &f); err != nil {
		t.Fatalf("rules_test.yml: %v", err)
	}
	if !slices.Contains(f.RuleFiles, "rules.yml") {
		t.Errorf("rules_test.yml: rule_files %q, want rules.yml", f.RuleFiles)
	}
	firing, quiet := map[string]bool{}, map[string]bool{}
	recordingValue := false
	for _, tc := range f.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				firing[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
		for _, e := range tc.PromQLExprTest {
			if strings.Contains(e.Expr, conflictRateRule) && len(e.ExpSamples) > 0 {
				recordingValue = true
			}
		}
	}
	for _, name := range requiredAlerts {
		if !firing[name] {
			t.Errorf("rules_test.yml: no test shows %s firing", name)
		}
		if !quiet[name] {
			t.Errorf("rules_test.yml: no test shows %s not firing", name)
		}
	}
	if !recordingValue {
		t.Errorf("rules_test.yml: no promql_expr_test checks the value of %s", conflictRateRule)
	}
}

func TestPrometheusConfig(t *testing.T) {
	var p struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
			DNSSDConfigs []struct {
				Names []string `yaml:"names"`
				Port  int      `yaml:"port"`
			} `yaml:"dns_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(readFile(t, prometheusDir+"/prometheus.yml"), &p); err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	if !slices.Contains(p.RuleFiles, "rules.yml") {
		t.Errorf("prometheus.yml: rule_files %q, want rules.yml", p.RuleFiles)
	}
	c := loadCompose(t)
	scrapesConcord := false
	for _, sc := range p.ScrapeConfigs {
		var targets []string
		for _, s := range sc.StaticConfigs {
			targets = append(targets, s.Targets...)
		}
		for _, d := range sc.DNSSDConfigs {
			for _, n := range d.Names {
				targets = append(targets, n+":"+strconv.Itoa(d.Port))
			}
		}
		for _, target := range targets {
			host, _, _ := strings.Cut(target, ":")
			if _, ok := c.Services[host]; !ok && host != "localhost" {
				t.Errorf("prometheus.yml: job %s scrapes %s, which is not a compose service", sc.JobName, target)
			}
			if target == "concord:8080" {
				scrapesConcord = true
			}
		}
	}
	if !scrapesConcord {
		t.Error("prometheus.yml: no job scrapes concord:8080 (the --http address of services.concord)")
	}
	prom := c.service(t, "prometheus")
	if target, ok := prom.targetOf(t, prometheusDir); !ok || target != "/etc/prometheus" {
		t.Errorf("services.prometheus: want %s mounted at /etc/prometheus, got %q", prometheusDir, target)
	}
	if !slices.Contains(words(t, prom.Command), "--config.file=/etc/prometheus/prometheus.yml") {
		t.Errorf("services.prometheus.command: want --config.file=/etc/prometheus/prometheus.yml")
	}
}

// TestPromtool runs promtool on the rules, their unit tests and the Prometheus
// configuration. Without promtool (Debian package prometheus) it skips, except in CI.
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("promtool is required in CI (apt-get install prometheus): %v", err)
		}
		t.Skipf("promtool not found (install the Debian package prometheus): %v", err)
	}
	for _, args := range [][]string{
		{"check", "rules", "rules.yml"},
		{"test", "rules", "rules_test.yml"},
		{"check", "config", "prometheus.yml"},
	} {
		t.Run(strings.Join(args, "_"), func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), promtool, args...)
			cmd.Dir = filepath.Join(root, prometheusDir)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			switch {
			case errors.As(err, &exit):
				t.Fatalf("promtool %s failed:\n%s", strings.Join(args, " "), out)
			case err != nil:
				t.Fatalf("promtool %s: %v", strings.Join(args, " "), err)
			}
		})
	}
}

// ---- Grafana ----

type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
}

type panel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	GridPos struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Datasource *datasourceRef `json:"datasource"`
	Targets    []struct {
		RefID      string         `json:"refId"`
		Expr       string         `json:"expr"`
		Datasource *datasourceRef `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's panels
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func provisionedDatasource(t *testing.T) (uid, url string) {
	t.Helper()
	var f struct {
		Datasources []struct {
			UID  string `yaml:"uid"`
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(readFile(t, datasourcesPath), &f); err != nil {
		t.Fatalf("%s: %v", datasourcesPath, err)
	}
	if len(f.Datasources) != 1 || f.Datasources[0].Type != "prometheus" || f.Datasources[0].UID == "" {
		t.Fatalf("%s: want one prometheus datasource with a uid", datasourcesPath)
	}
	return f.Datasources[0].UID, f.Datasources[0].URL
}

func TestGrafanaProvisioning(t *testing.T) {
	c := loadCompose(t)
	grafana := c.service(t, "grafana")
	_, url := provisionedDatasource(t)
	if url != "http://prometheus:9090" {
		t.Errorf("%s: url %q, want http://prometheus:9090 (the compose service)", datasourcesPath, url)
	}
	var f struct {
		Providers []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	if err := yaml.Unmarshal(readFile(t, providersPath), &f); err != nil {
		t.Fatalf("%s: %v", providersPath, err)
	}
	dashboards, ok := grafana.targetOf(t, dashboardsDir)
	if !ok {
		t.Fatalf("services.grafana does not mount %s", dashboardsDir)
	}
	if len(f.Providers) != 1 || f.Providers[0].Type != "file" || f.Providers[0].Options.Path != dashboards {
		t.Errorf("%s: want one file provider reading %s (where %s is mounted)", providersPath, dashboards, dashboardsDir)
	}
	if target, ok := grafana.targetOf(t, "deploy/grafana/provisioning"); !ok || target != "/etc/grafana/provisioning" {
		t.Errorf("services.grafana: want deploy/grafana/provisioning mounted at /etc/grafana/provisioning, got %q", target)
	}
}

func TestGrafanaDashboard(t *testing.T) {
	var d dashboard
	if err := json.Unmarshal(readFile(t, dashboardPath), &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("%s: want a uid and a title", dashboardPath)
	}
	if d.SchemaVersion < 36 {
		t.Errorf("%s: schemaVersion %d, want 36 or later (datasource references by uid)", dashboardPath, d.SchemaVersion)
	}
	uid, _ := provisionedDatasource(t)
	recorded := recordedNames(loadRules(t))

	var panels []panel
	for _, p := range d.Panels {
		panels = append(panels, p)
		panels = append(panels, p.Panels...)
	}
	ids := map[int]bool{}
	used := map[string]bool{}
	for _, p := range panels {
		if p.Type == "row" {
			continue
		}
		where := fmt.Sprintf("%s: panel %d %q", dashboardPath, p.ID, p.Title)
		if ids[p.ID] {
			t.Errorf("%s: duplicate id", where)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("%s: gridPos %+v outside the 24-column grid", where, g)
		}
		if p.Datasource == nil || p.Datasource.UID != uid {
			t.Errorf("%s: datasource %+v, want uid %s (the provisioned Prometheus)", where, p.Datasource, uid)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: no queries", where)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("%s: query %s has no expr", where, tg.RefID)
			}
			if tg.Datasource != nil && tg.Datasource.UID != uid {
				t.Errorf("%s: query %s datasource uid %s, want %s", where, tg.RefID, tg.Datasource.UID, uid)
			}
			if bad := unknownMetrics(tg.Expr, recorded); len(bad) > 0 {
				t.Errorf("%s: query %s uses %q, which concord does not expose", where, tg.RefID, bad)
			}
			for _, name := range concordNameRE.FindAllString(tg.Expr, -1) {
				used[name] = true
			}
		}
	}
	checkNoOverlap(t, panels)

	// The panels the dashboard must have, by the series they show.
	for _, name := range []string{
		conflictRateRule,
		"concord_dlq_depth", "concord_dlq_oldest_age_seconds",
		"concord_sync_lag_seconds_bucket",
		"concord_events_total", "concord_decisions_total",
		"concord_records", "concord_parity_drift_records",
		"concord_clock_offset_seconds", "concord_clock_offset_uncertainty_seconds",
		"concord_consumer_lag", "concord_poison_total",
	} {
		if !used[name] {
			t.Errorf("%s: no panel shows %s", dashboardPath, name)
		}
	}
}

func checkNoOverlap(t *testing.T, panels []panel) {
	t.Helper()
	for i, a := range panels {
		for _, b := range panels[i+1:] {
			ga, gb := a.GridPos, b.GridPos
			if ga.X < gb.X+gb.W && gb.X < ga.X+ga.W && ga.Y < gb.Y+gb.H && gb.Y < ga.Y+ga.H {
				t.Errorf("%s: panels %q and %q overlap", dashboardPath, a.Title, b.Title)
			}
		}
	}
}

// ---- helpers ----

func readFile(t *testing.T, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TestConfluentSinkConfig checks the Confluent JDBC sink alternatives
// (connect/confluent/*.json): a drop-in replacement of the stack's Debezium sink of
// the same name, in the Confluent connector's own property names
// (confluentinc/kafka-connect-jdbc JdbcSinkConfig: pk.mode, pk.fields,
// table.name.format, connection.user, ...), reading what concord writes for it.
func TestConfluentSinkConfig(t *testing.T) {
	cfg := loadConcord(t)
	_, sinks := loadConnectors(t)
	stack := map[string]connector{}
	for _, s := range sinks {
		stack[s.name] = s
	}
	files, err := filepath.Glob(filepath.Join(root, connectDir, "confluent", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Confluent sink configs in %s/confluent (%v)", connectDir, err)
	}
	for _, f := range files {
		var props map[string]string
		if err := json.Unmarshal(readFile(t, filepath.Join(connectDir, "confluent", filepath.Base(f))), &props); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		sink := connector{name: props["name"], cfg: props}
		sink.expect(t, "connector.class", "io.confluent.connect.jdbc.JdbcSinkConnector")
		twin, ok := stack[sink.name]
		if !ok {
			t.Errorf("%s: name %q is no sink of the stack, which it should replace", f, sink.name)
			continue
		}
		topic := sink.get(t, "topics")
		system := systemByApplyTopic(cfg, topic)
		if system == "" || topic != twin.get(t, "topics") {
			t.Errorf("%s consumes %s; want the apply topic %s of its twin", f, topic, twin.get(t, "topics"))
			continue
		}
		s := cfg.Systems[system]
		// The Confluent sink needs a Struct value with a schema: the flat format,
		// a delete as a tombstone (delete.enabled, which needs pk.mode=record_key).
		if s.Apply.Format != config.FormatFlat || !s.Apply.WithSchema() {
			t.Errorf("systems.%s.apply: format %s schema %v, want flat with a schema for %s", system, s.Apply.Format, s.Apply.WithSchema(), f)
		}
		keyColumns := make([]string, len(s.Key))
		for i, k := range s.Key {
			keyColumns[i] = s.Column(k)
		}
		for key, want := range map[string]string{
			"insert.mode": "upsert", "pk.mode": "record_key", "pk.fields": strings.Join(keyColumns, ","),
			"delete.enabled": "true", "auto.create": "false", "auto.evolve": "false", "errors.tolerance": "none",
			"dialect.name":                 "PostgreSqlDatabaseDialect",
			"table.name.format":            twin.get(t, "collection.name.format"),
			"connection.url":               twin.get(t, "connection.url"),
			"connection.user":              twin.get(t, "connection.username"),
			"connection.password":          twin.get(t, "connection.password"),
			"key.converter":                "org.apache.kafka.connect.json.JsonConverter",
			"key.converter.schemas.enable": "true", "value.converter.schemas.enable": "true",
			"value.converter": "org.apache.kafka.connect.json.JsonConverter",
		} {
			sink.expect(t, key, want)
		}
		for _, debeziumOnly := range []string{"primary.key.mode", "primary.key.fields", "collection.name.format", "connection.username", "schema.evolution"} {
			if _, ok := props[debeziumOnly]; ok {
				t.Errorf("%s: %s is a Debezium JDBC sink property; the Confluent sink ignores it", f, debeziumOnly)
			}
		}
	}
}
