-- Put: write a batch of one partition's states atomically, fenced and versioned, and
-- keep the partition's deadline index.
-- KEYS[1] fence key, KEYS[2] deadline index (sorted set), KEYS[3..n+2] state keys.
-- ARGV[1] writer's generation (decimal); ARGV[2..n+1] expected stored versions
-- (8 bytes big-endian, all zero for "no state"); ARGV[n+2..2n+1] new values
-- (version+1 prefix and encoded state), or "" to delete; ARGV[2n+2..3n+1] due times
-- (decimal ms, "0" for none); ARGV[3n+2..4n+1] the records (index members).
-- Reply: {0} written; {1, stored generation} fenced, nothing written;
-- {2, i, stored version} write i expected another version, nothing written
-- (the fence is raised all the same: the writer holds the partition).
local gen = tonumber(ARGV[1])
local cur = redis.call('GET', KEYS[1])
if cur and tonumber(cur) > gen then
  return {1, cur}
end
if cur ~= ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1])
end
local n = #KEYS - 2
local none = string.rep('\0', 8)
for i = 1, n do
  local v = redis.call('GET', KEYS[i + 2])
  local stored = none
  if v then
    stored = string.sub(v, 1, 8)
  end
  if stored ~= ARGV[i + 1] then
    return {2, i, stored}
  end
end
for i = 1, n do
  local val = ARGV[n + 1 + i]
  if val == '' then
    redis.call('DEL', KEYS[i + 2])
  else
    redis.call('SET', KEYS[i + 2], val)
  end
  local due = ARGV[2 * n + 1 + i]
  if due == '0' then
    redis.call('ZREM', KEYS[2], ARGV[3 * n + 1 + i])
  else
    redis.call('ZADD', KEYS[2], due, ARGV[3 * n + 1 + i])
  end
end
return {0}
