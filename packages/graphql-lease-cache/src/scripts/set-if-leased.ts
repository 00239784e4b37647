import { SET_UNLESS_NEWER, STAMP_OF } from './lib.js';

/**
 * SET_IF_LEASED: fills values this reader leased, each only if its lease and its tags' versions are still those it read under.
 *
 * KEYS, per value: the key, its tag keys. ARGV: lease token (also the stored value's etag),
 *   lease suffix, then per value: number of tags, version, TTL (ms), codec payload.
 * Reply: per value 1 when stored, 0 when not (the lease is gone, a tag changed since the lease,
 *   or a newer version is stored).
 *
 * @module
 */
export const SET_IF_LEASED = `${STAMP_OF}${SET_UNLESS_NEWER}
local token, suffix = ARGV[1], ARGV[2]
local out = {}
local k = 1
for a = 3, #ARGV, 4 do
  local ntags, version, ttl, payload = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), ARGV[a + 3]
  local key = KEYS[k]
  local lease = key .. suffix
  local ok = 0
  local held = redis.call('GET', lease)
  if held and string.sub(held, 1, #token + 1) == token .. '|' then
    redis.call('DEL', lease)
    local stamp = string.sub(held, #token + 2)
    if stampOf(k + 1, ntags) == stamp then
      -- ARGV[a + 1], not version: Lua prints large numbers in exponent form.
      if setUnlessNewer(key, version, ARGV[a + 1] .. '|' .. stamp .. '|' .. token .. '|' .. payload, ttl) then ok = 1 end
    end
  end
  out[#out + 1] = ok
  k = k + 1 + ntags
end
return out
`;
