package config

import (
	"fmt"
	"os"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Environment variables that override the file (secrets and addresses).
const (
	EnvKafkaBrokers  = "CONCORD_KAFKA_BROKERS" // comma-separated; replaces kafka.brokers
	EnvRedisAddr     = "CONCORD_REDIS_ADDR"    // comma-separated; replaces redis.addr and redis.addrs
	EnvRedisPassword = "CONCORD_REDIS_PASSWORD"
	EnvHTTPToken     = "CONCORD_HTTP_TOKEN"
)

// Load reads the configuration file at path, parses it, applies the environment
// overrides (ApplyEnv with os.Getenv) and defaults, and validates it. On success the
// Config is ready to use. On a problem with the contents it returns a *ValidationError
// listing every problem found, in the file and in Validate together.
func Load(path string) (*Config, error) {
	return load(path, os.Getenv)
}

func load(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, problems, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	c.ApplyEnv(getenv)
	c.ApplyDefaults()
	problems = append(problems, c.problems()...)
	sortByLine(problems)
	if err := asError(problems); err != nil {
		return nil, err
	}
	return c, nil
}

// Parse decodes a YAML configuration and applies defaults. It does not read the
// environment and does not call Validate. Unknown keys, duplicate keys and values of the
// wrong type (a duration that is not a Go duration string, say) are returned together as
// a *ValidationError naming each key path and line; YAML syntax errors as a plain error.
func Parse(data []byte) (*Config, error) {
	c, problems, err := decode(data)
	if err != nil {
		return nil, err
	}
	if err := asError(problems); err != nil {
		return nil, err
	}
	c.ApplyDefaults()
	return c, nil
}

// decode parses data into a Config, reporting the problems of the file's shape. The
// Config holds whatever decoded cleanly, so Load can go on to validate it.
func decode(data []byte) (*Config, []Problem, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, nil, fmt.Errorf("parse YAML: %w", err)
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		doc = doc.Content[0]
	}
	checker := newTreeChecker()
	checker.check(doc, reflect.TypeFor[Config](), "")
	c := &Config{}
	if !isNull(doc) {
		if err := doc.Decode(c); err != nil {
			return nil, nil, fmt.Errorf("decode: %w", err)
		}
	}
	c.src = checker.src
	return c, checker.problems, nil
}

// ApplyEnv applies the environment overrides, looking variables up with getenv (pass
// os.Getenv; tests pass a map's lookup). Unset or empty variables change nothing.
func (c *Config) ApplyEnv(getenv func(string) string) {
	if v := getenv(EnvKafkaBrokers); v != "" {
		c.Kafka.Brokers = splitList(v)
	}
	if v := getenv(EnvRedisAddr); v != "" {
		switch addrs := splitList(v); len(addrs) {
		case 1:
			c.Redis.Addr, c.Redis.Addrs = addrs[0], nil
		default:
			c.Redis.Addr, c.Redis.Addrs = "", addrs
		}
	}
	if v := getenv(EnvRedisPassword); v != "" {
		c.Redis.Password = v
	}
	if v := getenv(EnvHTTPToken); v != "" {
		c.HTTP.Token = v
	}
	c.applyConnectionEnv(getenv)
}

// Secrets resolves the review page's credentials: the bearer token (already set from
// CONCORD_HTTP_TOKEN, else read from token_file) and each user's password. Errors name
// the key; an empty secret is an error.
func (h *HTTP) Secrets(getenv func(string) string, readFile func(string) ([]byte, error)) (token string, users map[string]string, err error) {
	token = h.Token
	if token == "" && h.TokenFile != "" {
		b, err := readFile(h.TokenFile)
		if err != nil {
			return "", nil, fmt.Errorf("http.token_file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	users = map[string]string{}
	for name, u := range h.Users {
		var pw string
		switch {
		case u.PasswordEnv != "":
			pw = getenv(u.PasswordEnv)
		case u.PasswordFile != "":
			b, err := readFile(u.PasswordFile)
			if err != nil {
				return "", nil, fmt.Errorf("http.users.%s.password_file: %w", name, err)
			}
			pw = strings.TrimSpace(string(b))
		}
		if pw == "" {
			return "", nil, fmt.Errorf("http.users.%s: no password (set password_env to a variable that is set, or password_file)", name)
		}
		users[name] = pw
	}
	return token, users, nil
}

// splitList splits a comma-separated list, trimming spaces and dropping empty items.
func splitList(s string) []string {
	var items []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}
