import { STORED_VERSION } from '../../scripts/lib.js';

/**
 * SETTLE: acknowledges what a batch of the worker applied or dead-lettered, per entity, and
 * leaves each cached document no older than the database's.
 *
 * KEYS[1] the stream; KEYS[2] the dead-letter stream; then per entity, in pairs: its cached key
 * and its write-behind hash.
 * ARGV[1] the consumer group; ARGV[2] the lease suffix (a key's lease is `<key><suffix>`);
 * ARGV[3] the floor's TTL in ms; then per entity: n, reason ('' once applied; else why it is
 * dead-lettered), type, id, floor version (0: none; else the version the database has had since the
 * write), then its n stream entry ids.
 * Reply: the number of entries acknowledged.
 *
 * A dead-lettered entry is copied to the dead-letter stream with its change and reason. Every
 * entry leaves the hash and the stream. The entity's lease is dropped (fills in flight are void);
 * a cached document older than the floor is replaced by the floor (`<version>|`, read as a miss),
 * so that a write-through of an older version, still on its way, cannot be stored after this.
 *
 * @module
 */
export const SETTLE = `${STORED_VERSION}
local group, suffix, floorTtl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local a, settled = 4, 0
for e = 3, #KEYS, 2 do
  local key, pending = KEYS[e], KEYS[e + 1]
  local n, reason, type, id, floor = tonumber(ARGV[a]), ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], tonumber(ARGV[a + 4])
  for j = a + 5, a + 4 + n do
    local entry = ARGV[j]
    if reason ~= '' then
      local change = redis.call('HGET', pending, entry) or ''
      redis.call('XADD', KEYS[2], '*', 'entry', entry, 't', type, 'i', id, 'c', change, 'error', reason)
    end
    redis.call('HDEL', pending, entry)
    settled = settled + redis.call('XACK', KEYS[1], group, entry)
    redis.call('XDEL', KEYS[1], entry)
  end
  redis.call('DEL', key .. suffix)
  if floor > 0 then
    -- A value (or floor) of this version or newer was loaded after the write: it stays.
    local stored = storedVersion(key)
    if not (stored and stored >= floor) then
      redis.call('SET', key, floor .. '|', 'PX', floorTtl)
    elseif redis.call('PTTL', key) == -1 then
      -- Kept (loaded after the write), but persisted by an enqueue: its expiry comes back.
      redis.call('PEXPIRE', key, floorTtl)
    end
  else
    redis.call('DEL', key)
  end
  a = a + 5 + n
end
return settled
`;
