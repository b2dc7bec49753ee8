// Package state keeps the resolver's per-record state between events.
//
// Store is the interface the pipeline uses; Memory implements it in process (replay,
// tests) and Redis in Redis, Cluster included (redis.go documents the key layout and
// the scripts that fence and compare-and-set a partition's batch in one round trip).
// Every implementation must pass the contract suite in package statetest.
//
// MarshalState and UnmarshalState are the compact binary form of resolver.State that
// Redis stores (encoding.go documents the format; BenchmarkMarshalState reports its
// size for a typical record).
package state
