-- Delivered: replace the partition's outbox by its copy without messages, if it is
-- still the outbox the caller produced. KEYS[1] fence, KEYS[2] outbox; ARGV[1]
-- writer's epoch, ARGV[2] the outbox's seq (8 bytes), ARGV[3] its copy.
-- Reply: {0} done (or a later outbox, left alone); {1, stored fence} fenced.
local cur, _, epoch = fence(KEYS[1])
if epoch ~= tonumber(ARGV[1]) then
  return {1, cur or ''}
end
local box = redis.call('GET', KEYS[2])
if box and string.sub(box, 1, 8) == ARGV[2] then
  redis.call('SET', KEYS[2], ARGV[3])
end
return {0}
