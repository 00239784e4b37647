import calculateSlot from 'cluster-key-slot';
import { Cluster } from 'ioredis';
import { currentTrace, type RequestTrace } from '../trace.js';
import { at } from './at.js';
import type { CircuitBreaker } from './breaker.js';
import type { CacheMetrics } from './metrics.js';
import type { RedisClient } from './redis-client.js';

export type { RedisClient };

/** One value to read, with the tags it depends on. */
export interface LeaseRequest {
  key: string;
  /** Tag keys (same Cluster slot as `key`), in a fixed order: the fill names them again in that order. */
  tags?: readonly string[];
  /** A hash of write-behind changes to read with the value (same slot), see write-behind.ts. */
  pendingKey?: string;
  /** The etag of the copy of the value the reader holds: if it is still the stored one, the reply is `same`. */
  etag?: string;
}

/** A write-behind change not yet in MongoDB: its stream entry id and its encoded change. */
export interface PendingEntry {
  id: string;
  change: Buffer;
}

/** What the store found for one key. */
export type LeaseReply =
  /** The stored value, named by `etag`. */
  (
    | { kind: 'hit'; version: number; etag: string; payload: Buffer }
    /** The stored value is the one whose etag the reader sent (not sent again). */
    | { kind: 'same' }
    | { kind: 'lease' }
    /** Another reader holds the lease; `token` is its lease token. */
    | { kind: 'busy'; token: string }
  ) & {
    /** The key's write-behind changes, when asked for and there are any. */
    pending?: PendingEntry[];
  };

/** A value to store with its version; `ttlMs` 0 stores it without expiry. */
export interface VersionedValue {
  key: string;
  version: number;
  payload: Buffer;
  ttlMs: number;
  /** The tag keys it depends on (fills only): the same, in the same order, as when its lease was taken. */
  tags?: readonly string[];
}

/** Options of {@link getOrLease}. */
export interface GetOrLeaseOptions {
  /** The lease token for every miss of this call. */
  token: string;
  /** How long a lease holds, in milliseconds. */
  leaseTtlMs: number;
  /** On a hit, reset the key's expiry to this (sliding expiration); 0 leaves it. */
  touchTtlMs?: number;
  /** Tag sets live at least this long, in milliseconds (longer than anything they name). */
  tagTtlMs?: number;
  /** The request to count the round trip in (default: the traced request, if any). */
  trace?: RequestTrace;
}

/** Options of {@link RedisStore}. */
export interface RedisStoreOptions {
  client: RedisClient;
  breaker: CircuitBreaker;
  metrics: CacheMetrics;
  /** What the keyspace appends to a key to name its lease, e.g. `:lease`. */
  leaseSuffix: string;
}

// Stored values are `<version>|<stamp>|<etag>|<codec payload>`, so that the scripts can compare
// versions, tag stamps and etags without decoding. A bare `<version>|` is a floor: no value, but
// nothing older may be stored. The stamp is the comma-joined versions of the value's tags as
// they were when its lease was taken (empty without tags). The etag names these exact bytes
// (the filler's lease token, or a refresh's own random token): a reader that holds a decoded
// copy of them sends the etag, and is told "same" instead of being sent the value again.
//
// Tags are version keys, not member sets: a tag key holds a random version; invalidating a tag
// deletes it; a value whose stamp differs from its tags' current versions (or one of whose tags
// is missing) is a miss. So invalidating a tag is O(1) whatever depends on it, nothing grows
// with the number of dependants, and a tag key lost to eviction reads exactly like an
// invalidation: a miss, never a stale value.

// Lua shared by the scripts: the current stamp of `count` tag keys from KEYS[first], or nil
// when one of them is missing.
const STAMP_OF = `
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

// Leases are not sent as KEYS: a value's lease is its key and the lease suffix, in the value's
// slot (its hash tag), so the scripts name it themselves, one key fewer to send and parse per value.
//
// KEYS, per request: the value, its tag keys, then its write-behind hash if any.
// A lease is `<token>|<stamp>`: the reader's token and the tag versions it read under.
// ARGV: lease token, lease TTL (ms), touch TTL (ms; 0 leaves the expiry), tag TTL (ms), lease
//   suffix, then per request: 2 * (number of tags) + (1 when a write-behind hash follows), and
//   the etag of the copy the reader holds ('' for none).
// Reply, per request: the integer 1 (the value is the one whose etag the reader sent: no bytes
//   to allocate for the most common reply of a warm read), the stored value
//   (a hit), 'L' (a lease for this reader) or 'B<holder's token>'; as a table
//   {reply, id, change, id, change, ...} when the hash has entries.
const GET_OR_LEASE = `${STAMP_OF}
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
    -- Changes queued for MongoDB (write-behind), read in the same snapshot as the value.
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

// KEYS, per value: the key, its tag keys. ARGV: lease token (also the stored value's etag),
//   lease suffix, then per value: number of tags, version, TTL (ms), codec payload.
// Reply: per value 1 when stored, 0 when not (the lease is gone, a tag changed since the lease,
//   or a newer version is stored).
const SET_IF_LEASED = `${STAMP_OF}
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
      local stored = tonumber(string.match(redis.call('GETRANGE', key, 0, 20), '^(%d+)|'))
      if not (stored and stored > version) then
        -- ARGV[a + 1], not version: Lua prints large numbers in exponent form.
        redis.call('SET', key, ARGV[a + 1] .. '|' .. stamp .. '|' .. token .. '|' .. payload, 'PX', ttl)
        ok = 1
      end
    end
  end
  out[#out + 1] = ok
  k = k + 1 + ntags
end
return out
`;

// KEYS: the values' keys. ARGV: the etag of the values, the lease suffix, then per value:
//   version, TTL (ms; 0: no expiry), codec payload. Values written through have no tags.
// Reply: per value 1 when stored, 0 when a newer version is stored. Leases taken before this
//   write are voided either way.
const REFRESH = `
local etag, suffix = ARGV[1], ARGV[2]
local out = {}
for i = 1, #KEYS do
  local key = KEYS[i]
  local version, ttl, payload = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1]), ARGV[3 * i + 2]
  redis.call('DEL', key .. suffix)
  local stored = tonumber(string.match(redis.call('GETRANGE', key, 0, 20), '^(%d+)|'))
  out[i] = 0
  if not (stored and stored > version) then
    -- The version as sent: Lua prints large numbers in exponent form.
    local value = ARGV[3 * i] .. '||' .. etag .. '|' .. payload
    if ttl > 0 then redis.call('SET', key, value, 'PX', ttl) else redis.call('SET', key, value) end
    out[i] = 1
  end
end
return out
`;

// KEYS: n value keys, then tag keys. ARGV: n, the lease suffix.
// Deletes the values and their leases, and the tags (whose dependants then read as misses).
// Reply: the number of keys deleted.
const INVALIDATE = `
local n, suffix = tonumber(ARGV[1]), ARGV[2]
local deleted = 0
for i = 1, n do deleted = deleted + redis.call('DEL', KEYS[i], KEYS[i] .. suffix) end
for i = n + 1, #KEYS do deleted = deleted + redis.call('DEL', KEYS[i]) end
return deleted
`;

type Arg = string | Buffer | number;
interface ScriptCommands {
  gfcGetOrLeaseBuffer(numKeys: number, ...args: Arg[]): Promise<(Buffer | number | (Buffer | number)[])[]>;
  gfcSetIfLeased(numKeys: number, ...args: Arg[]): Promise<number[]>;
  gfcRefresh(numKeys: number, ...args: Arg[]): Promise<number[]>;
  gfcInvalidate(numKeys: number, ...args: Arg[]): Promise<number>;
}

const SEPARATOR = 0x7c; // |
const DEFAULT_TAG_TTL_MS = 3_600_000;
const REPLY_LEASE = 0x4c; // L
const REPLY_BUSY = 0x42; // B

/**
 * The cache's only contact with Redis: four Lua scripts, each one round trip for a whole batch
 * (per Cluster slot on a Cluster, sent in parallel). It stores opaque payloads with a version;
 * encoding, TTL choice and the read protocol live in the core. Every call passes the circuit
 * breaker and is timed, and counts as a round trip in the request's trace. Errors propagate:
 * the core decides what a failure means.
 */
export class RedisStore {
  readonly #client: RedisClient & ScriptCommands;
  readonly #breaker: CircuitBreaker;
  readonly #metrics: CacheMetrics;
  readonly #leaseSuffix: string;

  constructor(options: RedisStoreOptions) {
    const { client } = options;
    client.defineCommand('gfcGetOrLease', { lua: GET_OR_LEASE });
    client.defineCommand('gfcSetIfLeased', { lua: SET_IF_LEASED });
    client.defineCommand('gfcRefresh', { lua: REFRESH });
    client.defineCommand('gfcInvalidate', { lua: INVALIDATE });
    this.#client = client as RedisClient & ScriptCommands;
    this.#breaker = options.breaker;
    this.#metrics = options.metrics;
    this.#leaseSuffix = options.leaseSuffix;
  }

  /** The underlying client (for the queue and the session store's own commands). */
  get client(): RedisClient {
    return this.#client;
  }

  /** For each key: its value, or a lease for this reader, or "busy" with the holder's token. */
  async getOrLease(requests: readonly LeaseRequest[], options: GetOrLeaseOptions): Promise<LeaseReply[]> {
    return this.#bySlot(
      requests,
      (r) => r.key,
      'get',
      async (group) => {
        const keys: string[] = [];
        const args: (string | number)[] = [
          options.token,
          options.leaseTtlMs,
          options.touchTtlMs ?? 0,
          options.tagTtlMs ?? DEFAULT_TAG_TTL_MS,
          this.#leaseSuffix,
        ];
        for (const request of group) {
          keys.push(request.key);
          if (request.tags) for (const tag of request.tags) keys.push(tag);
          if (request.pendingKey !== undefined) keys.push(request.pendingKey);
          args.push(2 * (request.tags?.length ?? 0) + (request.pendingKey === undefined ? 0 : 1), request.etag ?? '');
        }
        const replies = await this.#client.gfcGetOrLeaseBuffer(keys.length, ...keys, ...args);
        return replies.map(parseLeaseReply);
      },
      options.trace,
    );
  }

  /** Stores each value if `token` still holds its lease and no newer version is stored; true where stored. */
  async setIfLeased(token: string, values: readonly VersionedValue[], trace?: RequestTrace): Promise<boolean[]> {
    return this.#bySlot(
      values,
      (v) => v.key,
      'fill',
      async (group) => {
        const keys = group.flatMap((v) => [v.key, ...(v.tags ?? [])]);
        const args = group.flatMap((v) => [v.tags?.length ?? 0, checkedVersion(v), v.ttlMs, v.payload]);
        const stored = await this.#client.gfcSetIfLeased(keys.length, ...keys, token, this.#leaseSuffix, ...args);
        return stored.map((n) => n === 1);
      },
      trace,
    );
  }

  /**
   * Stores each value unless a newer version is stored (write-through, refresh), voiding leases;
   * true where stored. `etag` names the stored values (a random token of the caller's).
   */
  async refresh(values: readonly VersionedValue[], etag: string): Promise<boolean[]> {
    return this.#bySlot(
      values,
      (v) => v.key,
      'refresh',
      async (group) => {
        const keys = group.map((v) => v.key);
        const args = group.flatMap((v) => [checkedVersion(v), v.ttlMs, v.payload]);
        const stored = await this.#client.gfcRefresh(keys.length, ...keys, etag, this.#leaseSuffix, ...args);
        return stored.map((n) => n === 1);
      },
    );
  }

  /** Deletes the keys and their leases, and the tags (whatever depends on them then reads as a miss). */
  async invalidate(keys: readonly string[], tags: readonly string[] = []): Promise<void> {
    const items = [...keys.map((key) => ({ key, tag: false })), ...tags.map((key) => ({ key, tag: true }))];
    await this.#bySlot(
      items,
      (i) => i.key,
      'invalidate',
      async (group) => {
        const values = group.filter((i) => !i.tag).map((i) => i.key);
        const tagKeys = group.filter((i) => i.tag).map((i) => i.key);
        await this.#client.gfcInvalidate(values.length + tagKeys.length, ...values, ...tagKeys, values.length, this.#leaseSuffix);
        return group.map(() => undefined);
      },
    );
  }

  /** The write-behind changes in each hash (same order), for reads that do not go through get-or-lease. */
  async pending(keys: readonly string[], trace?: RequestTrace): Promise<PendingEntry[][]> {
    return this.#bySlot(
      keys,
      (key) => key,
      'pending',
      async (group) => {
        const pipeline = this.#client.pipeline();
        for (const key of group) pipeline.hgetallBuffer(key);
        const results = (await pipeline.exec()) ?? [];
        return results.map(([error, value]) => {
          if (error) throw error;
          return Object.entries((value ?? {}) as Record<string, Buffer>).map(([id, change]) => ({ id, change }));
        });
      },
      trace,
    );
  }

  /** A plain value (not versioned: persisted queries and the like), or null. */
  async get(key: string): Promise<Buffer | null> {
    return this.call('kv-get', () => this.#client.getBuffer(key));
  }

  /** Stores a plain value for `ttlMs` milliseconds (0: without expiry). */
  async set(key: string, value: string | Buffer, ttlMs: number): Promise<void> {
    await this.call('kv-set', () => (ttlMs > 0 ? this.#client.set(key, value, 'PX', ttlMs) : this.#client.set(key, value)));
  }

  /** Runs `fn` through the breaker, timed, counted as a round trip of `trace` (default: the traced request, if any). */
  async call<T>(op: string, fn: () => Promise<T>, trace: RequestTrace | undefined = currentTrace()): Promise<T> {
    if (trace) trace.redisRoundTrips += 1;
    const stop = this.#metrics.redisDuration.startTimer({ op });
    try {
      return await this.#breaker.run(fn);
    } finally {
      stop();
    }
  }

  /**
   * Runs `fn` once per Cluster slot (once in all on a standalone Redis), in parallel, and puts
   * the per-item results back in the order of `items`. A reply with one result too few or too
   * many is an error (callers read the results by position), as any other failed call.
   */
  async #bySlot<I, R>(
    items: readonly I[],
    keyOf: (item: I) => string,
    op: string,
    fn: (group: I[]) => Promise<R[]>,
    trace?: RequestTrace,
  ): Promise<R[]> {
    if (items.length === 0) return [];
    if (!(this.#client instanceof Cluster)) return this.call(op, async () => resultsOf(op, items, await fn([...items])), trace);
    const groups = new Map<number, { items: I[]; positions: number[] }>();
    items.forEach((item, position) => {
      const slot = calculateSlot(keyOf(item));
      const group = groups.get(slot) ?? { items: [], positions: [] };
      group.items.push(item);
      group.positions.push(position);
      groups.set(slot, group);
    });
    const out = new Array<R>(items.length);
    await this.call(
      op,
      () =>
        Promise.all(
          [...groups.values()].map(async (group) => {
            const results = resultsOf(op, group.items, await fn(group.items));
            results.forEach((result, i) => {
              out[at(group.positions, i, 'a slot group')] = result;
            });
          }),
        ),
      trace,
    );
    return out;
  }
}

/** `results`, checked to hold one per item of a call. */
function resultsOf<I, R>(op: string, items: readonly I[], results: R[]): R[] {
  if (results.length !== items.length) throw new Error(`Redis answered ${op} with ${results.length} results for ${items.length} items`);
  return results;
}

function checkedVersion(value: VersionedValue): number {
  if (!Number.isSafeInteger(value.version) || value.version < 0) {
    throw new TypeError(`cache value version must be a non-negative safe integer, got ${String(value.version)} for ${value.key}`);
  }
  return value.version;
}

/**
 * The codec payload of a stored value (`<version>|<stamp>|<etag>|<payload>`), or null for a
 * floor or anything else that is not a value.
 */
export function payloadOf(stored: Buffer): Buffer | null {
  const third = separatorAfter(stored, 3);
  return third < 0 ? null : stored.subarray(third + 1);
}

/** The position of the `n`th separator of `stored`, or -1. */
function separatorAfter(stored: Buffer, n: number): number {
  let position = -1;
  for (let i = 0; i < n; i += 1) {
    position = stored.indexOf(SEPARATOR, position + 1);
    if (position < 0) return -1;
  }
  return position;
}

/** The version of a stored value or floor, or null when `stored` is neither. */
export function versionOf(stored: Buffer): number | null {
  const first = stored.indexOf(SEPARATOR);
  const version = first > 0 ? Number(stored.subarray(0, first).toString()) : NaN;
  return Number.isSafeInteger(version) ? version : null;
}

const SAME: LeaseReply = Object.freeze({ kind: 'same' });

function parseLeaseReply(raw: Buffer | number | (Buffer | number)[]): LeaseReply {
  if (!Array.isArray(raw)) return parseValueReply(raw);
  // {reply, id, change, id, change, ...}: the script always sends the reply first, then pairs.
  const reply = at(raw, 0, 'a get-or-lease reply with changes');
  const pending: PendingEntry[] = [];
  for (let i = 1; i + 1 < raw.length; i += 2) {
    const change = at(raw, i + 1, 'the changes of a get-or-lease reply');
    pending.push({
      id: String(at(raw, i, 'the changes of a get-or-lease reply')),
      change: Buffer.isBuffer(change) ? change : Buffer.from(String(change)),
    });
  }
  return { ...parseValueReply(reply), pending };
}

function parseValueReply(reply: Buffer | number): LeaseReply {
  if (typeof reply === 'number') {
    if (reply === 1) return SAME;
    throw new TypeError(`get-or-lease replied with the number ${reply}`);
  }
  const first = reply[0];
  if (first === REPLY_LEASE) return { kind: 'lease' };
  if (first === REPLY_BUSY) {
    // The holder's lease is `<token>|<stamp>`.
    const end = reply.indexOf(SEPARATOR);
    return { kind: 'busy', token: reply.subarray(1, end < 0 ? reply.length : end).toString() };
  }
  const first_ = reply.indexOf(SEPARATOR);
  const second = first_ < 0 ? -1 : reply.indexOf(SEPARATOR, first_ + 1);
  const third = second < 0 ? -1 : reply.indexOf(SEPARATOR, second + 1);
  if (third < 0) throw new TypeError('get-or-lease replied with a value that is not `<version>|<stamp>|<etag>|<payload>`');
  return {
    kind: 'hit',
    version: Number(reply.toString('latin1', 0, first_)),
    etag: reply.toString('latin1', second + 1, third),
    payload: reply.subarray(third + 1),
  };
}
