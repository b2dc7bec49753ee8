-- Get: the stored states of records of one partition.
-- KEYS[1] layout (buckets.lua); ARGV[1] the partition's hash tag, then per record:
-- its hash (decimal), the record.
-- Reply: per record its value (nil when it has none) and 1 when the value is the
-- record's state key of before buckets (<tag>:s:<record>, read when the bucket has
-- no field for it; the next Put of the record deletes that key), else 0.
local level, split = layout(KEYS[1])
local tag = ARGV[1]
local out, keys = {}, {}
for i = 2, #ARGV, 2 do
  local record = ARGV[i + 1]
  local b = bucketOf(level, split, tonumber(ARGV[i]))
  local key = keys[b]
  if not key then
    key = bucketKey(tag, b)
    keys[b] = key
  end
  local v = redis.call('HGET', key, record)
  local old = 0
  if not v then
    v = redis.call('GET', tag .. ':s:' .. record)
    if v then
      old = 1
    end
  end
  out[#out + 1] = v
  out[#out + 1] = old
end
return out
