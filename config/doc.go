// Package config reads, checks and explains concord's configuration file (DESIGN.md
// section 10): the systems to sync, how their columns map to canonical fields, who owns
// each field, and how conflicts are resolved.
//
// Load reads a file, applies the CONCORD_* environment overrides and the defaults, and
// validates; every problem is reported at once, each naming its key path and line, as a
// *ValidationError. Parse, ApplyEnv, ApplyDefaults and Validate are the same steps one by
// one. A loaded Config is immutable: its accessors (System.Column, System.FieldOf,
// Config.Tolerance, ...) are pure and safe for concurrent use, and a reload builds a new
// Config rather than changing the old one. Summary says in words what a Config means.
package config
