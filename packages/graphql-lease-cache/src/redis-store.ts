import calculateSlot from 'cluster-key-slot';
import { Cluster } from 'ioredis';
import type { CacheTrace } from './trace.js';
import { at } from './at.js';
import { parseLeaseReply } from './lease-reply.js';
import type { CircuitBreaker } from './breaker.js';
import type { CacheEvents } from './events.js';
import type { GetOrLeaseOptions, LeaseReply, LeaseRequest, LeaseStore, PendingEntry, VersionedValue } from './lease-store.js';
import type { RedisClient } from './redis-client.js';
import type { ReplicaAcks, ReplicaAckError } from './replica-acks.js';
import { GET_OR_LEASE } from './scripts/get-or-lease.js';
import { INVALIDATE } from './scripts/invalidate.js';
import { REFRESH } from './scripts/refresh.js';
import { SET_IF_LEASED } from './scripts/set-if-leased.js';

export type { RedisClient };

export type { GetOrLeaseOptions, LeaseReply, LeaseRequest, LeaseStore, PendingEntry, StaleValue, VersionedValue } from './lease-store.js';

/** Options of {@link RedisStore}. */
export interface RedisStoreOptions {
  client: RedisClient;
  breaker: CircuitBreaker;
  /** Where each round trip is reported, timed (events.ts). */
  events: CacheEvents;
  /** What the keyspace appends to a key to name its lease, e.g. `:lease`. */
  leaseSuffix: string;
  /** Replicas that must acknowledge each invalidation and refresh (replica-acks.ts); default none. */
  acks?: ReplicaAcks;
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

// The scripts, one module each with its KEYS, ARGV and reply: ./scripts/.

type Arg = string | Buffer | number;
interface ScriptCommands {
  glcGetOrLeaseBuffer(numKeys: number, ...args: Arg[]): Promise<(Buffer | number | (Buffer | number)[])[]>;
  glcSetIfLeased(numKeys: number, ...args: Arg[]): Promise<number[]>;
  glcRefresh(numKeys: number, ...args: Arg[]): Promise<number[]>;
  glcInvalidate(numKeys: number, ...args: Arg[]): Promise<number>;
}

const SEPARATOR = 0x7c; // |
const DEFAULT_TAG_TTL_MS = 3_600_000;

/**
 * The cache's only contact with Redis: four Lua scripts, each one round trip for a whole batch
 * (per Cluster slot on a Cluster, sent in parallel). It stores opaque payloads with a version;
 * encoding, TTL choice and the read protocol live in the core. Every call passes the circuit
 * breaker and is reported, timed, as a round trip of the request it was made for. Errors propagate:
 * the core decides what a failure means.
 */
export class RedisStore implements LeaseStore {
  readonly #client: RedisClient & ScriptCommands;
  readonly #breaker: CircuitBreaker;
  readonly #events: CacheEvents;
  readonly #leaseSuffix: string;
  readonly #acks: ReplicaAcks | undefined;

  constructor(options: RedisStoreOptions) {
    const { client } = options;
    client.defineCommand('glcGetOrLease', { lua: GET_OR_LEASE });
    client.defineCommand('glcSetIfLeased', { lua: SET_IF_LEASED });
    client.defineCommand('glcRefresh', { lua: REFRESH });
    client.defineCommand('glcInvalidate', { lua: INVALIDATE });
    this.#client = client as RedisClient & ScriptCommands;
    this.#breaker = options.breaker;
    this.#events = options.events;
    this.#leaseSuffix = options.leaseSuffix;
    this.#acks = options.acks;
  }

  /** The underlying client (for the write-behind queue's own commands). */
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
          args.push(
            2 * (request.tags?.length ?? 0) + (request.pendingKey === undefined ? 0 : 1),
            request.etag ?? '',
            request.graceMs ?? 0,
            request.refreshWindowMs ?? 0,
          );
        }
        const replies = await this.#client.glcGetOrLeaseBuffer(keys.length, ...keys, ...args);
        return replies.map(parseLeaseReply);
      },
      options.trace,
    );
  }

  /** Stores each value if `token` still holds its lease and no newer version is stored; true where stored. */
  async setIfLeased(token: string, values: readonly VersionedValue[], trace?: CacheTrace): Promise<boolean[]> {
    return this.#bySlot(
      values,
      (v) => v.key,
      'fill',
      async (group) => {
        const keys = group.flatMap((v) => [v.key, ...(v.tags ?? [])]);
        const args = group.flatMap((v) => [v.tags?.length ?? 0, checkedVersion(v), v.ttlMs, v.payload]);
        const stored = await this.#client.glcSetIfLeased(keys.length, ...keys, token, this.#leaseSuffix, ...args);
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
    const shortfalls: ReplicaAckError[] = [];
    const stored = await this.#bySlot(
      values,
      (v) => v.key,
      'refresh',
      async (group) => {
        const keys = group.map((v) => v.key);
        const args = [etag, this.#leaseSuffix, ...group.flatMap((v) => [checkedVersion(v), v.ttlMs, v.payload])];
        const replies = await this.#written(keys, REFRESH, [...keys, ...args], shortfalls, (c) =>
          c.glcRefresh(keys.length, ...keys, ...args),
        );
        return (replies as number[]).map((n) => n === 1);
      },
    );
    throwShort(shortfalls);
    return stored;
  }

  /**
   * Deletes the keys and their leases, and the tags (whatever depends on them then reads as a
   * miss). With replica acknowledgement, rejects with a ReplicaAckError when a replica did not
   * acknowledge in time (Redis has run it; the caller must treat it as not delivered).
   */
  async invalidate(keys: readonly string[], tags: readonly string[] = []): Promise<void> {
    const items = [...keys.map((key) => ({ key, tag: false })), ...tags.map((key) => ({ key, tag: true }))];
    const shortfalls: ReplicaAckError[] = [];
    await this.#bySlot(
      items,
      (i) => i.key,
      'invalidate',
      async (group) => {
        const values = group.filter((i) => !i.tag).map((i) => i.key);
        const all = [...values, ...group.filter((i) => i.tag).map((i) => i.key)];
        await this.#written(all, INVALIDATE, [...all, values.length, this.#leaseSuffix], shortfalls, (c) =>
          c.glcInvalidate(all.length, ...all, values.length, this.#leaseSuffix),
        );
        return group.map(() => undefined);
      },
    );
    throwShort(shortfalls);
  }

  /**
   * Runs the write script `lua` on the slot of `keys` (one slot; `keysAndArgs` its keys, then its
   * arguments): through the defined command `direct`, or with replica acknowledgement (WAIT
   * after it), a shortfall added to `shortfalls`.
   */
  async #written(
    keys: readonly string[],
    lua: string,
    keysAndArgs: readonly Arg[],
    shortfalls: ReplicaAckError[],
    direct: (client: ScriptCommands) => Promise<unknown>,
  ): Promise<unknown> {
    const acks = this.#acks;
    const first = keys[0];
    if (!acks || acks.replicas === 0 || first === undefined) return direct(this.#client);
    const { reply, short } = await acks.write(first, lua, keys.length, keysAndArgs);
    if (short) shortfalls.push(short);
    return reply;
  }

  /** The replica acknowledgement of this store's writes, if any (the response store waits with it too). */
  get acks(): ReplicaAcks | undefined {
    return this.#acks;
  }

  /** The write-behind changes in each hash (same order), for reads that do not go through get-or-lease. */
  async pending(keys: readonly string[], trace?: CacheTrace): Promise<PendingEntry[][]> {
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

  /** The stored bytes of each key (same order; null where none), read without a lease or a fill: for audits, not for serving. */
  async peek(keys: readonly string[]): Promise<(Buffer | null)[]> {
    return this.#bySlot(
      keys,
      (key) => key,
      'peek',
      async (group) => {
        const pipeline = this.#client.pipeline();
        for (const key of group) pipeline.getBuffer(key);
        const results = (await pipeline.exec()) ?? [];
        return results.map(([error, value]) => {
          if (error) throw error;
          return (value as Buffer | null) ?? null;
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

  /** The publisher this store reports to (the queue and the worker report through it too). */
  get events(): CacheEvents {
    return this.#events;
  }

  /** Runs `fn` through the breaker and reports it, timed, as a round trip made for `trace`. */
  async call<T>(op: string, fn: () => Promise<T>, trace?: CacheTrace): Promise<T> {
    const events = this.#events;
    if (!events.timingStore) return this.#breaker.run(fn);
    const started = performance.now();
    let ok = false;
    try {
      const result = await this.#breaker.run(fn);
      ok = true;
      return result;
    } finally {
      events.store(op, performance.now() - started, ok, trace);
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
    trace?: CacheTrace,
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

/** Throws the first shortfall of a write's replica acknowledgements, if any. */
function throwShort(shortfalls: readonly ReplicaAckError[]): void {
  const [first] = shortfalls;
  if (first) throw first;
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
