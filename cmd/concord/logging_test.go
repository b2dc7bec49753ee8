package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestRedisLogsGoThroughZap: go-redis's own log lines (a dial failing during an
// outage) reach the structured log, not bare stderr.
func TestRedisLogsGoThroughZap(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	logRedisTo(zap.New(core))
	t.Cleanup(func() { logRedisTo(zap.NewNop()) })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer func() { _ = rdb.Close() }()
	deadline := time.Now().Add(20 * time.Second)
	for logs.Len() == 0 && time.Now().Before(deadline) {
		_ = rdb.Ping(context.Background()).Err()
	}
	if logs.Len() == 0 {
		t.Fatal("go-redis logged nothing through zap while its server was unreachable")
	}
	entry := logs.All()[0]
	if !strings.Contains(entry.Message, "dial") || entry.ContextMap()["client"] != "go-redis" {
		t.Errorf("log entry = %q %v", entry.Message, entry.ContextMap())
	}
}
