-- Decide: resolve or dismiss a pending entry, atomically: exactly one reviewer wins.
-- KEYS[1] entry hash, KEYS[2] pending set, KEYS[3] outbox stream, KEYS[4] audit stream.
-- ARGV[1] rev the reviewer decided on, [2] new status, [3] reviewer, [4] choice,
-- [5] decided at (RFC 3339), [6] dismiss reason, [7] review command for the pipeline
-- ('' for none), [8] audit entry (JSON), [9] audit stream max length.
-- Reply: {0} decided; {1} no such entry; {2, status} not pending; {3, rev} stale.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  return {1}
end
if status ~= 'pending_review' then
  return {2, status}
end
local rev = redis.call('HGET', KEYS[1], 'rev')
if rev ~= ARGV[1] then
  return {3, rev}
end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'decided_by', ARGV[3], 'choice', ARGV[4],
  'decided_at', ARGV[5], 'dismiss_reason', ARGV[6])
redis.call('HINCRBY', KEYS[1], 'rev', 1)
redis.call('ZREM', KEYS[2], redis.call('HGET', KEYS[1], 'id'))
local audit = redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[9], '*', 'entry', ARGV[8])
redis.call('XADD', KEYS[3], '*', 'kind', 'audit', 'payload', ARGV[8], 'id', audit)
if ARGV[7] ~= '' then
  redis.call('XADD', KEYS[3], '*', 'kind', 'review', 'payload', ARGV[7])
end
return {0}
