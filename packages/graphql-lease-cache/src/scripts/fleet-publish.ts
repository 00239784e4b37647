import { FLEET_LIB } from './fleet-lib.js';

/**
 * FLEET_PUBLISH: appends an invalidation to the fleet's log and publishes it, and names the
 * members the writer must wait for.
 *
 * KEYS[1] the fleet's hash; KEYS[2] its log.
 * ARGV[1] the writer (a member); ARGV[2] the payload (the dependencies, newline-separated);
 * ARGV[3] the channel; ARGV[4] the log's approximate length bound.
 *
 * Publishes `<previous id> <id> <writer>\n<payload>`: a subscriber whose last applied id is not
 * `<previous id>` missed something and empties its L1.
 * Reply: `ok` or `noinc` (the hash was lost: no member list; the writer must wait out any lease
 * granted before), the id, then for each other live member with an L1 that has not acked the id:
 * its name and the ms its lease has left.
 *
 * @module
 */
export const FLEET_PUBLISH = `${FLEET_LIB}
local now = nowMs()
local inc = redis.call('HGET', KEYS[1], 'inc')
local prev = redis.call('HGET', KEYS[1], 'last') or '0-0'
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'p', ARGV[2])
redis.call('HSET', KEYS[1], 'last', id)
redis.call('PUBLISH', ARGV[3], prev .. ' ' .. id .. ' ' .. ARGV[1] .. '\\n' .. ARGV[2])
if not inc then
  return {'noinc', id}
end
local reply = {'ok', id}
local all = redis.call('HGETALL', KEYS[1])
local writer = 'm:' .. ARGV[1]
for i = 1, #all, 2 do
  if string.sub(all[i], 1, 2) == 'm:' and all[i] ~= writer then
    local expiry, acked, l1 = member(all[i + 1])
    if l1 == '1' and expiry > now and idAfter(id, acked) then
      reply[#reply + 1] = string.sub(all[i], 3)
      reply[#reply + 1] = expiry - now
    end
  end
end
return reply
`;
