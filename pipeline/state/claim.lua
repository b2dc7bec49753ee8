-- Claim: raise a partition's fence to a generation unless a newer one holds it.
-- KEYS[1] fence key; ARGV[1] generation (decimal).
-- Reply: {0} claimed; {1, stored generation} fenced by a newer generation.
local cur = redis.call('GET', KEYS[1])
if cur and tonumber(cur) > tonumber(ARGV[1]) then
  return {1, cur}
end
if cur ~= ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1])
end
return {0}
