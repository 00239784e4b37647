import { FLEET_LIB } from './fleet-lib.js';

/**
 * FLEET_ACK: records that a member has applied every invalidation up to an id, and tells the
 * writers waiting for it. Does not extend the lease.
 *
 * KEYS[1] the fleet's hash. ARGV[1] member; ARGV[2] the id; ARGV[3] the acknowledgements' channel.
 * Publishes `<member> <id>`. Reply: 1, or 0 when the member is not registered (nothing changed).
 *
 * @module
 */
export const FLEET_ACK = `${FLEET_LIB}
local field = 'm:' .. ARGV[1]
local value = redis.call('HGET', KEYS[1], field)
if not value then return 0 end
local expiry, acked, l1 = member(value)
if idAfter(ARGV[2], acked) then redis.call('HSET', KEYS[1], field, expiry .. '|' .. ARGV[2] .. '|' .. l1) end
redis.call('PUBLISH', ARGV[3], ARGV[1] .. ' ' .. ARGV[2])
return 1
`;

/**
 * FLEET_STATUS: where each member stands.
 *
 * KEYS[1] the fleet's hash. ARGV: members.
 * Reply: for each member, its acked id and the ms its lease has left; `-` and -1 when it is not
 * registered or its lease has run out.
 *
 * @module
 */
export const FLEET_STATUS = `${FLEET_LIB}
local now = nowMs()
local reply = {}
for i = 1, #ARGV do
  local value = redis.call('HGET', KEYS[1], 'm:' .. ARGV[i])
  local expiry, acked = -1, '-'
  if value then expiry, acked = member(value) end
  if expiry > now then
    reply[#reply + 1] = acked
    reply[#reply + 1] = expiry - now
  else
    reply[#reply + 1] = '-'
    reply[#reply + 1] = -1
  end
end
return reply
`;

/**
 * FLEET_LEAVE: removes a member that stops having delivered everything it owed, so that no one
 * takes it for dead. Refused when it runs late (queued in a paused Redis): by then the member may
 * owe what it could not deliver, and only its death makes the others deliver it.
 *
 * KEYS[1] the fleet's hash. ARGV[1] member; ARGV[2] when it was sent, ms since the epoch by the
 * member's clock; ARGV[3] the latest it may run after that, ms.
 * Reply: 1 when removed, else 0.
 *
 * @module
 */
export const FLEET_LEAVE = `${FLEET_LIB}
if nowMs() - tonumber(ARGV[2]) > tonumber(ARGV[3]) then return 0 end
return redis.call('HDEL', KEYS[1], 'm:' .. ARGV[1])
`;
