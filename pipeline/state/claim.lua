-- Claim: take a partition for a generation with a new epoch, unless a newer
-- generation holds it (and its fence is not the one the caller may supersede).
-- KEYS[1] fence key, KEYS[2] outbox key; ARGV[1] generation (decimal), ARGV[2] the
-- fence value the caller may replace although its generation is newer, or "".
-- Reply: {0, epoch, outbox} claimed; {1, stored fence, outbox} refused.
local cur, gen, epoch = fence(KEYS[1])
local box = redis.call('GET', KEYS[2]) or ''
if gen > tonumber(ARGV[1]) and cur ~= ARGV[2] then
  return {1, cur, box}
end
epoch = epoch + 1
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. epoch)
return {0, epoch, box}
