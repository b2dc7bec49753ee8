-- Put: write a batch of one partition's states atomically, fenced, and keep the
-- partition's name dictionary, deadline index and parity figures.
-- KEYS[1] fence, KEYS[2] deadline index (sorted set), KEYS[3] counts (hash: records
-- per system), KEYS[4] outbox, KEYS[5] name dictionary (list), KEYS[6..n+5] the
-- states, KEYS[n+6..] drift indexes (sorted sets).
-- ARGV[1] writer's epoch (decimal), ARGV[2] the outbox ("" leaves it), ARGV[3] n,
-- ARGV[4] the dictionary's length the states were encoded against, ARGV[5] k, then
-- k names to append to it (checked against ARGV[4] only when k > 0); then per write: new value (encoded state, or "" to
-- delete), due time (decimal ms, "0" for none), record; then d, d × (counts field,
-- delta); then m, m × (drift key index, "a" add | "r" remove, record, since ms).
-- Reply: {0} written; {1, stored fence} fenced (claimed since the writer's claim),
-- nothing written; {3, dictionary length} names to append, but the dictionary is
-- not the length the states were encoded against, nothing written.
--
-- No record's stored version is compared: the fence makes the writer the
-- partition's only one (see redis.go). The states, the deadline index changes and
-- the dictionary's names are written with one command each (in chunks, to stay
-- within Lua's stack), not one per record.
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
if k > 0 then
  bulk('RPUSH', KEYS[5], {unpack(ARGV, 6, 5 + k)})
end
if ARGV[2] ~= '' then
  redis.call('SET', KEYS[4], ARGV[2])
end
-- A record written twice in one batch keeps its last write, as if written in order.
local last = {}
for i = 1, n do
  last[KEYS[i + 5]] = i
end
local set, del, due, undue = {}, {}, {}, {}
for i = 1, n do
  local a = 6 + k + 3 * (i - 1)
  local val, at, record = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  if last[KEYS[i + 5]] ~= i then
    -- superseded by a later write in the batch
  elseif val == '' then
    del[#del + 1] = KEYS[i + 5]
  else
    set[#set + 1] = KEYS[i + 5]
    set[#set + 1] = val
  end
  if at == '0' then
    undue[#undue + 1] = record
  else
    due[#due + 1] = at
    due[#due + 1] = record
  end
end
bulk('MSET', nil, set)
bulk('DEL', nil, del)
bulk('ZADD', KEYS[2], due)
bulk('ZREM', KEYS[2], undue)

local a = 6 + k + 3 * n
local d = tonumber(ARGV[a])
for j = 0, d - 1 do
  redis.call('HINCRBY', KEYS[3], ARGV[a + 1 + 2 * j], ARGV[a + 2 + 2 * j])
end
a = a + 1 + 2 * d
local m = tonumber(ARGV[a])
for j = 0, m - 1 do
  local b = a + 1 + 4 * j
  local key = KEYS[n + 5 + tonumber(ARGV[b])]
  if ARGV[b + 1] == 'a' then
    redis.call('ZADD', key, 'NX', ARGV[b + 3], ARGV[b + 2])
  else
    redis.call('ZREM', key, ARGV[b + 2])
  end
end
return {0}
