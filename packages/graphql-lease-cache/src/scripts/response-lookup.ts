import { FRESH } from './lib.js';

/**
 * RESPONSE_LOOKUP: a stored whole response, if still fresh; else the ticket of the computation
 * that follows (see ../response-store.ts for the protocol).
 *
 * KEYS[1] the response shard's hash; KEYS[2] the response.
 * ARGV[1] an incarnation for a shard that has none (it is created with it); ARGV[2] the grace in
 * ms (responses are stored for their TTL plus it; 0 for none); ARGV[3] '1' when a response past
 * its TTL, in its grace, may be served (the source is down), else ''.
 * Reply: `{1, body, buckets, ttl}` for a hit (the dependency buckets it was stored with, comma
 * separated, and its remaining TTL in milliseconds, grace excluded: what an in-process copy of
 * it needs); `{2, body}` for a response past its TTL served in its grace; `{0, incarnation,
 * clock}` for a miss (a stored response that is no longer fresh, or of another incarnation, is
 * deleted; one only past its TTL is kept for its grace).
 *
 * @module
 */
export const RESPONSE_LOOKUP = `${FRESH}
local inc = redis.call('HGET', KEYS[1], '_inc')
if not inc then
  inc = ARGV[1]
  redis.call('HSET', KEYS[1], '_inc', inc)
end
local clock = redis.call('HGET', KEYS[1], '_g') or '0'
local value = redis.call('GET', KEYS[2])
if value then
  local a = string.find(value, '|', 1, true)
  local b = a and string.find(value, '|', a + 1, true)
  local c = b and string.find(value, '|', b + 1, true)
  if c and string.sub(value, 1, a - 1) == inc and fresh(KEYS[1], tonumber(string.sub(value, a + 1, b - 1)), string.sub(value, b + 1, c - 1)) then
    local pttl, grace = redis.call('PTTL', KEYS[2]), tonumber(ARGV[2])
    if pttl < 0 or pttl > grace then
      return {1, string.sub(value, c + 1), string.sub(value, b + 1, c - 1), pttl < 0 and pttl or pttl - grace}
    end
    if ARGV[3] == '1' then return {2, string.sub(value, c + 1)} end
  else
    redis.call('DEL', KEYS[2])
  end
end
return {0, inc, clock}
`;
