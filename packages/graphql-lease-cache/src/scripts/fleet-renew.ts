import { FLEET_LIB } from './fleet-lib.js';

/**
 * FLEET_RENEW: renews a member's lease, or registers it afresh, and names the members whose
 * leases ran out without their leaving.
 *
 * KEYS[1] the fleet's hash; KEYS[2] its invalidation log (a stream).
 * ARGV[1] member; ARGV[2] the newest invalidation id it has applied; ARGV[3] the lease, ms;
 * ARGV[4] when the member sent this call, ms since the epoch by its clock; ARGV[5] the latest
 * this call may run after that, ms; ARGV[6] the longest an invalidation may wait unapplied, ms;
 * ARGV[7] the incarnation the member registered under; ARGV[8] its l1 flag (1 or 0);
 * ARGV[9] an incarnation for a hash that has none; ARGV[10] 1 to register afresh;
 * ARGV[11] how long a dead member is remembered, ms.
 *
 * Reply, first element:
 * - `late`: the call ran more than ARGV[5] ms after it was sent (queued in a paused Redis, say);
 *   nothing changed. A lease granted that late could outlast the member's own idea of it.
 * - `lagging`, inc, last: an invalidation older than ARGV[6] ms is not applied yet: no renewal,
 *   so that a writer waits for this member at most that long plus one lease.
 * - `fresh`, inc, last, created, dead...: registered afresh (absent, expired, another incarnation,
 *   or asked to), acked up to `last`; the caller must have emptied its L1 before using the lease.
 *   `created` is 1 when the hash itself was just created (it had been lost).
 * - `ok`, inc, last, 0, dead...: renewed for ARGV[3] ms of Redis time from now.
 * `dead`: other members whose leases ran out without their leaving (they may owe invalidations:
 * the caller delivers what they recorded before it uses the lease). Those dead for longer than
 * ARGV[11] ms are forgotten.
 *
 * @module
 */
export const FLEET_RENEW = `${FLEET_LIB}
local now = nowMs()
if now - tonumber(ARGV[4]) > tonumber(ARGV[5]) then return {'late'} end
local lease, field = tonumber(ARGV[3]), 'm:' .. ARGV[1]
local inc = redis.call('HGET', KEYS[1], 'inc')
local created = 0
if not inc then
  inc = ARGV[9]
  redis.call('HSET', KEYS[1], 'inc', inc)
  created = 1
end
local last = redis.call('HGET', KEYS[1], 'last') or '0-0'
local all = redis.call('HGETALL', KEYS[1])
local dead, mine = {}, nil
for i = 1, #all, 2 do
  if string.sub(all[i], 1, 2) == 'm:' then
    if all[i] == field then
      mine = all[i + 1]
    else
      local expiry = member(all[i + 1])
      if expiry < now - tonumber(ARGV[11]) then
        redis.call('HDEL', KEYS[1], all[i])
      elseif expiry < now then
        dead[#dead + 1] = string.sub(all[i], 3)
      end
    end
  end
end
local fresh = ARGV[10] == '1' or mine == nil or inc ~= ARGV[7]
local acked = ARGV[2]
if mine then
  local expiry, myAcked = member(mine)
  if expiry < now then fresh = true end
  if idAfter(myAcked, acked) then acked = myAcked end
end
local reply
if fresh then
  acked = last
  reply = {'fresh', inc, last, created}
else
  if idAfter(last, acked) then
    local first = redis.call('XRANGE', KEYS[2], '(' .. acked, '+', 'COUNT', 1)
    if first[1] and now - idMs(first[1][1]) > tonumber(ARGV[6]) then return {'lagging', inc, last} end
  end
  reply = {'ok', inc, last, 0}
end
redis.call('HSET', KEYS[1], field, (now + lease) .. '|' .. acked .. '|' .. ARGV[8])
for i = 1, #dead do reply[#reply + 1] = dead[i] end
return reply
`;
