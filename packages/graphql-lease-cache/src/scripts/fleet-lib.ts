// Lua shared by the fleet scripts (../fleet/). The fleet's hash holds `inc` (its incarnation:
// random, replaced if the hash is ever lost), `last` (the id of the newest invalidation in the
// log) and one field per member, `m:<member>` = `<lease expiry, ms of Redis time>|<acked id>|<l1>`:
// until when the member may serve without asking, the newest invalidation it has applied, and
// whether it keeps an L1 (1) or not (0). Ids are stream ids, `<ms>-<seq>`.

/**
 * `nowMs()`: Redis's clock in milliseconds; `idAfter(a, b)`: true when stream id `a` is after `b`;
 * `idMs(id)`: the milliseconds part of an id; `member(value)`: expiry, acked id and l1 flag of a
 * member field's value.
 */
export const FLEET_LIB = `
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function idParts(id)
  local dash = string.find(id, '-', 1, true)
  return tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1))
end
local function idAfter(a, b)
  local am, as = idParts(a)
  local bm, bs = idParts(b)
  return am > bm or (am == bm and as > bs)
end
local function idMs(id)
  local ms = idParts(id)
  return ms
end
local function member(value)
  local first = string.find(value, '|', 1, true)
  local second = string.find(value, '|', first + 1, true)
  return tonumber(string.sub(value, 1, first - 1)), string.sub(value, first + 1, second - 1), string.sub(value, second + 1)
end
`;
