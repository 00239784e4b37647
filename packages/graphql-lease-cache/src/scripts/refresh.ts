import { SET_UNLESS_NEWER } from './lib.js';

/**
 * REFRESH: writes values through (refresh and write-through policies), voiding the leases taken before.
 *
 * KEYS: the values' keys. ARGV: the etag of the values, the lease suffix, then per value:
 *   version, TTL (ms; 0: no expiry), codec payload. Values written through have no tags.
 * Reply: per value 1 when stored, 0 when a newer version is stored. Leases taken before this
 *   write are voided either way.
 *
 * @module
 */
export const REFRESH = `${SET_UNLESS_NEWER}
local etag, suffix = ARGV[1], ARGV[2]
local out = {}
for i = 1, #KEYS do
  local key = KEYS[i]
  local version, ttl, payload = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1]), ARGV[3 * i + 2]
  redis.call('DEL', key .. suffix)
  -- The version as sent: Lua prints large numbers in exponent form.
  out[i] = setUnlessNewer(key, version, ARGV[3 * i] .. '||' .. etag .. '|' .. payload, ttl) and 1 or 0
end
return out
`;
