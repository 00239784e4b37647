import { FRESH } from './lib.js';

/**
 * RESPONSE_STORE: stores a computed response under its ticket, only if the shard's incarnation
 * is the ticket's and none of its dependency buckets was invalidated since the ticket's clock.
 *
 * KEYS[1] the response shard's hash; KEYS[2] the response.
 * ARGV[1] the ticket's incarnation; ARGV[2] the ticket's clock; ARGV[3] the TTL in ms; ARGV[4]
 * the dependency buckets (comma-separated); ARGV[5] the body.
 * Reply: 1 when stored, 0 when refused.
 *
 * @module
 */
export const RESPONSE_STORE = `${FRESH}
if redis.call('HGET', KEYS[1], '_inc') ~= ARGV[1] then return 0 end
if not fresh(KEYS[1], tonumber(ARGV[2]), ARGV[4]) then return 0 end
redis.call('SET', KEYS[2], ARGV[1] .. '|' .. ARGV[2] .. '|' .. ARGV[4] .. '|' .. ARGV[5], 'PX', ARGV[3])
return 1
`;
