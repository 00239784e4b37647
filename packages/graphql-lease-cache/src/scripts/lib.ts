// Lua shared by the scripts, written once and prepended to those that use it. Each function's
// comment says what it reads; none of them writes anything but `setUnlessNewer`.
//
// Stored values are `<version>|<stamp>|<etag>|<codec payload>` (see ../redis-store.ts); a bare
// `<version>|` is a floor.

/** `stampOf(first, count)`: the current stamp of `count` tag keys from KEYS[first], or nil when one of them is missing. */
export const STAMP_OF = `
local function stampOf(first, count)
  if count == 0 then return '' end
  local parts = {}
  for t = 0, count - 1 do
    local v = redis.call('GET', KEYS[first + t])
    if not v then return nil end
    parts[#parts + 1] = v
  end
  return table.concat(parts, ',')
end
`;

/** `storedVersion(key)`: the version of the value (or floor) stored at `key`, or nil; reads its head only. */
export const STORED_VERSION = `
local function storedVersion(key)
  return tonumber(string.match(redis.call('GETRANGE', key, 0, 20), '^(%d+)|'))
end
`;

/**
 * `setUnlessNewer(key, version, value, ttl)`: stores `value` at `key` for `ttl` ms (0: no expiry)
 * unless a newer version is stored there; true when stored. Needs {@link STORED_VERSION}.
 */
export const SET_UNLESS_NEWER = `${STORED_VERSION}
local function setUnlessNewer(key, version, value, ttl)
  local stored = storedVersion(key)
  if stored and stored > version then return false end
  if ttl > 0 then redis.call('SET', key, value, 'PX', ttl) else redis.call('SET', key, value) end
  return true
end
`;

/**
 * `fresh(shard, born, list)`: true when none of the dependency buckets in `list` (comma-separated
 * fields of the response shard's hash) has an epoch after `born`, the clock a response or a
 * computation began at (see ../response-store.ts). Reads the buckets 500 at a time.
 */
export const FRESH = `
local function fresh(shard, born, list)
  if list == '' then return true end
  local fields = {}
  local function check()
    local epochs = redis.call('HMGET', shard, unpack(fields))
    for i = 1, #epochs do
      if epochs[i] and tonumber(epochs[i]) > born then return false end
    end
    fields = {}
    return true
  end
  for field in string.gmatch(list, '[^,]+') do
    fields[#fields + 1] = field
    if #fields == 500 and not check() then return false end
  end
  if #fields > 0 then return check() end
  return true
end
`;
