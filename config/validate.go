package config

import (
	"fmt"
	"slices"
	"strings"
)

// Validate checks a Config that has had its defaults applied and returns every problem it
// finds as a *ValidationError, each naming its key (and its line when the Config came
// from a file), or nil when the Config is usable.
func (c *Config) Validate() error {
	return asError(c.problems())
}

func (c *Config) problems() []Problem {
	v := &validator{c: c}
	v.name()
	v.connections()
	v.systems()
	v.topics()
	v.keys()
	v.authority()
	v.resolution()
	v.log()
	sortByLine(v.problems)
	return v.problems
}

// sortByLine orders problems as they appear in the file; those with no line come first.
func sortByLine(problems []Problem) {
	slices.SortStableFunc(problems, func(a, b Problem) int { return a.Line - b.Line })
}

// validator collects the problems of one Config.
type validator struct {
	c        *Config
	problems []Problem
}

func (v *validator) add(key, format string, args ...any) {
	v.problems = append(v.problems, Problem{Key: key, Line: v.c.src.line(key), Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) name() {
	switch {
	case v.c.Name == "":
		v.add("name", "required: it prefixes the apply, poison and audit topics, the Redis keys and the consumer group")
	case !validName(v.c.Name):
		v.add("name", "%q %s", v.c.Name, nameRule)
	}
}

func (v *validator) connections() {
	if len(v.c.Kafka.Brokers) == 0 {
		v.add("kafka.brokers", "required (set it in the file or with %s)", EnvKafkaBrokers)
	}
	for i, b := range v.c.Kafka.Brokers {
		if strings.TrimSpace(b) == "" {
			v.add(fmt.Sprintf("kafka.brokers[%d]", i), "empty broker address")
		}
	}
	k := v.c.Kafka
	switch {
	case k.SessionTimeout.Duration <= 0:
		v.add("kafka.session_timeout", "must be positive (got %s)", k.SessionTimeout.Duration)
	case k.HeartbeatInterval.Duration <= 0:
		v.add("kafka.heartbeat_interval", "must be positive (got %s)", k.HeartbeatInterval.Duration)
	case 3*k.HeartbeatInterval.Duration > k.SessionTimeout.Duration:
		v.add("kafka.heartbeat_interval", "%s is more than a third of kafka.session_timeout (%s): one late heartbeat would end the session",
			k.HeartbeatInterval.Duration, k.SessionTimeout.Duration)
	}
	v.kafkaConnection()
	v.redisConnection()
}

// nameRule completes the message for a name that cannot go into topic names and Redis keys.
const nameRule = "may contain only letters, digits, '.', '_' and '-' (it is used in Kafka topic names and Redis keys)"

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok {
			return false
		}
	}
	return true
}

// systemList names the systems for messages: "billing, crm".
func (v *validator) systemList() string {
	return strings.Join(v.c.SystemNames(), ", ")
}

func (v *validator) isSystem(name string) bool {
	_, ok := v.c.Systems[name]
	return ok
}

func (v *validator) checkEnum(key, value string, allowed ...string) {
	if !slices.Contains(allowed, value) {
		v.add(key, "%q is not one of: %s", value, strings.Join(allowed, ", "))
	}
}

func (v *validator) checkDuration(key string, d Duration) {
	if d.Duration < 0 {
		v.add(key, "must not be negative (got %s)", d)
	}
}

func (v *validator) checkPositive(key string, d Duration) {
	if d.Duration <= 0 {
		v.add(key, "must be positive (got %s)", d)
	}
}
