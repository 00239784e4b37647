/**
 * INVALIDATE: deletes values, their leases and tags.
 *
 * KEYS: n value keys, then tag keys. ARGV: n, the lease suffix.
 * Deletes the values and their leases, and the tags (whose dependants then read as misses).
 * Reply: the number of keys deleted.
 *
 * @module
 */
export const INVALIDATE = `
local n, suffix = tonumber(ARGV[1]), ARGV[2]
local deleted = 0
for i = 1, n do deleted = deleted + redis.call('DEL', KEYS[i], KEYS[i] .. suffix) end
for i = n + 1, #KEYS do deleted = deleted + redis.call('DEL', KEYS[i]) end
return deleted
`;
