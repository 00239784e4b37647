import { STORED_VERSION } from './lib.js';

/**
 * INVALIDATE: deletes values, their leases and tags. A tombstone (a value at the highest version,
 * KeyedValues.tombstone) is kept: it is already an absence, and it must stay one against a write
 * that lands late (an invalidation delivered after it, by a retry or another instance's recovery
 * of what a dead one owed, would otherwise let a late renewal revive an ended session).
 *
 * KEYS: n value keys, then tag keys. ARGV: n, the lease suffix.
 * Deletes the values and their leases, and the tags (whose dependants then read as misses).
 * Reply: the number of keys deleted.
 *
 * @module
 */
export const INVALIDATE = `${STORED_VERSION}
local n, suffix = tonumber(ARGV[1]), ARGV[2]
local deleted = 0
for i = 1, n do
  if storedVersion(KEYS[i]) == 9007199254740991 then
    deleted = deleted + redis.call('DEL', KEYS[i] .. suffix)
  else
    deleted = deleted + redis.call('DEL', KEYS[i], KEYS[i] .. suffix)
  end
end
for i = n + 1, #KEYS do deleted = deleted + redis.call('DEL', KEYS[i]) end
return deleted
`;
