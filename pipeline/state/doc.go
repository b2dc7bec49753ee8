// Package state keeps the resolver's per-record state between events.
//
// Store is the interface the pipeline uses; Memory implements it in process (replay,
// tests) and Redis in Redis, Cluster included (redis.go documents the key layout and
// the script that fences and writes a partition's batch in one round trip; names.go
// the partition's name dictionary). Every implementation must pass the contract suite
// in package statetest.
//
// MarshalState and UnmarshalState are the compact, self-contained binary form of
// resolver.State; the Redis store keeps a variant without the name table and the
// record ID (encoding.go documents both; BenchmarkMarshalState reports the size for a
// typical record, TestRedisMemoryOfBenchState the Redis memory of the bench's).
package state
