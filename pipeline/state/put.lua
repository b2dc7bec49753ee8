-- Put: write a batch of one partition's states atomically, fenced, and keep the
-- partition's name dictionary, bucket layout, deadline index and parity figures.
-- KEYS[1] fence, KEYS[2] deadline index (sorted set), KEYS[3] counts (hash: records
-- per system), KEYS[4] outbox, KEYS[5] name dictionary (list), KEYS[6] bucket layout
-- (buckets.lua), KEYS[7..] drift indexes (sorted sets).
-- ARGV[1] writer's epoch (decimal), ARGV[2] the outbox ("" leaves it), ARGV[3] n,
-- ARGV[4] the dictionary's length the states were encoded against, ARGV[5] k,
-- ARGV[6] the partition's hash tag, ARGV[7] the bucket load (records per bucket
-- beyond which a bucket is split), then k names to append to the dictionary (checked
-- against ARGV[4] only when k > 0); then per write: new value (encoded state, or ""
-- to delete), due time (decimal ms, "0" for none), record, its hash (decimal), "1"
-- when the record may still have a state key of before buckets (deleted) else "0";
-- then d, d × (counts field, delta); then m, m × (drift key index, "a" add | "r"
-- remove, record, since ms).
-- Reply: {0} written; {1, stored fence} fenced (claimed since the writer's claim),
-- nothing written; {3, dictionary length} names to append, but the dictionary is
-- not the length the states were encoded against, nothing written.
--
-- No record's stored version is compared: the fence makes the writer the
-- partition's only one (see redis.go). The states, the deadline index changes and
-- the dictionary's names are written with one command per bucket or index (in
-- chunks, to stay within Lua's stack), not one per record.
local cur, _, epoch = fence(KEYS[1])
if epoch ~= tonumber(ARGV[1]) then
  return {1, cur or ''}
end
-- States refer to names by index and the list only grows, so states encoded against
-- any prefix of it stay right; only appending needs the writer's list to be the
-- whole list, or a name could be appended twice or an index taken twice.
local k = tonumber(ARGV[5])
if k > 0 then
  local have = redis.call('LLEN', KEYS[5])
  if have ~= tonumber(ARGV[4]) then
    return {3, have}
  end
end

local chunk = 1000
local function bulk(cmd, key, items)
  for i = 1, #items, chunk do
    local j = math.min(i + chunk - 1, #items)
    if key then
      redis.call(cmd, key, unpack(items, i, j))
    else
      redis.call(cmd, unpack(items, i, j))
    end
  end
end

local n = tonumber(ARGV[3])
local tag, load = ARGV[6], tonumber(ARGV[7])
if k > 0 then
  bulk('RPUSH', KEYS[5], {unpack(ARGV, 8, 7 + k)})
end
if ARGV[2] ~= '' then
  redis.call('SET', KEYS[4], ARGV[2])
end
local level, split, records = layout(KEYS[6])
-- A record written twice in one batch keeps its last write, as if written in order.
local w0 = 8 + k
local last = {}
for i = 1, n do
  last[ARGV[w0 + 5 * (i - 1) + 2]] = i
end
local buckets, order, old, due, undue = {}, {}, {}, {}, {}
for i = 1, n do
  local a = w0 + 5 * (i - 1)
  local val, at, record = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  if last[record] == i then
    local bi = bucketOf(level, split, tonumber(ARGV[a + 3]))
    local b = buckets[bi]
    if not b then
      b = {set = {}, del = {}}
      buckets[bi] = b
      order[#order + 1] = bi
    end
    if val == '' then
      b.del[#b.del + 1] = record
    else
      b.set[#b.set + 1] = record
      b.set[#b.set + 1] = val
    end
    if ARGV[a + 4] == '1' then
      old[#old + 1] = tag .. ':s:' .. record
    end
  end
  if at == '0' then
    undue[#undue + 1] = record
  else
    due[#due + 1] = at
    due[#due + 1] = record
  end
end
for _, bi in ipairs(order) do
  local b, key = buckets[bi], bucketKey(tag, bi)
  for i = 1, #b.set, chunk do
    records = records + redis.call('HSET', key, unpack(b.set, i, math.min(i + chunk - 1, #b.set)))
  end
  for i = 1, #b.del, chunk do
    records = records - redis.call('HDEL', key, unpack(b.del, i, math.min(i + chunk - 1, #b.del)))
  end
end
bulk('DEL', nil, old)
bulk('ZADD', KEYS[2], due)
bulk('ZREM', KEYS[2], undue)

-- Grow: split bucket `split` while the partition holds more than load records per
-- bucket, moving the records whose hash says so to bucket split + 2^level.
while records > load * (2 ^ level + split) do
  local n0 = 2 ^ level
  local from = bucketKey(tag, split)
  local all = redis.call('HGETALL', from)
  local move, gone = {}, {}
  for i = 1, #all, 2 do
    if tonumber(string.sub(redis.sha1hex(all[i]), 1, 8), 16) % (2 * n0) ~= split then
      move[#move + 1] = all[i]
      move[#move + 1] = all[i + 1]
      gone[#gone + 1] = all[i]
    end
  end
  bulk('HSET', bucketKey(tag, split + n0), move)
  bulk('HDEL', from, gone)
  split = split + 1
  if split == n0 then
    level, split = level + 1, 0
  end
end
redis.call('HSET', KEYS[6], 'level', level, 'split', split, 'records', records)

local a = w0 + 5 * n
local d = tonumber(ARGV[a])
for j = 0, d - 1 do
  redis.call('HINCRBY', KEYS[3], ARGV[a + 1 + 2 * j], ARGV[a + 2 + 2 * j])
end
a = a + 1 + 2 * d
local m = tonumber(ARGV[a])
for j = 0, m - 1 do
  local b = a + 1 + 4 * j
  local key = KEYS[6 + tonumber(ARGV[b])]
  if ARGV[b + 1] == 'a' then
    redis.call('ZADD', key, 'NX', ARGV[b + 3], ARGV[b + 2])
  else
    redis.call('ZREM', key, ARGV[b + 2])
  end
end
return {0}
