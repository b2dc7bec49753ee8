package config

import "time"

// Config is the whole configuration file (DESIGN.md section 10). Load fills defaults;
// Validate checks it. Once loaded it is treated as immutable: a reload builds a new one.
type Config struct {
	Name       string             `yaml:"name"`
	Kafka      Kafka              `yaml:"kafka"`
	Redis      Redis              `yaml:"redis"`
	Systems    map[string]*System `yaml:"systems"`
	Resolution Resolution         `yaml:"resolution"`
	// Authority maps a canonical field to its owning system, or to Shared.
	Authority map[string]string `yaml:"authority"`
}

// Shared is the authority value of a field that every system may write (last-write-wins).
const Shared = "shared"

// Kafka holds broker addresses.
type Kafka struct {
	Brokers []string `yaml:"brokers"`
}

// Redis holds the state store address.
type Redis struct {
	Addr     string `yaml:"addr"`
	Password string `yaml:"password"`
	DB       int    `yaml:"db"`
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
}

// Apply says where and how apply events for a system are written.
type Apply struct {
	Topic  string `yaml:"topic"`  // default <name>.apply.<system>
	Format string `yaml:"format"` // debezium (default) | flat
	Schema bool   `yaml:"schema"` // flat only: wrap in a Connect schema envelope
}

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
