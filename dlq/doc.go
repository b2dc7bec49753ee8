// Package dlq is the review queue (DESIGN.md section 5): what the resolver could not
// decide safely waits here for a person.
//
// Change is what the pipeline records (entry.go); Store keeps entries in Redis
// (redis.go) and Entry is an entry as read back (stored.go). Recording is idempotent
// per Change, so a batch reprocessed after a crash records nothing twice.
package dlq
