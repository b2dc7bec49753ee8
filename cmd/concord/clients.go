package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/concord-sync/concord/config"
	"github.com/concord-sync/concord/connect"
)

// clients connects to the configured Redis (checked with a PING) and builds the Kafka
// dialer and transport (TLS, SASL).
func clients(ctx context.Context, cfg *config.Config) (redis.UniversalClient, *connect.Kafka, error) {
	kc, err := connect.KafkaClients(cfg.Kafka, nil)
	if err != nil {
		return nil, nil, err
	}
	rdb, err := connect.Redis(cfg.Redis, nil)
	if err != nil {
		return nil, nil, err
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, nil, fmt.Errorf("redis (%s %s): %w (check redis.addr or redis.addrs, or CONCORD_REDIS_ADDR)",
			cfg.Redis.Mode, strings.Join(cfg.Redis.Addresses(), ", "), err)
	}
	return rdb, kc, nil
}
