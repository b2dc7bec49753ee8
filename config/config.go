package config

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/concord-sync/concord/codecs"
)

// Config is the whole configuration file (DESIGN.md section 10). Parse fills defaults;
// Validate checks it; Load does both and applies environment overrides. Once loaded it is
// treated as immutable (its accessors are then safe for concurrent use): a reload builds a new one.
type Config struct {
	Name       string             `yaml:"name"`
	Kafka      Kafka              `yaml:"kafka"`
	Redis      Redis              `yaml:"redis"`
	Systems    map[string]*System `yaml:"systems"`
	Resolution Resolution         `yaml:"resolution"`
	HTTP       HTTP               `yaml:"http"`
	Operations Operations         `yaml:"operations"`
	Log        Log                `yaml:"log"`
	// Authority maps a canonical field to its owning system, or to Shared.
	Authority map[string]string `yaml:"authority"`

	src *source // where each key was in the file; nil for a Config built in code
}

// Shared is the authority value of a field that every system may write (last-write-wins).
const Shared = "shared"

// Kafka holds broker addresses and the consumer group's liveness settings.
type Kafka struct {
	Brokers []string `yaml:"brokers"`
	// SessionTimeout is how long the group waits for a silent member before giving its
	// partitions to another (default 10s): after a crash, how long its partitions
	// wait. The broker bounds it (group.min.session.timeout.ms, 6s by default).
	SessionTimeout Duration `yaml:"session_timeout"`
	// HeartbeatInterval is how often a member tells the group it is alive (default
	// 1s); it must be well under SessionTimeout.
	HeartbeatInterval Duration `yaml:"heartbeat_interval"`
	// MaxMessageBytes is the largest input message (key and value) concord decodes;
	// a larger one is poison. Default 1 MiB, the broker's default message.max.bytes,
	// past which no apply event carrying it could be produced either: raise both
	// together.
	MaxMessageBytes int  `yaml:"max_message_bytes"`
	TLS             TLS  `yaml:"tls"`
	SASL            SASL `yaml:"sasl"`
}

// Redis says where the state store is and how to reach it (see connection.go).
type Redis struct {
	Addr  string   `yaml:"addr"`  // one address (standalone, or a seed of a cluster)
	Addrs []string `yaml:"addrs"` // several: cluster seeds, or sentinels
	// Mode is standalone (default), cluster or sentinel.
	Mode       string `yaml:"mode"`
	MasterName string `yaml:"master_name"` // the Sentinel master set's name
	Username   string `yaml:"username"`    // an ACL user (Redis 6+)
	// Password is the user's password: CONCORD_REDIS_PASSWORD, else password_file,
	// else this key (kept for existing files; prefer the other two).
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	DB           int    `yaml:"db"`
	TLS          TLS    `yaml:"tls"`
}

// System is one synced system: where its change events come from, how its columns map
// to canonical fields, and where its apply events go.
type System struct {
	Name  string   `yaml:"-"` // the key of this system in Config.Systems
	Topic string   `yaml:"topic"`
	Key   []string `yaml:"key"` // canonical key field(s)
	// Timestamp is "source.ts_ms" (default) or a column of the row holding the last-write time.
	Timestamp string `yaml:"timestamp"`
	// Fields maps canonical field -> this system's column. Unlisted columns keep their name.
	Fields map[string]string `yaml:"fields"`
	Apply  Apply             `yaml:"apply"`
	// Envelope is "debezium" (default) or "unwrapped" (ExtractNewRecordState output).
	Envelope string `yaml:"envelope"`
	// OriginMarker is a column the sink writes the apply's event id into; empty for none.
	OriginMarker string `yaml:"origin_marker"`
	// UnavailablePlaceholder is the connector's unavailable.value.placeholder: the
	// value Debezium sends for an unchanged TOASTed column (REPLICA IDENTITY DEFAULT).
	// Default DefaultUnavailablePlaceholder.
	UnavailablePlaceholder string `yaml:"unavailable_value_placeholder"`
	// Columns gives the types of this system's columns (column -> type, see
	// codecs.ParseColumnType) for topics whose events carry no Connect schema, or to
	// override what concord learns from the schemas of the system's own events.
	Columns map[string]string `yaml:"columns"`

	columns     map[string]string            // column -> canonical field; built by ApplyDefaults
	columnTypes map[string]codecs.ColumnType // the valid entries of Columns; built by ApplyDefaults
}

// DefaultUnavailablePlaceholder is Debezium's default unavailable.value.placeholder.
const DefaultUnavailablePlaceholder = "__debezium_unavailable_value"

// Values of System.Timestamp, Apply.Format, System.Envelope and the Resolution enums.
const (
	SourceTimestamp = "source.ts_ms" // Debezium's commit time: no timestamp column

	FormatDebezium = "debezium" // apply events as Debezium envelopes (Debezium JDBC sink)
	FormatFlat     = "flat"     // apply events as flat JSON rows (Confluent JDBC sink)

	SinkDebezium  = "debezium"  // Debezium's JDBC sink reads the apply topic
	SinkConfluent = "confluent" // the Confluent JDBC sink reads it

	EnvelopeDebezium  = "debezium"  // input values are full Debezium envelopes
	EnvelopeUnwrapped = "unwrapped" // input values went through ExtractNewRecordState

	GranularityField  = "field"  // only fields both systems changed conflict
	GranularityRecord = "record" // whole-row last-write-wins

	DeletesReview     = "review"      // a delete concurrent with an update goes to the DLQ
	DeletesDeleteWins = "delete_wins" // ... the delete wins
	DeletesUpdateWins = "update_wins" // ... the update wins

	UnmappedSkip   = "skip"   // fields not in the authority map are not synced
	UnmappedShared = "shared" // fields not in the authority map are last-write-wins
)

// Apply says where and how apply events for a system are written.
type Apply struct {
	Topic  string `yaml:"topic"`  // default <name>.apply.<system>
	Format string `yaml:"format"` // debezium (default) | flat
	// Sink is the connector that reads the topic: debezium (default), Debezium's JDBC
	// sink, or confluent, the Confluent JDBC sink, which knows Connect's own logical
	// types only, so applies carry those (codecs.ColumnType.ForConfluent).
	Sink string `yaml:"sink"`
	// Schema wraps key and value in a JsonConverter schema envelope, as the JDBC sinks
	// need (default true). false writes bare JSON, which neither Debezium's nor the
	// Confluent JDBC sink accepts: config check warns about it.
	Schema *bool `yaml:"schema"`
}

// WithSchema reports whether apply events carry their Connect schema (the default).
func (a Apply) WithSchema() bool { return a.Schema == nil || *a.Schema }

// Resolution holds the conflict resolution settings.
type Resolution struct {
	ClockSkewTolerance Duration `yaml:"clock_skew_tolerance"` // default 500ms
	// ClockSkewOverrides sets the tolerance for particular pairs of systems.
	ClockSkewOverrides []SkewOverride `yaml:"clock_skew_overrides"`
	Granularity        string         `yaml:"granularity"`       // field (default) | record
	Deletes            string         `yaml:"deletes"`           // review (default) | delete_wins | update_wins
	PropagateDeletes   *bool          `yaml:"propagate_deletes"` // default true
	UnmappedFields     string         `yaml:"unmapped_fields"`   // skip (default) | shared
	EnforceAuthority   bool           `yaml:"enforce_authority"`
	PairWindow         Duration       `yaml:"pair_window"`         // default 0
	TombstoneRetention Duration       `yaml:"tombstone_retention"` // default 24h
	ApplyTimeout       Duration       `yaml:"apply_timeout"`       // default 15m
	InitialLoadPrefer  string         `yaml:"initial_load_prefer"` // a system name, or empty
	LoopGuard          LoopGuard      `yaml:"loop_guard"`
	// WidenByClockUncertainty adds the measured uncertainty of both systems' clock
	// offsets (concord_clock_offset_uncertainty_seconds) to the clock-skew tolerance.
	WidenByClockUncertainty bool `yaml:"widen_by_clock_uncertainty"`
}

// SkewOverride is the clock-skew tolerance between two particular systems.
type SkewOverride struct {
	Systems   []string `yaml:"systems"` // exactly two system names
	Tolerance Duration `yaml:"tolerance"`
}

// LoopGuard holds a record that keeps bouncing: more than MaxApplies applies within Window.
type LoopGuard struct {
	MaxApplies int      `yaml:"max_applies"` // default 20
	Window     Duration `yaml:"window"`      // default 1m
}

// Duration is a time.Duration written in YAML as a Go duration string ("500ms", "15m").
type Duration struct{ time.Duration }

// UnmarshalYAML accepts only a Go duration string such as "500ms", "15m" or "24h" (or 0).
func (d *Duration) UnmarshalYAML(value *yaml.Node) error {
	if value.Kind != yaml.ScalarNode {
		return errors.New("expected a duration such as 500ms, 15m or 24h")
	}
	parsed, err := time.ParseDuration(value.Value)
	if err != nil {
		return fmt.Errorf("%q is not a duration: write a Go duration such as 500ms, 15m or 24h", value.Value)
	}
	d.Duration = parsed
	return nil
}

// MarshalYAML writes the duration back as a Go duration string.
func (d Duration) MarshalYAML() (any, error) {
	return d.String(), nil
}

// SystemNames returns the names of the configured systems, sorted.
func (c *Config) SystemNames() []string {
	return slices.Sorted(maps.Keys(c.Systems))
}

// Key returns the canonical key fields, which Validate ensures every system shares.
// It returns nil when no system names a key.
func (c *Config) Key() []string {
	for _, name := range c.SystemNames() {
		if s := c.Systems[name]; s != nil && len(s.Key) > 0 {
			return s.Key
		}
	}
	return nil
}

// Tolerance returns the clock-skew tolerance between systems a and b: the override for
// that pair when there is one (in either order), else resolution.clock_skew_tolerance.
func (c *Config) Tolerance(a, b string) time.Duration {
	for _, o := range c.Resolution.ClockSkewOverrides {
		if len(o.Systems) == 2 && isPair(o.Systems, a, b) {
			return o.Tolerance.Duration
		}
	}
	return c.Resolution.ClockSkewTolerance.Duration
}

func isPair(pair []string, a, b string) bool {
	return (pair[0] == a && pair[1] == b) || (pair[0] == b && pair[1] == a)
}

// PropagatesDeletes reports whether a delete with no concurrent update is applied to the
// other systems (resolution.propagate_deletes, true unless set to false).
func (c *Config) PropagatesDeletes() bool {
	return c.Resolution.PropagateDeletes == nil || *c.Resolution.PropagateDeletes
}

// String writes the duration the way a config file would: "500ms", "1m", "24h", "1h30m".
func (d Duration) String() string {
	s := d.Duration.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// HTTP configures who may use the review page. Secrets never sit in the file itself:
// the token comes from CONCORD_HTTP_TOKEN or token_file, passwords from an
// environment variable or a file.
type HTTP struct {
	TokenFile string          `yaml:"token_file"` // file holding the bearer token
	Token     string          `yaml:"-"`          // resolved: CONCORD_HTTP_TOKEN, else token_file
	Users     map[string]User `yaml:"users"`      // basic-auth users
}

// User is a basic-auth user of the review page: its password comes from
// PasswordEnv (an environment variable) or PasswordFile.
type User struct {
	PasswordEnv  string `yaml:"password_env"`
	PasswordFile string `yaml:"password_file"`
}

// Log sets what concord logs and how.
type Log struct {
	Level  string `yaml:"level"`  // debug, info (default), warn or error; --log-level overrides
	Format string `yaml:"format"` // json, text, or auto (default: text on a terminal, else JSON)
}

// Log formats.
const (
	LogAuto = "auto"
	LogJSON = "json"
	LogText = "text"
)

// Operations holds settings of what concord reports.
type Operations struct {
	// ParityGrace is how long a record may be held by some systems and not others
	// before it counts as parity drift (concord_parity_drift_records). Default 5m.
	ParityGrace Duration `yaml:"parity_grace"`
}
