local old
if ARGV[2] ~= '' then
  old = redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2], 'GET')
else
  old = redis.call('SET', KEYS[1], ARGV[1], 'GET')
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
if ARGV[6] ~= '' then
  redis.call('ZADD', KEYS[3], ARGV[6], ARGV[5])
else
  redis.call('ZREM', KEYS[3], ARGV[5])
end
local cur = redis.call('HMGET', KEYS[4], 'last_us', 'snapshot_id', 'status')
if cur[1] then
  local c = tonumber(cur[1])
  local n = tonumber(ARGV[7])
  if c > n or (c == n and cur[2] > ARGV[4]) then
    return {old, 0}
  end
else
  local top = redis.call('ZREVRANGE', KEYS[2], 0, 0)
  if top[1] ~= ARGV[4] then
    return {old, 1}
  end
end
redis.call('HSET', KEYS[4], 'last_us', ARGV[7], 'snapshot_id', ARGV[4], 'saga_name', ARGV[8],
  'status', ARGV[9], 'step', ARGV[10], 'step_index', ARGV[11])
redis.call('ZADD', KEYS[5], ARGV[7], ARGV[12])
redis.call('ZADD', KEYS[6], ARGV[7], ARGV[12])
if cur[3] and cur[3] ~= ARGV[9] then
  redis.call('ZREM', ARGV[13] .. cur[3], ARGV[12])
end
return {old, 0}
