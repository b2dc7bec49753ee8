// Package state keeps the resolver's per-record state between events.
//
// Store is the interface the pipeline uses; Memory implements it in process (replay,
// tests). Every implementation must pass the contract suite in package statetest.
package state
