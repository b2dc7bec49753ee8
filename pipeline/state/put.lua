-- Put: write a batch of one partition's states atomically, fenced and versioned, and
-- keep the partition's deadline index and parity figures.
-- KEYS[1] fence, KEYS[2] deadline index (sorted set), KEYS[3] counts (hash: records
-- per system), KEYS[4] outbox, KEYS[5..n+4] the states, KEYS[n+5..] drift indexes
-- (sorted sets).
-- ARGV[1] writer's epoch (decimal), ARGV[2] the outbox ("" leaves it), ARGV[3] n;
-- then per write: expected stored
-- version (8 bytes big-endian, all zero for "no state"), new value (version+1 prefix
-- and encoded state, or "" to delete), due time (decimal ms, "0" for none), record;
-- then d, d × (counts field, delta); then m, m × (drift key index, "a" add | "r"
-- remove, record, since ms).
-- Reply: {0} written; {1, stored fence} fenced (claimed since the writer's claim),
-- nothing written; {2, i, stored version} write i expected another version, nothing
-- written.
local cur, _, epoch = fence(KEYS[1])
if epoch ~= tonumber(ARGV[1]) then
  return {1, cur or ''}
end
local n = tonumber(ARGV[3])
local none = string.rep('\0', 8)
for i = 1, n do
  local v = redis.call('GET', KEYS[i + 4])
  local stored = none
  if v then
    stored = string.sub(v, 1, 8)
  end
  if stored ~= ARGV[4 + 4 * (i - 1)] then
    return {2, i, stored}
  end
end
if ARGV[2] ~= '' then
  redis.call('SET', KEYS[4], ARGV[2])
end
for i = 1, n do
  local a = 4 + 4 * (i - 1)
  local val, due, record = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  if val == '' then
    redis.call('DEL', KEYS[i + 4])
  else
    redis.call('SET', KEYS[i + 4], val)
  end
  if due == '0' then
    redis.call('ZREM', KEYS[2], record)
  else
    redis.call('ZADD', KEYS[2], due, record)
  end
end
local a = 4 + 4 * n
local d = tonumber(ARGV[a])
for j = 0, d - 1 do
  redis.call('HINCRBY', KEYS[3], ARGV[a + 1 + 2 * j], ARGV[a + 2 + 2 * j])
end
a = a + 1 + 2 * d
local m = tonumber(ARGV[a])
for j = 0, m - 1 do
  local b = a + 1 + 4 * j
  local key = KEYS[n + 4 + tonumber(ARGV[b])]
  if ARGV[b + 1] == 'a' then
    redis.call('ZADD', key, 'NX', ARGV[b + 3], ARGV[b + 2])
  else
    redis.call('ZREM', key, ARGV[b + 2])
  end
end
return {0}
