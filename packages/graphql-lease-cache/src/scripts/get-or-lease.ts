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
 *   suffix, then per request: 2 * (number of tags) + (1 when a write-behind hash follows), the
 *   etag of the copy the reader holds ('' for none), the grace (ms; 0 for none) and the
 *   early-refresh window (ms; 0 for none).
 * Grace: values are stored for their TTL plus the grace, so a value's logical life is its PTTL
 *   less the grace (a value without expiry never ends). A value past it is a miss, whose reply
 *   also carries it (`stale`) when its stamp still matches its tags: the reader may serve it if
 *   the source cannot answer. A floor, or a value of a tag invalidated since, is never carried.
 * Early refresh: a live value that is not a cached absence, with less than the window left of its
 *   logical life and no live lease, is leased to this reader (stamp taken as for a miss), and
 *   the reply says so: the reader serves it and reloads it in the background.
 * Reply, per request: the integer 1 (the value is the one whose etag the reader sent: no bytes
 *   to allocate for the most common reply of a warm read), the stored value
 *   (a hit), 'R' followed by the stored value or by nothing (a hit or a "same" whose lease this
 *   reader took for an early refresh), 'L' (a lease for this reader) or 'B<holder's token>'; a
 *   lease or busy reply is followed by a newline and the expired value when one is carried; as
 *   a table {reply, id, change, id, change, ...} when the hash has entries.
 *
 * @module
 */
export const GET_OR_LEASE = `${STAMP_OF}
local token, leaseTtl, touchTtl, tagTtl, suffix = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
-- The live lease of \`lease\` (its holder, \`<token>|<stamp>\`), or nil: a lease taken before one of
-- the tags changed is void (its fill will be refused), and the next reader takes it over rather
-- than wait for, or join, a load that may predate the write.
local function holderOf(lease, first, ntags)
  local holder = redis.call('GET', lease)
  if holder then
    local sep = string.find(holder, '|', 1, true)
    if not sep or stampOf(first, ntags) ~= string.sub(holder, sep + 1) then holder = nil end
  end
  return holder
end
-- Leases \`lease\` to this reader under the tags' current versions. The stamp is taken with the
-- lease, not at the fill: a tag invalidated while this reader computes changes the tag's
-- version, and the fill (which compares) is refused.
local function takeLease(lease, first, ntags)
  local parts = {}
  for t = 1, ntags do
    local tag = KEYS[first + t - 1]
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
end
local out = {}
local k = 1
for i = 6, #ARGV, 4 do
  local n, known, grace, window = tonumber(ARGV[i]), ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local key, ntags, withPending = KEYS[k], math.floor(n / 2), n % 2 == 1
  local lease = key .. suffix
  local reply, value, stale, early
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
  if (reply or value) and (grace > 0 or window > 0) then
    local life = redis.call('PTTL', key)
    if life >= 0 then
      life = life - grace
      if life <= 0 then
        -- Past its logical life, in its grace: a miss that carries the value.
        stale = value or redis.call('GET', key)
        reply, value = nil, nil
      elseif life < window and not string.find(value or redis.call('GET', key), '^%d+|[^|]*|[^|]*|%-$') then
        -- (A cached absence, whose payload is the codec's '-', keeps its short TTL: no early refresh.)
        early = true
      end
    end
  end
  if reply or value then
    if touchTtl > 0 then redis.call('PEXPIRE', key, touchTtl + grace) end
    reply = reply or value
    if early and not holderOf(lease, k + 1, ntags) then
      takeLease(lease, k + 1, ntags)
      reply = 'R' .. (value or '')
    end
  else
    local holder = holderOf(lease, k + 1, ntags)
    if holder then
      reply = 'B' .. holder
    else
      takeLease(lease, k + 1, ntags)
      reply = 'L'
    end
    if stale then reply = reply .. '\\n' .. stale end
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
