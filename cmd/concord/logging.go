package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/concord-sync/concord/config"
)

// newLogger logs at level ("" for info) in format: JSON, readable text, or auto
// (text on a terminal, JSON otherwise, for log collectors).
func newLogger(level, format string) (*zap.Logger, error) {
	if level == "" {
		level = "info"
	}
	if !slices.Contains(config.LogLevels, level) {
		return nil, fmt.Errorf("log level %q is not one of %s", level, strings.Join(config.LogLevels, ", "))
	}
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	if format == "" || format == config.LogAuto {
		format = config.LogJSON
		if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			format = config.LogText
		}
	}
	cfg := zap.NewProductionConfig()
	if format == config.LogText {
		cfg = zap.NewDevelopmentConfig()
		cfg.EncoderConfig.EncodeLevel = zapcore.CapitalColorLevelEncoder
		cfg.DisableStacktrace = true
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	return cfg.Build()
}

// defaultLogger is the logger of commands without a configuration's log settings.
func defaultLogger() *zap.Logger {
	log, err := newLogger("", "")
	if err != nil {
		return zap.NewNop()
	}
	return log
}

// redisLogger carries go-redis's log (a dial failing during an outage, a connection
// dropped) into the process's structured log: go-redis writes bare lines to stderr
// otherwise, which log collectors expecting JSON cannot parse.
type redisLogger struct{ log *zap.Logger }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Warn(strings.TrimSpace(fmt.Sprintf(format, v...)), zap.String("client", "go-redis"))
}

// logRedisTo sends go-redis's log, process-wide, to log.
func logRedisTo(log *zap.Logger) { redis.SetLogger(redisLogger{log}) }
