import { STAMP_OF } from './lib.js';

/**
 * GET_OR_LEASE: reads a batch of values, and leases each miss to this reader (the read path of the lease protocol).
 *
 * Leases are not sent as KEYS: a value's lease is its key and the lease suffix, in the value's
 * slot (its hash tag), so the scripts name it themselves, one key fewer to send and parse per value.
 *
 * KEYS, per request: the value, its tag keys, then its write-behind hash if any.
 * A lease is `<token>|<stamp>`: the reader's token and the tag versions it read under.
 * ARGV: lease token, lease TTL (ms), touch TTL (ms; 0 leaves the expiry), tag TTL (ms), lease
 *   suffix, then per request: 2 * (number of tags) + (1 when a write-behind hash follows), and
 *   the etag of the copy the reader holds ('' for none).
 * Reply, per request: the integer 1 (the value is the one whose etag the reader sent: no bytes
 *   to allocate for the most common reply of a warm read), the stored value
 *   (a hit), 'L' (a lease for this reader) or 'B<holder's token>'; as a table
 *   {reply, id, change, id, change, ...} when the hash has entries.
 *
 * @module
 */
export const GET_OR_LEASE = `${STAMP_OF}
local token, leaseTtl, touchTtl, tagTtl, suffix = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local out = {}
local k = 1
for i = 6, #ARGV, 2 do
  local n, known = tonumber(ARGV[i]), ARGV[i + 1]
  local key, ntags, withPending = KEYS[k], math.floor(n / 2), n % 2 == 1
  local lease = key .. suffix
  local reply, value
  if known ~= '' then
    -- The reader holds a copy: read the head only (a longer head, of many tags, falls back to
    -- GET below), and send the value only if it changed. Plain finds: a pattern costs more.
    local head = redis.call('GETRANGE', key, 0, 127)
    local a = string.find(head, '|', 1, true)
    local b = a and string.find(head, '|', a + 1, true)
    local c = b and string.find(head, '|', b + 1, true)
    if c and string.sub(head, b + 1, c - 1) == known and stampOf(k + 1, ntags) == string.sub(head, a + 1, b - 1) then
      reply = 1
    else
      value = redis.call('GET', key)
    end
  else
    value = redis.call('GET', key)
  end
  if value then
    -- A floor ("<version>|"), or a value computed before one of its tags was invalidated
    -- (or evicted): a miss.
    local stamp = string.match(value, '^%d+|([^|]*)|')
    if not stamp or stampOf(k + 1, ntags) ~= stamp then value = nil end
  end
  if reply or value then
    if touchTtl > 0 then redis.call('PEXPIRE', key, touchTtl) end
    reply = reply or value
  else
    -- A lease taken before one of the tags changed is void (its fill will be refused): the
    -- next reader takes it over rather than wait for, or join, a load that may predate the write.
    local holder = redis.call('GET', lease)
    if holder then
      local sep = string.find(holder, '|', 1, true)
      if not sep or stampOf(k + 1, ntags) ~= string.sub(holder, sep + 1) then holder = nil end
    end
    if holder then
      reply = 'B' .. holder
    else
      -- The stamp is taken with the lease, not at the fill: a tag invalidated while this reader
      -- computes changes the tag's version, and the fill (which compares) is refused.
      local parts = {}
      for t = 1, ntags do
        local tag = KEYS[k + t]
        local v = redis.call('GET', tag)
        if not v then
          v = token .. '.' .. t
          redis.call('SET', tag, v, 'PX', tagTtl)
        elseif redis.call('PTTL', tag) < tagTtl / 2 then
          redis.call('PEXPIRE', tag, tagTtl)
        end
        parts[t] = v
      end
      redis.call('SET', lease, token .. '|' .. table.concat(parts, ','), 'PX', leaseTtl)
      reply = 'L'
    end
  end
  if withPending then
    -- Changes queued for the database (write-behind), read in the same snapshot as the value.
    local pending = redis.call('HGETALL', KEYS[k + 1 + ntags])
    if #pending > 0 then
      local entry = { reply }
      for j = 1, #pending do entry[#entry + 1] = pending[j] end
      reply = entry
    end
  end
  out[#out + 1] = reply
  k = k + 1 + ntags + (withPending and 1 or 0)
end
return out
`;
