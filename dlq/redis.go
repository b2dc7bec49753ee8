package dlq

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/concord-sync/concord/resolver"
)

// Store keeps DLQ entries in Redis (standalone, Sentinel or Cluster through
// redis.UniversalClient).
//
// Key layout: every key carries the hash tag {<name>:dlq}, so all of them live in
// one hash slot and a script may touch an entry and both indexes at once (the DLQ is
// small next to the state, so one slot carries it easily):
//
//	{<name>:dlq}:queue    sorted set of every entry id, scored by queued_at (unix ms): oldest first
//	{<name>:dlq}:pending  sorted set of the ids of pending_review entries, scored alike
//	{<name>:dlq}:e:<id>   hash, one per entry
//
// Entry hash fields:
//
//	id, record, reason           the entry's id, record and first reason
//	reasons, fields              JSON arrays of strings: every reason, every field (union)
//	status                       pending_review, resolved or dismissed
//	queued_at, updated_at        RFC 3339 (UTC, nanoseconds): first and last change recorded
//	rev                          integer, incremented by every recorded change
//	attached                     JSON array of {system, ts_us, deleted, values, cause, at}
//	target, event_id             apply_unconfirmed: the unconfirmed target and apply
//	version:<system>             JSON {ts_us, system, deleted}: the time of the system's latest version
//	value:<system>:<field>       JSON: the system's latest value of the field
//	base:<field>                 JSON: the field's agreed value before the conflict
//	cause:<token>                RFC 3339 time a change was recorded; token is the JSON
//	                             array [cause, reason, target, event_id, fields]
//
// Versions and base values have fields of their own, rather than living in one JSON
// object, because the script must replace one system's version without decoding the
// others: Lua's cjson reads numbers as doubles and would round large integers.
//
// Resolving or dismissing an entry must set its status, remove it from the pending
// set and increment rev, in one script.
//
// A Store is safe for concurrent use. name must not start with '}' (config names are
// [A-Za-z0-9._-]+), or the hash tag would be empty and keys would spread over slots.
type Store struct {
	client redis.UniversalClient
	prefix string
}

// NewStore returns a Store keeping its keys under name (the config's name) in client.
func NewStore(client redis.UniversalClient, name string) *Store {
	return &Store{client: client, prefix: "{" + name + ":dlq}"}
}

var (
	//go:embed record.lua
	recordSource string
	recordScript = redis.NewScript(recordSource)
)

func (s *Store) queueKey() string          { return s.prefix + ":queue" }
func (s *Store) pendingKey() string        { return s.prefix + ":pending" }
func (s *Store) entryKey(id string) string { return s.prefix + ":e:" + id }

// Record records the changes in order, in one pipelined round trip (two the first
// time a server runs the script). Each Change is applied to its entry atomically:
//
//   - the first Change of an entry id creates it, pending_review, queued at its At;
//   - a later one adds its fields and reason, replaces each of its systems' versions
//     unless the stored one has a greater TsUs, keeps the first base value of each
//     field, and, with reason attached, appends its versions to the attached changes;
//   - a Change already recorded in that entry (same Cause, Reason, Target, EventID and
//     Fields) is skipped, so recording a reprocessed batch again changes nothing. A
//     Change with no Cause is never taken for another.
//
// Every change is checked before anything is sent: an invalid one fails the call with
// nothing recorded. After a Redis error some changes may be recorded and others not;
// calling again with the same changes completes them.
func (s *Store) Record(ctx context.Context, changes []Change) error {
	if len(changes) == 0 {
		return nil
	}
	calls := make([]scriptCall, len(changes))
	for i := range changes {
		c, err := s.call(&changes[i])
		if err != nil {
			return fmt.Errorf("dlq: change %d (entry %q): %w", i, changes[i].EntryID, err)
		}
		calls[i] = c
	}
	cmds := s.run(ctx, calls, false)
	if i := slices.IndexFunc(cmds, func(c *redis.Cmd) bool { return isNoScript(c.Err()) }); i >= 0 {
		// The server lost its script cache (a restart, a failover): send the script
		// itself from the first refused change on. Changes after it were refused too.
		copy(cmds[i:], s.run(ctx, calls[i:], true))
	}
	for i, cmd := range cmds {
		if err := cmd.Err(); err != nil {
			return fmt.Errorf("dlq: recording change %d of %d (entry %q, record %q): %w",
				i+1, len(changes), changes[i].EntryID, changes[i].Record, err)
		}
	}
	return nil
}

type scriptCall struct {
	keys []string
	args []any
}

func (s *Store) run(ctx context.Context, calls []scriptCall, eval bool) []*redis.Cmd {
	pipe := s.client.Pipeline()
	cmds := make([]*redis.Cmd, len(calls))
	for i, c := range calls {
		if eval {
			cmds[i] = recordScript.Eval(ctx, pipe, c.keys, c.args...)
		} else {
			cmds[i] = recordScript.EvalSha(ctx, pipe, c.keys, c.args...)
		}
	}
	_, _ = pipe.Exec(ctx) // each command carries its own error
	return cmds
}

func isNoScript(err error) bool {
	return err != nil && (errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT"))
}

// storedVersion is a Version as kept in a version:<system> field: ts_us comes first
// so that the script can compare it without decoding the values.
type storedVersion struct {
	TsUs    int64                      `json:"ts_us"`
	System  string                     `json:"system"`
	Deleted bool                       `json:"deleted,omitempty"`
	Values  map[string]json.RawMessage `json:"values,omitempty"`
}

// call builds the record script's keys and arguments for one change (see record.lua).
func (s *Store) call(c *Change) (scriptCall, error) {
	if c.EntryID == "" {
		return scriptCall{}, errors.New("no EntryID")
	}
	token := ""
	if c.Cause != "" {
		b, err := json.Marshal([]any{c.Cause, c.Reason, c.Target, c.EventID, c.Fields})
		if err != nil {
			return scriptCall{}, err
		}
		token = string(b)
	}
	at := c.At.UTC().Format(time.RFC3339Nano)
	attached, err := attachedItems(c, at)
	if err != nil {
		return scriptCall{}, err
	}
	args := []any{c.EntryID, c.Record, c.Reason, token, c.At.UnixMilli(), at, c.Target, c.EventID, attached, c.Partition}
	args = append(args, len(c.Fields))
	for _, f := range c.Fields {
		args = append(args, f)
	}
	args = append(args, len(c.Versions))
	for _, v := range c.Versions {
		b, err := json.Marshal(storedVersion{TsUs: v.TsUs, System: v.System, Deleted: v.Deleted})
		if err != nil {
			return scriptCall{}, fmt.Errorf("version of %s: %w", v.System, err)
		}
		args = append(args, v.System, v.TsUs, b, len(v.Values))
		for _, f := range slices.Sorted(maps.Keys(v.Values)) {
			val := v.Values[f]
			if !json.Valid(val) {
				return scriptCall{}, fmt.Errorf("value of %s in %s's version is not JSON", f, v.System)
			}
			args = append(args, f, []byte(val))
		}
	}
	args = append(args, len(c.Base))
	for _, f := range slices.Sorted(maps.Keys(c.Base)) {
		b, err := json.Marshal(c.Base[f])
		if err != nil {
			return scriptCall{}, fmt.Errorf("base value of %s: %w", f, err)
		}
		args = append(args, f, b)
	}
	return scriptCall{keys: []string{s.entryKey(c.EntryID), s.queueKey(), s.pendingKey()}, args: args}, nil
}

// attachedItems returns the attached-change objects of an attached Change, joined
// by commas for the script to append, or "".
func attachedItems(c *Change, at string) (string, error) {
	if c.Reason != resolver.ReasonAttached {
		return "", nil
	}
	var sb strings.Builder
	for i, v := range c.Versions {
		b, err := json.Marshal(struct {
			Version
			Cause string `json:"cause"`
			At    string `json:"at"`
		}{v, c.Cause, at})
		if err != nil {
			return "", fmt.Errorf("attached version of %s: %w", v.System, err)
		}
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.Write(b)
	}
	return sb.String(), nil
}

// Get returns the entry with the given id, or an error wrapping ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*Entry, error) {
	h, err := s.client.HGetAll(ctx, s.entryKey(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("dlq: reading entry %q: %w", id, err)
	}
	if len(h) == 0 {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	e, err := parseEntry(h)
	if err != nil {
		return nil, fmt.Errorf("dlq: entry %q: %w", id, err)
	}
	return e, nil
}

// Pending returns the number of entries waiting for review.
func (s *Store) Pending(ctx context.Context) (int64, error) {
	n, err := s.client.ZCard(ctx, s.pendingKey()).Result()
	if err != nil {
		return 0, fmt.Errorf("dlq: counting pending entries: %w", err)
	}
	return n, nil
}

// List returns the entries the filter selects, oldest first, reading them all in one
// pipelined round trip after the index.
func (s *Store) List(ctx context.Context, f Filter) ([]*Entry, error) {
	index := s.queueKey()
	if f.Status == StatusPending {
		index = s.pendingKey()
	}
	ids, err := s.client.ZRange(ctx, index, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("dlq: listing entries: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := s.client.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGetAll(ctx, s.entryKey(id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("dlq: reading %d entries: %w", len(ids), err)
	}
	var out []*Entry
	for i, cmd := range cmds {
		h := cmd.Val()
		if len(h) == 0 {
			continue // removed since the index was read
		}
		e, err := parseEntry(h)
		if err != nil {
			return nil, fmt.Errorf("dlq: entry %q: %w", ids[i], err)
		}
		if f.match(e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// parseEntry reads an entry hash (see Store for its fields).
func parseEntry(h map[string]string) (*Entry, error) {
	e := &Entry{
		ID: h["id"], Record: h["record"], Reason: h["reason"], Status: h["status"],
		Target: h["target"], EventID: h["event_id"], Versions: map[string]Version{},
	}
	var errs []error
	jsonField := func(name string, dst any) {
		if v, ok := h[name]; ok {
			if err := json.Unmarshal([]byte(v), dst); err != nil {
				errs = append(errs, fmt.Errorf("field %s: %w", name, err))
			}
		}
	}
	timeField := func(name string, dst *time.Time) {
		if v, ok := h[name]; ok {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				errs = append(errs, fmt.Errorf("field %s: %w", name, err))
			}
			*dst = t
		}
	}
	if v, ok := h["partition"]; ok {
		p, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			errs = append(errs, fmt.Errorf("field partition: %w", err))
		}
		e.Partition = int32(p)
	}
	e.DecidedBy, e.Choice, e.DismissReason = h["decided_by"], h["choice"], h["dismiss_reason"]
	timeField("decided_at", &e.DecidedAt)
	jsonField("reasons", &e.Reasons)
	jsonField("fields", &e.Fields)
	jsonField("attached", &e.Attached)
	timeField("queued_at", &e.QueuedAt)
	timeField("updated_at", &e.UpdatedAt)
	if v, ok := h["rev"]; ok {
		rev, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("field rev: %w", err))
		}
		e.Rev = rev
	}
	for k, v := range h {
		switch {
		case strings.HasPrefix(k, "version:"):
			var sv storedVersion
			jsonField(k, &sv)
			system := strings.TrimPrefix(k, "version:")
			ver := e.Versions[system]
			ver.System, ver.TsUs, ver.Deleted = sv.System, sv.TsUs, sv.Deleted
			e.Versions[system] = ver
		case strings.HasPrefix(k, "value:"):
			system, field, ok := strings.Cut(strings.TrimPrefix(k, "value:"), ":")
			if !ok {
				errs = append(errs, fmt.Errorf("field %q: not value:<system>:<field>", k))
				continue
			}
			ver := e.Versions[system]
			if ver.Values == nil {
				ver.Values = map[string]json.RawMessage{}
			}
			ver.Values[field] = json.RawMessage(v)
			e.Versions[system] = ver
		case strings.HasPrefix(k, "base:"):
			if e.Base == nil {
				e.Base = map[string]json.RawMessage{}
			}
			e.Base[strings.TrimPrefix(k, "base:")] = json.RawMessage(v)
		case strings.HasPrefix(k, "cause:"):
			var token []json.RawMessage
			var cause string
			if err := json.Unmarshal([]byte(strings.TrimPrefix(k, "cause:")), &token); err != nil || len(token) == 0 ||
				json.Unmarshal(token[0], &cause) != nil {
				errs = append(errs, fmt.Errorf("field %q: not a cause token", k))
				continue
			}
			if !slices.Contains(e.Causes, cause) {
				e.Causes = append(e.Causes, cause)
			}
		}
	}
	slices.Sort(e.Causes)
	return e, errors.Join(errs...)
}
