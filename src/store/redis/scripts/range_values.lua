local ids = redis.call(ARGV[1], KEYS[1], ARGV[2], ARGV[3], 'LIMIT', ARGV[4], ARGV[5])
if #ids == 0 then return {ids, {}} end
local keys = {}
for i, id in ipairs(ids) do keys[i] = ARGV[6] .. id end
return {ids, redis.call('MGET', unpack(keys))}
