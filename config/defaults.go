package config

import "time"

// Defaults for settings the file leaves out (DESIGN.md section 10).
const (
	defaultBroker             = "localhost:9092"
	defaultRedisAddr          = "localhost:6379"
	defaultClockSkewTolerance = 500 * time.Millisecond
	defaultTombstoneRetention = 24 * time.Hour
	defaultApplyTimeout       = 15 * time.Minute
	defaultLoopMaxApplies     = 20
	defaultLoopWindow         = time.Minute
	defaultParityGrace        = 5 * time.Minute
	defaultSessionTimeout     = 10 * time.Second
	defaultHeartbeatInterval  = time.Second
	defaultMaxMessageBytes    = 1 << 20
)

// ApplyDefaults fills every setting the file left out, names each System after its key
// in Systems (an empty entry becomes an empty System) and indexes each system's Fields
// for FieldOf. A key written in the file keeps its value even when it is zero or empty
// (clock_skew_tolerance: 0s means zero; brokers: [] is reported by Validate); in a
// Config built in code, where that cannot be told apart, zero values are filled.
// The default apply topic needs Name, so set Name first. Calling it twice is harmless.
func (c *Config) ApplyDefaults() {
	if c.unset("kafka.brokers", len(c.Kafka.Brokers) == 0) {
		c.Kafka.Brokers = []string{defaultBroker}
	}
	setDuration(&c.Kafka.SessionTimeout, defaultSessionTimeout, c.unset("kafka.session_timeout", c.Kafka.SessionTimeout.Duration == 0))
	setDuration(&c.Kafka.HeartbeatInterval, defaultHeartbeatInterval, c.unset("kafka.heartbeat_interval", c.Kafka.HeartbeatInterval.Duration == 0))
	if c.unset("kafka.max_message_bytes", c.Kafka.MaxMessageBytes == 0) {
		c.Kafka.MaxMessageBytes = defaultMaxMessageBytes
	}
	if c.unset("redis.addr", c.Redis.Addr == "" && len(c.Redis.Addrs) == 0) {
		c.Redis.Addr = defaultRedisAddr
	}
	setString(&c.Redis.Mode, RedisStandalone, c.unset("redis.mode", c.Redis.Mode == ""))
	for name, s := range c.Systems {
		if s == nil {
			s = &System{}
			c.Systems[name] = s
		}
		s.Name = name
		c.systemDefaults(s)
		s.indexColumns()
	}
	c.resolutionDefaults()
	setString(&c.Log.Level, "info", c.unset("log.level", c.Log.Level == ""))
	setString(&c.Log.Format, LogAuto, c.unset("log.format", c.Log.Format == ""))
	setDuration(&c.Operations.ParityGrace, defaultParityGrace, c.unset("operations.parity_grace", c.Operations.ParityGrace.Duration == 0))
}

func (c *Config) systemDefaults(s *System) {
	key := "systems." + s.Name + "."
	setString(&s.Timestamp, SourceTimestamp, c.unset(key+"timestamp", s.Timestamp == ""))
	setString(&s.Envelope, EnvelopeDebezium, c.unset(key+"envelope", s.Envelope == ""))
	setString(&s.Apply.Format, FormatDebezium, c.unset(key+"apply.format", s.Apply.Format == ""))
	setString(&s.Apply.Sink, SinkDebezium, c.unset(key+"apply.sink", s.Apply.Sink == ""))
	if s.Apply.Schema == nil {
		schema := true
		s.Apply.Schema = &schema
	}
	if c.Name != "" {
		setString(&s.Apply.Topic, c.Name+".apply."+s.Name, c.unset(key+"apply.topic", s.Apply.Topic == ""))
	}
}

func (c *Config) resolutionDefaults() {
	const key = "resolution."
	r := &c.Resolution
	setDuration(&r.ClockSkewTolerance, defaultClockSkewTolerance, c.unset(key+"clock_skew_tolerance", r.ClockSkewTolerance.Duration == 0))
	setDuration(&r.TombstoneRetention, defaultTombstoneRetention, c.unset(key+"tombstone_retention", r.TombstoneRetention.Duration == 0))
	setDuration(&r.ApplyTimeout, defaultApplyTimeout, c.unset(key+"apply_timeout", r.ApplyTimeout.Duration == 0))
	setDuration(&r.LoopGuard.Window, defaultLoopWindow, c.unset(key+"loop_guard.window", r.LoopGuard.Window.Duration == 0))
	setString(&r.Granularity, GranularityField, c.unset(key+"granularity", r.Granularity == ""))
	setString(&r.Deletes, DeletesReview, c.unset(key+"deletes", r.Deletes == ""))
	setString(&r.UnmappedFields, UnmappedSkip, c.unset(key+"unmapped_fields", r.UnmappedFields == ""))
	if r.PropagateDeletes == nil {
		propagate := true
		r.PropagateDeletes = &propagate
	}
	if c.unset(key+"loop_guard.max_applies", r.LoopGuard.MaxApplies == 0) {
		r.LoopGuard.MaxApplies = defaultLoopMaxApplies
	}
	// pair_window defaults to 0, its zero value.
}

// unset reports whether the setting at key should get its default: it is zero and the
// file did not write it.
func (c *Config) unset(key string, zero bool) bool {
	return zero && !c.src.isSet(key)
}

func setString(dst *string, value string, apply bool) {
	if apply {
		*dst = value
	}
}

func setDuration(dst *Duration, value time.Duration, apply bool) {
	if apply {
		dst.Duration = value
	}
}
