import { randomBytes } from 'node:crypto';
import type { CacheTrace } from './trace.js';
import type { Keyspace } from './keys.js';
import type { L1Cache } from './l1-cache.js';
import type { RedisStore } from './redis-store.js';
import type { ReplicaAckError } from './replica-acks.js';
import { RESPONSE_INVALIDATE } from './scripts/response-invalidate.js';
import { RESPONSE_LOOKUP } from './scripts/response-lookup.js';
import { RESPONSE_STORE } from './scripts/response-store.js';

// Whole responses that are never stale, on one Redis or a Cluster.
//
// A response depends on what its computation read: entity keys, field keys, tags (its
// "dependencies", plain strings). It lives in one of N shards, a Redis hash tag of its own
// (`{resp:<shard>}`), beside the shard's hash: an incarnation (random, replaced if the hash is
// ever lost), a clock, and for each of B dependency buckets the clock value of its last
// invalidation (its "epoch"). Everything a script below touches is in one slot.
//
//   lookup    one call: the response if stored and no bucket it depends on has an epoch after
//             the clock it was computed at (else it is deleted); on a miss, the shard's
//             incarnation and clock, the ticket of the computation that follows.
//   store     stores the response with the ticket's clock and its dependencies' buckets, only if
//             the incarnation is the ticket's and no such bucket has an epoch after its clock.
//   invalidate (after the cache core has invalidated the dependencies themselves) in every
//             shard: clock + 1, and the dependencies' buckets take the new clock as their epoch.
//
// Why a response is never stale. Let a write W invalidate dependency D, and R be a response
// that read D, in shard s. W's core invalidation precedes its shard script, which precedes W's
// return. If R's ticket was taken after W's script ran in s, W's core invalidation came first,
// so R read D as W left it. Otherwise R's clock is below the epoch W gave D's bucket: R cannot
// be stored after W's script (store checks it), and if it was stored before, every lookup after
// W's script refuses and deletes it (lookup checks it). A lost shard hash (evicted, flushed)
// comes back with a new incarnation, which voids every response and ticket of the old one. A
// bucket shared by two dependencies only costs a needless miss.
//
// Nothing grows without bound: B bucket fields per shard, and responses that expire.

/**
 * What {@link ResponseStore.lookup} found: a hit (`l1`: served from this process's L1, with no
 * round trip; `grace`: past its TTL, served in its grace because the source is down) or a miss.
 */
export type ResponseLookup = { kind: 'hit'; body: Buffer; l1: boolean; grace?: true } | { kind: 'miss'; ticket: ResponseTicket };

/** What the response store asks of the core's grace (expiry.ts): whether the source is down, and to report a response served in its grace. */
export interface ResponseGrace {
  readonly policy: { readonly graceMs: number };
  sourceRecentlyDown(): boolean;
  servedResponse(trace?: CacheTrace): void;
}

/** Where a computed response may be stored, and the shard's clock when its computation began. */
export interface ResponseTicket {
  shard: number;
  key: string;
  incarnation: string;
  clock: number;
  /** The L1's generation when the lookup was sent (0 without an L1): a response stored under this ticket is held in L1 only if nothing it depends on was invalidated since. */
  l1StartedAt: number;
}

/** Options of {@link ResponseStore}. */
export interface ResponseStoreOptions {
  store: RedisStore;
  keys: Keyspace;
  /** Response shards (hash tags); 1 is enough on one Redis, a Cluster spreads them over its nodes. */
  shards: number;
  /** Dependency buckets per shard; more buckets, fewer needless misses. */
  buckets: number;
  /**
   * Told the dependencies of every invalidation once it has reached every shard (to purge a
   * shared HTTP cache by them); not told of one that failed, which the core retries. Must not throw.
   */
  onInvalidated?(dependencies: readonly string[]): void;
  /**
   * Stored responses served with no round trip (l1-cache.ts, made with this store's `bucketOf`):
   * a lookup's hit and a store are held in it, by their buckets. The cache core drops from it
   * what its invalidations name. Default none.
   */
  l1?: L1Cache;
}

// The scripts, one module each with its KEYS, ARGV and reply: ./scripts/response-*.ts.

type Arg = string | number | Buffer;
interface ResponseCommands {
  glcResponseLookupBuffer(
    shard: string,
    key: string,
    incarnation: string,
    graceMs: number,
    stale: string,
  ): Promise<[number, Buffer, Buffer?, number?]>;
  glcResponseStore(shard: string, key: string, ...args: Arg[]): Promise<number>;
  glcResponseInvalidate(shard: string, ...args: Arg[]): Promise<number>;
}

/** The response layer's Redis side: lookups, guarded stores and invalidations (see above). */
export class ResponseStore {
  readonly #store: RedisStore;
  readonly #keys: Keyspace;
  readonly #shards: number;
  readonly #buckets: number;
  readonly #client: ResponseCommands;
  readonly #onInvalidated: ((dependencies: readonly string[]) => void) | undefined;
  readonly #l1: L1Cache | undefined;
  #grace: ResponseGrace | undefined;

  constructor(options: ResponseStoreOptions) {
    if (!Number.isInteger(options.shards) || options.shards < 1)
      throw new TypeError(`shards must be a positive integer, got ${options.shards}`);
    if (!Number.isInteger(options.buckets) || options.buckets < 1)
      throw new TypeError(`buckets must be a positive integer, got ${options.buckets}`);
    this.#store = options.store;
    this.#keys = options.keys;
    this.#shards = options.shards;
    this.#buckets = options.buckets;
    this.#onInvalidated = options.onInvalidated;
    this.#l1 = options.l1;
    const client = options.store.client;
    client.defineCommand('glcResponseLookup', { numberOfKeys: 2, lua: RESPONSE_LOOKUP });
    client.defineCommand('glcResponseStore', { numberOfKeys: 2, lua: RESPONSE_STORE });
    client.defineCommand('glcResponseInvalidate', { numberOfKeys: 1, lua: RESPONSE_INVALIDATE });
    this.#client = client as unknown as ResponseCommands;
  }

  /**
   * Keeps responses past their TTL for `grace.policy.graceMs`, serving one while
   * `grace.sourceRecentlyDown()` (the cache core calls it with its own, once).
   */
  useGrace(grace: ResponseGrace): void {
    this.#grace = grace;
  }

  /** The bucket of a dependency (FNV-1a of the string, modulo the bucket count). */
  bucketOf(dependency: string): number {
    return responseBucketOf(dependency, this.#buckets);
  }

  /**
   * The stored response named `hash` (a hash of what it answers), or the ticket to compute and
   * store it. From the L1 when it holds it and may serve (no round trip), else one round trip.
   */
  async lookup(hash: string, trace?: CacheTrace): Promise<ResponseLookup> {
    const shard = fnv1a(hash) % this.#shards;
    const key = this.#keys.response(shard, hash);
    const l1 = this.#l1;
    const held = l1?.get(key);
    if (held) return { kind: 'hit', body: held.value as Buffer, l1: true };
    const l1StartedAt = l1?.generation ?? 0;
    const shardKey = this.#keys.responseShard(shard);
    const grace = this.#grace;
    const graceMs = grace?.policy.graceMs ?? 0;
    const stale = graceMs > 0 && grace?.sourceRecentlyDown() ? '1' : '';
    const reply = await this.#store.call(
      'response-get',
      () => this.#client.glcResponseLookupBuffer(shardKey, key, newIncarnation(), graceMs, stale),
      trace,
    );
    if (reply[0] === 2) {
      // Past its TTL, and the source is down: served, said so, and never held in L1.
      grace?.servedResponse(trace);
      return { kind: 'hit', body: reply[1], l1: false, grace: true };
    }
    if (reply[0] === 1) {
      const body = reply[1];
      if (l1) l1.set(key, body, { startedAt: l1StartedAt, bytes: body.length, buckets: bucketList(reply[2]), ...ttlOf(reply[3]) });
      return { kind: 'hit', body, l1: false };
    }
    return {
      kind: 'miss',
      ticket: { shard, key, incarnation: reply[1].toString(), clock: Number((reply[2] ?? Buffer.from('0')).toString()), l1StartedAt },
    };
  }

  /**
   * Stores a computed response for `ttlMs` milliseconds, unless something it depends on was
   * invalidated since its ticket was taken; true when stored.
   *
   * `localOnly`: held in this process's L1 only, never in Redis (true when held). For a response
   * computed from values this process's L1 served: such a value may be one a write on another
   * instance has replaced in Redis already, its invalidation on its way here (the write returns
   * only once it has arrived); stored in Redis, after the write's response invalidation, the
   * response would outlive it. Held here, the invalidation drops it when it arrives.
   */
  async store(
    ticket: ResponseTicket,
    dependencies: Iterable<string>,
    body: string | Buffer,
    ttlMs: number,
    trace?: CacheTrace,
    options: { localOnly?: boolean } = {},
  ): Promise<boolean> {
    const buckets = new Set<number>();
    for (const dependency of dependencies) buckets.add(this.bucketOf(dependency));
    const ttl = Math.max(1, Math.round(ttlMs));
    if (options.localOnly) {
      const held = typeof body === 'string' ? Buffer.from(body) : body;
      return (
        this.#l1?.set(ticket.key, held, { startedAt: ticket.l1StartedAt, bytes: held.length, buckets: [...buckets], ttlMs: ttl }) ?? false
      );
    }
    const stored = await this.#store.call(
      'response-set',
      () =>
        this.#client.glcResponseStore(
          this.#keys.responseShard(ticket.shard),
          ticket.key,
          ticket.incarnation,
          ticket.clock,
          ttl + (this.#grace?.policy.graceMs ?? 0),
          [...buckets].join(','),
          body,
        ),
      trace,
    );
    if (stored !== 1) return false;
    if (this.#l1) {
      const held = typeof body === 'string' ? Buffer.from(body) : body;
      this.#l1.set(ticket.key, held, { startedAt: ticket.l1StartedAt, bytes: held.length, buckets: [...buckets], ttlMs: ttl });
    }
    return true;
  }

  /**
   * Voids every stored response, and every computation under way, that depends on one of
   * `dependencies`: in every shard, at once. Call it after the cache core has invalidated the
   * dependencies themselves. Throws when a shard cannot be reached, or (with replica
   * acknowledgement) a shard's replica did not acknowledge in time: its responses may then be
   * stale, now or after a failover, and the caller must keep responses from being served until
   * a retry succeeds.
   */
  async invalidate(dependencies: readonly string[], trace?: CacheTrace): Promise<void> {
    if (dependencies.length === 0) return;
    const buckets = [...new Set(dependencies.map((dependency) => this.bucketOf(dependency)))];
    const incarnation = newIncarnation();
    const acks = this.#store.acks;
    const shortfalls: ReplicaAckError[] = [];
    await Promise.all(
      Array.from({ length: this.#shards }, (_, shard) => {
        const shardKey = this.#keys.responseShard(shard);
        return this.#store.call(
          'response-invalidate',
          async () => {
            if (!acks || acks.replicas === 0) return this.#client.glcResponseInvalidate(shardKey, incarnation, ...buckets);
            const { short } = await acks.write(shardKey, RESPONSE_INVALIDATE, 1, [shardKey, incarnation, ...buckets]);
            if (short) shortfalls.push(short);
            return 0;
          },
          trace,
        );
      }),
    );
    // Outside the breaker: a replica's silence is not a failure of Redis.
    if (shortfalls[0]) throw shortfalls[0];
    this.#onInvalidated?.(dependencies);
  }
}

/** This process's random prefix of {@link newIncarnation}. */
const INCARNATION_PREFIX = randomBytes(9).toString('base64url');
let incarnations = 0;

/**
 * A proposed incarnation for a shard hash that has none: unique across processes (a random prefix
 * per process) and within one (a counter), so that a shard recreated after a loss never takes an
 * incarnation it had before. Cheaper than random bytes per lookup, which is on every query.
 */
function newIncarnation(): string {
  incarnations += 1;
  return INCARNATION_PREFIX + incarnations.toString(36);
}

/** The response-store bucket of a dependency among `buckets`: FNV-1a of the string, modulo the bucket count. */
export function responseBucketOf(dependency: string, buckets: number): number {
  return fnv1a(dependency) % buckets;
}

/** The buckets of a lookup's hit, as the script returns them (comma separated). */
function bucketList(reply: Buffer | undefined): number[] {
  const text = reply?.toString() ?? '';
  return text === '' ? [] : text.split(',').map(Number);
}

/** The `ttlMs` of an L1 set from a hit's PTTL (none when it has no expiry). */
function ttlOf(pttl: number | undefined): { ttlMs?: number } {
  return pttl !== undefined && pttl > 0 ? { ttlMs: pttl } : {};
}

/** FNV-1a, 32 bits, over UTF-16 code units: fast and stable, not cryptographic. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
