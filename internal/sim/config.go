package sim

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/concord-sync/concord/internal/world"
)

// Apply formats a system's sink consumes (DESIGN.md section 4; codecs/apply.go).
const (
	FormatDebezium = world.FormatDebezium // Debezium envelope: op d deletes, otherwise `after` is upserted
	FormatFlat     = world.FormatFlat     // the row as a struct; a null value deletes the record in the key
)

// Defaults for zero Config fields.
const (
	DefaultRecords     = 200
	DefaultDeleteRatio = 0.02
)

// ErrConfig is wrapped by every error of Config.Validate.
var ErrConfig = errors.New("sim: invalid configuration")

// SystemSpec describes one simulated system: its table, its topics and what its users edit.
type SystemSpec struct {
	Name        string // "crm": the Debezium server name and source.db
	Topic       string // CDC topic it publishes to, "<server>.<schema>.<table>", e.g. "crm.public.contacts"
	ApplyTopic  string // topic its sink consumes, e.g. "contacts.apply.crm"
	ApplyFormat string // FormatDebezium (default) or FormatFlat
	KeyColumn   string // the primary key column; default "id"
	// Columns maps canonical field names to this system's columns (email -> email_address).
	// Fields not listed keep their name as the column name.
	Columns map[string]string
	// TimestampColumn, when set, is a column holding the row's last write time (epoch ms
	// on this system's clock) that every write sets, the sink's included, like a trigger.
	TimestampColumn string
	// FullBefore is REPLICA IDENTITY FULL: updates and deletes carry the whole old row.
	// Without it updates have a null `before` and deletes only the key.
	FullBefore bool
	Skew       time.Duration // this system's clock offset: source.ts_ms and TimestampColumn use now+Skew
	// Drift makes the clock wander: every write adds a uniform random offset in
	// [0, Drift) on top of Skew, as a clock stepped by NTP does.
	Drift  time.Duration
	Owns   []string // canonical fields its users edit that no other system edits
	Shared []string // canonical fields its users edit that other systems edit too
	// Types are the PostgreSQL types of columns (world.PGTimestamptz, "numeric(12,2)",
	// ...; see world.Spec.Types): its sink writes them as PostgreSQL stores them, a
	// value PostgreSQL refuses fails the sink, and its change events carry them as
	// Debezium does. Columns without one are text.
	Types map[string]string
	// Toasted are columns PostgreSQL stores out of line: without FullBefore, an update
	// that leaves one unchanged sends Debezium's unavailable placeholder for it.
	Toasted []string
}

// Config configures a Sim.
type Config struct {
	Brokers []string
	Systems []SystemSpec
	// Records is the key space: record IDs are "r-0" … "r-<Records-1>". Default DefaultRecords.
	Records int
	// Rate is edit actions per second, all systems together. An action is one edit by one
	// system, or one concurrent pair. 0 makes no edits: the systems are sinks only.
	Rate float64
	// ConcurrentRatio is the share of actions made as a concurrent pair: two systems that
	// share a field both edit it on the same record within a couple of milliseconds.
	ConcurrentRatio float64
	// DeleteRatio is the share of actions that delete a record (a later edit re-creates
	// it). 0 means DefaultDeleteRatio; a negative value means no deletes.
	DeleteRatio float64
	Seed        int64 // seeds every random choice of the editor
	// PartitionByID routes change events by the murmur2 hash of the record ID instead of
	// the key bytes (Kafka's default partitioner). Set it when systems name their key
	// columns differently but must stay co-partitioned by record ID (DESIGN.md section 1),
	// as Debezium's PartitionRouting SMT would do on a real connector.
	PartitionByID bool
	// SinkCommitInterval is how long a sink's oldest uncommitted write waits for its
	// offset commit at most; default DefaultSinkCommitInterval (see RestartSink).
	SinkCommitInterval time.Duration
	// EditLog keeps every user edit (system, record, field, value, time) for Edits,
	// so that a checker can follow each edit to where it ended. Off by default: the
	// log grows with every edit.
	EditLog bool
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Records == 0 {
		c.Records = DefaultRecords
	}
	if c.SinkCommitInterval == 0 {
		c.SinkCommitInterval = DefaultSinkCommitInterval
	}
	switch {
	case c.DeleteRatio == 0:
		c.DeleteRatio = DefaultDeleteRatio
	case c.DeleteRatio < 0:
		c.DeleteRatio = 0
	}
	c.Systems = slices.Clone(c.Systems)
	for i := range c.Systems {
		s := &c.Systems[i]
		if s.ApplyFormat == "" {
			s.ApplyFormat = FormatDebezium
		}
		if s.KeyColumn == "" {
			s.KeyColumn = "id"
		}
	}
	return c
}

// Validate checks c after defaults are applied. Errors wrap ErrConfig and name the field.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...))
	}
	if len(c.Brokers) == 0 {
		bad("Brokers: at least one broker address is needed")
	}
	if len(c.Systems) == 0 {
		bad("Systems: at least one system is needed")
	}
	if c.SinkCommitInterval < 0 {
		bad("SinkCommitInterval: %s is negative", c.SinkCommitInterval)
	}
	if c.Records < 0 {
		bad("Records: %d is negative", c.Records)
	}
	if c.Rate < 0 {
		bad("Rate: %v is negative", c.Rate)
	}
	if c.ConcurrentRatio < 0 || c.ConcurrentRatio+c.DeleteRatio > 1 {
		bad("ConcurrentRatio (%v) + DeleteRatio (%v) must be within [0, 1]", c.ConcurrentRatio, c.DeleteRatio)
	}
	names := map[string]bool{}
	for i, s := range c.Systems {
		if names[s.Name] {
			bad("Systems[%d].Name: %q appears twice", i, s.Name)
		}
		names[s.Name] = true
		errs = append(errs, s.validate(i)...)
	}
	return errors.Join(errs...)
}

func (s SystemSpec) validate(i int) []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: Systems[%d] (%s): "+format, append([]any{ErrConfig, i, s.Name}, args...)...))
	}
	if s.Name == "" {
		bad("Name is empty")
	}
	if s.Topic == "" {
		bad("Topic is empty")
	}
	if s.ApplyTopic == "" || s.ApplyTopic == s.Topic {
		bad("ApplyTopic %q must be set and differ from Topic", s.ApplyTopic)
	}
	if s.ApplyFormat != FormatDebezium && s.ApplyFormat != FormatFlat {
		bad("ApplyFormat %q is neither %q nor %q", s.ApplyFormat, FormatDebezium, FormatFlat)
	}
	if s.TimestampColumn == s.KeyColumn {
		bad("TimestampColumn %q is the key column", s.TimestampColumn)
	}
	if err := world.CheckTypes(s.Types); err != nil {
		bad("Types: %v", err)
	}
	seen := map[string]bool{}
	for _, f := range slices.Concat(s.Owns, s.Shared) {
		col := s.column(f)
		switch {
		case seen[f]:
			bad("field %q is listed twice in Owns and Shared", f)
		case col == s.KeyColumn || col == s.TimestampColumn:
			bad("field %q maps to column %q, which is the key or timestamp column", f, col)
		}
		seen[f] = true
	}
	return errs
}

// column returns this system's column for the canonical field f.
func (s SystemSpec) column(f string) string {
	if col, ok := s.Columns[f]; ok {
		return col
	}
	return f
}

// editable returns the canonical fields this system's users edit.
func (s SystemSpec) editable() []string {
	return slices.Concat(s.Owns, s.Shared)
}
