/**
 * READ_FENCED: the worker leader's read of one slot stream on a Cluster, where the leader's lease
 * (`{wb}:leader`) is in another slot than the stream and no script can check both. Each stream
 * has a fence instead, in its slot: the consumer that reads it. The fence is taken only when free
 * (expired, or released by RESIGN), and whoever takes it first moves every entry other consumers
 * left pending to itself; so, per stream (and so per entity), one consumer reads at a time, and
 * a new one takes over what the last one read before it reads anything new, as on one Redis.
 *
 * KEYS[1] the stream's fence; KEYS[2] the stream.
 * ARGV[1] this consumer; ARGV[2] the group; ARGV[3] the most entries to read; ARGV[4] the id to
 * read this consumer's pending entries after (`0`: from the start); ARGV[5] the fence's TTL in
 * ms; ARGV[6] `1` to read new entries too when fewer than ARGV[3] are pending.
 * Reply: `{pending, new, length}`: XREADGROUP's entries (`[id, fields]`) of this consumer's
 * pending ones and of new ones, and the stream's length; 0 when another consumer holds the fence.
 *
 * @module
 */
export const READ_FENCED = `
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[5])
local function read(from, count)
  local reply = redis.pcall('XREADGROUP', 'GROUP', ARGV[2], ARGV[1], 'COUNT', count, 'STREAMS', KEYS[2], from)
  if type(reply) == 'table' and reply.err then
    if not string.find(reply.err, 'NOGROUP', 1, true) then return redis.error_reply(reply.err) end
    -- The stream is new (or was removed): its group starts at its first entry.
    redis.call('XGROUP', 'CREATE', KEYS[2], ARGV[2], '0', 'MKSTREAM')
    reply = redis.call('XREADGROUP', 'GROUP', ARGV[2], ARGV[1], 'COUNT', count, 'STREAMS', KEYS[2], from)
  end
  if not reply then return {} end
  return reply[1][2]
end
if not holder and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.pcall('XGROUP', 'CREATE', KEYS[2], ARGV[2], '0')
  local cursor = '0-0'
  repeat
    cursor = redis.call('XAUTOCLAIM', KEYS[2], ARGV[2], ARGV[1], 0, cursor, 'COUNT', 1000, 'JUSTID')[1]
  until cursor == '0-0'
end
local count = tonumber(ARGV[3])
local pending = read(ARGV[4], count)
if pending.err then return pending end
local new = {}
if ARGV[6] == '1' and #pending < count then
  new = read('>', count - #pending)
  if new.err then return new end
end
return {pending, new, redis.call('XLEN', KEYS[2])}
`;
