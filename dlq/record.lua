-- Record one dlq.Change into its entry, atomically (see redis.go for the layout).
-- KEYS[1] entry hash, KEYS[2] queue (all entries), KEYS[3] pending entries.
-- ARGV[1] id, [2] record, [3] reason, [4] cause token ('' = never deduplicated),
-- [5] at (unix ms), [6] at (RFC 3339), [7] target, [8] event id,
-- [9] attached items (JSON objects joined by ',', '' for none), [10] partition,
-- [11] n, then n field names; m, then m × (system, ts_us, version JSON without values,
-- k, then k × (field, value JSON));
-- b, then b × (field, base value JSON).
-- Reply: the entry's new rev, or 0 when the cause was already recorded.
-- Values are never decoded here: cjson reads numbers as doubles.
local key = KEYS[1]
local token = ARGV[4]
if token ~= '' and redis.call('HEXISTS', key, 'cause:' .. token) == 1 then
  return 0
end

if redis.call('EXISTS', key) == 0 then
  redis.call('HSET', key, 'id', ARGV[1], 'record', ARGV[2], 'reason', ARGV[3],
    'status', 'pending_review', 'queued_at', ARGV[6], 'fields', '[]', 'reasons', '[]',
    'attached', '[]', 'rev', 0, 'partition', ARGV[10])
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
elseif ARGV[3] == 'review_stale' then
  -- A decision reached the record after a later change: the entry is open again.
  redis.call('HSET', key, 'status', 'pending_review')
  redis.call('ZADD', KEYS[3], redis.call('ZSCORE', KEYS[2], ARGV[1]) or ARGV[5], ARGV[1])
end
if token ~= '' then
  redis.call('HSET', key, 'cause:' .. token, ARGV[6])
end
if ARGV[7] ~= '' then
  redis.call('HSETNX', key, 'target', ARGV[7])
end
if ARGV[8] ~= '' then
  redis.call('HSETNX', key, 'event_id', ARGV[8])
end

-- union adds names to the JSON array of strings in a hash field, keeping its order.
local function union(field, names)
  local list = cjson.decode(redis.call('HGET', key, field) or '[]')
  local have = {}
  for _, v in ipairs(list) do
    have[v] = true
  end
  local changed = false
  for _, v in ipairs(names) do
    if not have[v] then
      have[v] = true
      list[#list + 1] = v
      changed = true
    end
  end
  if changed then
    local parts = {}
    for i, v in ipairs(list) do
      parts[i] = cjson.encode(v)
    end
    redis.call('HSET', key, field, '[' .. table.concat(parts, ',') .. ']')
  end
end

union('reasons', {ARGV[3]})
local i = 11
local n = tonumber(ARGV[i])
local fields = {}
for j = 1, n do
  fields[j] = ARGV[i + j]
end
union('fields', fields)
i = i + n + 1

-- Each system's latest version: its time and deleted flag replaced unless the stored
-- one is newer, and its values laid field by field over the ones stored (a later
-- change to one held field keeps the system's value of the others).
n = tonumber(ARGV[i])
i = i + 1
for _ = 1, n do
  local system, ts, json, k = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], tonumber(ARGV[i + 3])
  local f = 'version:' .. system
  local old = redis.call('HGET', key, f)
  local oldTs = old and tonumber(string.match(old, '^{"ts_us":(%-?%d+)'))
  local newer = not oldTs or ts >= oldTs
  if newer then
    redis.call('HSET', key, f, json)
  end
  for v = 0, k - 1 do
    local vf = 'value:' .. system .. ':' .. ARGV[i + 4 + 2 * v]
    if newer or redis.call('HEXISTS', key, vf) == 0 then
      redis.call('HSET', key, vf, ARGV[i + 5 + 2 * v])
    end
  end
  i = i + 4 + 2 * k
end

-- The value before the conflict: the first one known stays.
n = tonumber(ARGV[i])
for j = 0, n - 1 do
  redis.call('HSETNX', key, 'base:' .. ARGV[i + 1 + 2 * j], ARGV[i + 2 + 2 * j])
end

if ARGV[9] ~= '' then
  local a = redis.call('HGET', key, 'attached') or '[]'
  if a == '[]' then
    a = '[' .. ARGV[9] .. ']'
  else
    a = string.sub(a, 1, -2) .. ',' .. ARGV[9] .. ']'
  end
  redis.call('HSET', key, 'attached', a)
end

redis.call('HSET', key, 'updated_at', ARGV[6])
return redis.call('HINCRBY', key, 'rev', 1)
