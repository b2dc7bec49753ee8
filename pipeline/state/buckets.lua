-- The states of a partition are the fields of its buckets, hashes <tag>:b:<i>, by
-- linear hashing over the first 32 bits of the record id's SHA-1 (redis.go). The
-- layout, hash <tag>:buckets, is {level, split, records}: buckets 0 .. 2^level +
-- split - 1 exist, and a record whose hash h has h mod 2^level below split is in
-- bucket h mod 2^(level+1), any other in h mod 2^level. This file is prepended to the
-- scripts that read or write states.
local function layout(key)
  local v = redis.call('HMGET', key, 'level', 'split', 'records')
  return tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0
end

local function bucketOf(level, split, h)
  local n = 2 ^ level
  local b = h % n
  if b < split then
    b = h % (2 * n)
  end
  return b
end

local function bucketKey(tag, b)
  return tag .. ':b:' .. string.format('%d', b)
end
