-- The fence of a partition is "<generation>:<epoch>" (a bare "<generation>", written
-- before epochs existed, reads as epoch 0). This file is prepended to the scripts that
-- check it.
local function fence(key)
  local cur = redis.call('GET', key)
  if not cur then
    return nil, -1, 0
  end
  local g, e = string.match(cur, '^(%-?%d+):(%d+)$')
  if g then
    return cur, tonumber(g), tonumber(e)
  end
  return cur, tonumber(cur), 0
end
