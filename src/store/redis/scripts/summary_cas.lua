local cur = redis.call('HMGET', KEYS[1], 'last_us', 'snapshot_id', 'status')
local old_status = cur[3] or ''
if ARGV[7] ~= '1' and cur[1] then
  local c = tonumber(cur[1])
  local n = tonumber(ARGV[1])
  if c > n or (c == n and cur[2] > ARGV[2]) then
    return {0, old_status}
  end
end
redis.call('HSET', KEYS[1], 'last_us', ARGV[1], 'snapshot_id', ARGV[2], 'saga_name', ARGV[3],
  'status', ARGV[4], 'step', ARGV[5], 'step_index', ARGV[6])
return {1, old_status}
