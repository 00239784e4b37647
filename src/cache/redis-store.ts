import calculateSlot from 'cluster-key-slot';
import { Cluster } from 'ioredis';
import { currentTrace } from '../trace.js';
import type { CircuitBreaker } from './breaker.js';
import type { CacheMetrics } from './metrics.js';
import type { RedisClient } from './redis-client.js';

export type { RedisClient };

/** One value to read, with the tag sets that should name it if this reader takes its lease. */
export interface LeaseRequest {
  key: string;
  /** Tag set keys (same Cluster slot as `key`). */
  tags?: readonly string[];
  /** A hash of write-behind changes to read with the value (same slot), see write-behind.ts. */
  pendingKey?: string;
}

/** A write-behind change not yet in MongoDB: its stream entry id and its encoded change. */
export interface PendingEntry {
  id: string;
  change: Buffer;
}

/** What the store found for one key. */
export type LeaseReply = (
  | { kind: 'hit'; version: number; payload: Buffer }
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
}

/** Options of {@link RedisStore}. */
export interface RedisStoreOptions {
  client: RedisClient;
  breaker: CircuitBreaker;
  metrics: CacheMetrics;
  /** What the keyspace appends to a key to name its lease, e.g. `:lease`. */
  leaseSuffix: string;
}

// Values are stored as `<version>|<codec payload>`, so that the scripts can compare versions
// without decoding (a bare `<version>|` is a floor: no value, but nothing older may be stored);
// replies to get-or-lease start with a digit (a hit), `L` or `B`.
const GET_OR_LEASE = `
local token, leaseTtl, touchTtl, tagTtl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {}
local k = 1
for i = 5, #ARGV do
  -- 2 * (number of tag sets) + 1 when the key has a write-behind hash after its tag sets.
  local n = tonumber(ARGV[i])
  local key, lease, ntags, withPending = KEYS[k], KEYS[k + 1], math.floor(n / 2), n % 2 == 1
  local reply
  local value = redis.call('GET', key)
  -- "<version>|" alone is a version floor left by a write-behind flush: a miss, whose fill or
  -- refresh must not be older than that version.
  if value and string.match(value, '^%d+|$') then value = nil end
  if value then
    if touchTtl > 0 then redis.call('PEXPIRE', key, touchTtl) end
    reply = value
  elseif redis.call('SET', lease, token, 'NX', 'PX', leaseTtl) then
    -- Tags are recorded with the lease, not the fill: an invalidation by tag that runs while
    -- this reader computes finds the key, deletes the lease, and so voids the fill.
    for t = 1, ntags do
      local tag = KEYS[k + 1 + t]
      redis.call('SADD', tag, key)
      if redis.call('PTTL', tag) < tagTtl then redis.call('PEXPIRE', tag, tagTtl) end
    end
    reply = 'L'
  else
    reply = 'B' .. (redis.call('GET', lease) or '')
  end
  if withPending then
    -- Changes queued for MongoDB (write-behind), read in the same snapshot as the value.
    local pending = redis.call('HGETALL', KEYS[k + 2 + ntags])
    if #pending > 0 then
      local entry = { reply }
      for j = 1, #pending do entry[#entry + 1] = pending[j] end
      reply = entry
    end
  end
  out[#out + 1] = reply
  k = k + 2 + ntags + (withPending and 1 or 0)
end
return out
`;

const SET_IF_LEASED = `
local token = ARGV[1]
local out = {}
for i = 1, #KEYS / 2 do
  local key, lease = KEYS[2 * i - 1], KEYS[2 * i]
  local value, version, ttl = ARGV[3 * i - 1], tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])
  out[i] = 0
  if redis.call('GET', lease) == token then
    redis.call('DEL', lease)
    local stored = tonumber(string.match(redis.call('GETRANGE', key, 0, 20), '^(%d+)|'))
    if not (stored and stored > version) then
      redis.call('SET', key, value, 'PX', ttl)
      out[i] = 1
    end
  end
end
return out
`;

const REFRESH = `
local out = {}
for i = 1, #KEYS / 2 do
  local key, lease = KEYS[2 * i - 1], KEYS[2 * i]
  local value, version, ttl = ARGV[3 * i - 2], tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i])
  -- Readers that leased before this write must not fill what they read.
  redis.call('DEL', lease)
  local stored = tonumber(string.match(redis.call('GETRANGE', key, 0, 20), '^(%d+)|'))
  out[i] = 0
  if not (stored and stored > version) then
    if ttl > 0 then redis.call('SET', key, value, 'PX', ttl) else redis.call('SET', key, value) end
    out[i] = 1
  end
end
return out
`;

const INVALIDATE = `
local n, suffix = tonumber(ARGV[1]), ARGV[2]
local deleted = 0
for i = 1, n do deleted = deleted + redis.call('DEL', KEYS[i], KEYS[i] .. suffix) end
for i = n + 1, #KEYS do
  for _, member in ipairs(redis.call('SMEMBERS', KEYS[i])) do
    deleted = deleted + redis.call('DEL', member, member .. suffix)
  end
  redis.call('DEL', KEYS[i])
end
return deleted
`;

type Arg = string | Buffer | number;
interface ScriptCommands {
  gfcGetOrLeaseBuffer(numKeys: number, ...args: Arg[]): Promise<(Buffer | Buffer[])[]>;
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
        const counts: number[] = [];
        for (const request of group) {
          keys.push(request.key, request.key + this.#leaseSuffix, ...(request.tags ?? []));
          if (request.pendingKey !== undefined) keys.push(request.pendingKey);
          counts.push(2 * (request.tags?.length ?? 0) + (request.pendingKey === undefined ? 0 : 1));
        }
        const args = [options.token, options.leaseTtlMs, options.touchTtlMs ?? 0, options.tagTtlMs ?? DEFAULT_TAG_TTL_MS, ...counts];
        const replies = await this.#client.gfcGetOrLeaseBuffer(keys.length, ...keys, ...args);
        return replies.map(parseLeaseReply);
      },
    );
  }

  /** Stores each value if `token` still holds its lease and no newer version is stored; true where stored. */
  async setIfLeased(token: string, values: readonly VersionedValue[]): Promise<boolean[]> {
    return this.#bySlot(
      values,
      (v) => v.key,
      'fill',
      async (group) => {
        const keys = group.flatMap((v) => [v.key, v.key + this.#leaseSuffix]);
        const args = group.flatMap((v) => [withVersion(v), v.version, v.ttlMs]);
        const stored = await this.#client.gfcSetIfLeased(keys.length, ...keys, token, ...args);
        return stored.map((n) => n === 1);
      },
    );
  }

  /** Stores each value unless a newer version is stored (write-through, refresh), voiding leases; true where stored. */
  async refresh(values: readonly VersionedValue[]): Promise<boolean[]> {
    return this.#bySlot(
      values,
      (v) => v.key,
      'refresh',
      async (group) => {
        const keys = group.flatMap((v) => [v.key, v.key + this.#leaseSuffix]);
        const args = group.flatMap((v) => [withVersion(v), v.version, v.ttlMs]);
        const stored = await this.#client.gfcRefresh(keys.length, ...keys, ...args);
        return stored.map((n) => n === 1);
      },
    );
  }

  /** Deletes the keys, their leases, every key named by the tag sets (and theirs), and the tag sets. */
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
  async pending(keys: readonly string[]): Promise<PendingEntry[][]> {
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

  /** Runs `fn` through the breaker, timed, counted as a round trip of the current request. */
  async call<T>(op: string, fn: () => Promise<T>): Promise<T> {
    const trace = currentTrace();
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
   * the per-item results back in the order of `items`.
   */
  async #bySlot<I, R>(items: readonly I[], keyOf: (item: I) => string, op: string, fn: (group: I[]) => Promise<R[]>): Promise<R[]> {
    if (items.length === 0) return [];
    if (!(this.#client instanceof Cluster)) return this.call(op, () => fn([...items]));
    const groups = new Map<number, { items: I[]; positions: number[] }>();
    items.forEach((item, position) => {
      const slot = calculateSlot(keyOf(item));
      const group = groups.get(slot) ?? { items: [], positions: [] };
      group.items.push(item);
      group.positions.push(position);
      groups.set(slot, group);
    });
    const out = new Array<R>(items.length);
    await this.call(op, () =>
      Promise.all(
        [...groups.values()].map(async (group) => {
          const results = await fn(group.items);
          results.forEach((result, i) => {
            out[group.positions[i] ?? 0] = result;
          });
        }),
      ),
    );
    return out;
  }
}

function withVersion(value: VersionedValue): Buffer {
  if (!Number.isSafeInteger(value.version) || value.version < 0) {
    throw new TypeError(`cache value version must be a non-negative safe integer, got ${String(value.version)} for ${value.key}`);
  }
  return Buffer.concat([Buffer.from(`${value.version}|`), value.payload]);
}

function parseLeaseReply(raw: Buffer | Buffer[]): LeaseReply {
  if (!Array.isArray(raw)) return parseValueReply(raw);
  const [reply = Buffer.alloc(0), ...fields] = raw;
  const pending: PendingEntry[] = [];
  for (let i = 0; i + 1 < fields.length; i += 2)
    pending.push({ id: (fields[i] ?? '').toString(), change: fields[i + 1] ?? Buffer.alloc(0) });
  return { ...parseValueReply(reply), pending };
}

function parseValueReply(reply: Buffer): LeaseReply {
  const first = reply[0];
  if (first === REPLY_LEASE) return { kind: 'lease' };
  if (first === REPLY_BUSY) return { kind: 'busy', token: reply.subarray(1).toString() };
  const separator = reply.indexOf(SEPARATOR);
  return { kind: 'hit', version: Number(reply.subarray(0, separator).toString()), payload: reply.subarray(separator + 1) };
}
