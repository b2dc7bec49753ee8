package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// redisLogger carries go-redis's log (a dial failing during an outage, a connection
// dropped) into the process's structured log: go-redis writes bare lines to stderr
// otherwise, which log collectors expecting JSON cannot parse.
type redisLogger struct{ log *zap.Logger }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Warn(strings.TrimSpace(fmt.Sprintf(format, v...)), zap.String("client", "go-redis"))
}

// logRedisTo sends go-redis's log, process-wide, to log.
func logRedisTo(log *zap.Logger) { redis.SetLogger(redisLogger{log}) }
