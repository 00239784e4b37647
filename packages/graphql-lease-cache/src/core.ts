import type { CacheLogger } from './logger.js';
import type { CacheTrace } from './trace.js';
import { at } from './at.js';
import { decodedSizeEstimate, type Codec } from './codec.js';
import type { KnownPending } from './known-pending.js';
import type { L1Cache } from './l1-cache.js';
import type { LocalCopies } from './local-copies.js';
import type { CacheEvents } from './events.js';
import type { LeaseStore, PendingEntry, VersionedValue } from './lease-store.js';
import type { ResponseStore } from './response-store.js';
import type { FetchSpec, RefreshEntry } from './fetch-spec.js';
import type { Fleet } from './fleet/fleet.js';
import { newToken, nonNegative, positive, reportFailure } from './core-helpers.js';
import { PendingInvalidations } from './pending-invalidations.js';
import { ReadPath } from './read-path.js';
import { payloadOf, versionOf } from './redis-store.js';
import { SourceLoads } from './source-loads.js';
import { Expiry } from './expiry.js';

export type { FetchSpec, RefreshEntry } from './fetch-spec.js';

/** A stored value read without a lease ({@link CacheCore.peek}). */
export interface PeekedValue {
  /** The version it was stored with. */
  version: number;
  /** The decoded value: `ABSENT` for a cached absence, null for a floor (a version kept without a value). */
  value: unknown;
}

// The core is split by concern, CacheCore coordinating:
//   read-path.ts              fetch: get-or-lease, hits, joins, waits for busy leases
//   source-loads.ts           loads from the source of truth, single flight, fills
//   pending-invalidations.ts  undelivered invalidations: bypassed here, retried
//   fetch-spec.ts             what a fetch reads (FetchSpec) and its helpers

/** Options of {@link CacheCore}. */
export interface CacheCoreOptions {
  /** Null: no Redis; every fetch reads the source (and counts a miss). */
  store: LeaseStore | null;
  codec: Codec;
  /** Where hits, misses, fills and failures are reported (events.ts). */
  events: CacheEvents;
  logger: CacheLogger;
  /** How long a fill lease holds, in milliseconds; default 3000. */
  leaseTtlMs?: number;
  /** Waits for another reader's lease before reading the source without filling; default 4 (5, 10, 20, 40 ms). */
  leaseRetries?: number;
  /** The first wait, in milliseconds, doubled each time; default 5. */
  leaseWaitMs?: number;
  /** Relative TTL jitter, ±; default 0.1 (so that keys filled together do not expire together). */
  ttlJitter?: number;
  /** How often undelivered invalidations are retried, in milliseconds; default 1000. */
  retryIntervalMs?: number;
  /** Tag versions outlive what depends on them by at least this, in milliseconds; default one hour. */
  tagTtlMs?: number;
  /**
   * The write-behind changes this process knows to be queued, shared with the queue: what a
   * read applies when Redis cannot tell it. Default none: such reads then apply nothing.
   */
  knownPending?: KnownPending;
  /**
   * Decoded copies of stored values: a warm read sends the etag of its copy, and Redis answers
   * "same" instead of the value while it has not changed. Default none.
   */
  localCopies?: LocalCopies;
  /**
   * Whole responses (response-store.ts): every invalidation and refresh here also voids the
   * responses that depend on what it names, and reads record what they read in their request's
   * `trace.dependencies`. Default none.
   */
  responses?: ResponseStore;
  /**
   * This process as a member of the fleet (fleet/): reads use the cache only while its lease holds,
   * and every invalidation is broadcast to the other members and acknowledged before it returns.
   * Default none: a single process, or instances without an L1 that accept the guarantee ending at
   * the process.
   */
  fleet?: Fleet;
  /**
   * Decoded values served with no round trip while its gate allows (l1-cache.ts): every
   * invalidation, refresh and response invalidation here drops what it names from it, before
   * the Redis call and again once that call succeeded. Default none.
   */
  l1?: L1Cache;
  /**
   * How long values whose fetch or refresh asks for grace (entities, fields; never keyed values)
   * and whole responses are kept past their TTL, in milliseconds, to be served while the source
   * cannot answer (`isSourceUnavailable`); default 0: none.
   */
  graceMs?: number;
  /**
   * The last part of a TTL, as a fraction (default 0: never), in which a hit whose lease is free
   * is served and reloaded in the background under that lease (values of fetches that give a
   * `refreshTtlMs`). Cached absences are not refreshed early.
   */
  earlyRefresh?: number;
  /** True when a load's error means the source cannot answer (its values are then served in their grace); default: never. */
  isSourceUnavailable?: (error: unknown) => boolean;
}

/**
 * The one cache protocol, shared by the entity cache, the field cache and the app's own keyed values (its sessions):
 * get-or-lease, load the misses once, set-if-leased, with versions and tags.
 *
 * Why leases: plain cache-aside lets a reader that read the old document fill it after a writer
 * invalidated, leaving it stale until the TTL. Here a reader that misses takes a lease in the
 * same script call that found the miss; writers delete leases along with keys; a fill succeeds
 * only while its lease stands and never replaces a newer version. A reader that meets another
 * reader's lease joins that reader's load when it runs in this process (single flight), else
 * waits a few milliseconds and retries, and after a bound reads the source without filling.
 *
 * Failure: a store error never fails a read (it is served from the source, not filled, and
 * counted); a write (invalidate, refresh) that cannot reach Redis is kept and retried, and
 * until it is delivered the keys it names bypass the cache, so no reader here is served what
 * a returned mutation replaced.
 */
export class CacheCore {
  readonly #store: LeaseStore | null;
  readonly #codec: Codec;
  readonly #events: CacheEvents;
  readonly #logger: CacheLogger;
  readonly #ttlJitter: number;
  readonly #knownPending: KnownPending | undefined;
  readonly #local: LocalCopies | undefined;
  readonly #responses: ResponseStore | undefined;
  readonly #fleet: Fleet | undefined;
  readonly #l1: L1Cache | undefined;
  readonly #pending: PendingInvalidations;
  readonly #loads: SourceLoads;
  readonly #reads: ReadPath;
  readonly #expiry: Expiry;

  constructor(options: CacheCoreOptions) {
    this.#store = options.store;
    this.#codec = options.codec;
    this.#events = options.events;
    this.#logger = options.logger;
    // Validated in this order, so that the first bad option is the one reported.
    const leaseTtlMs = positive('leaseTtlMs', options.leaseTtlMs ?? 3_000);
    const leaseRetries = nonNegative('leaseRetries', options.leaseRetries ?? 4);
    const leaseWaitMs = positive('leaseWaitMs', options.leaseWaitMs ?? 5);
    this.#ttlJitter = options.ttlJitter ?? 0.1;
    if (!(this.#ttlJitter >= 0 && this.#ttlJitter < 1)) throw new TypeError(`ttlJitter must be in [0, 1), got ${this.#ttlJitter}`);
    const retryIntervalMs = positive('retryIntervalMs', options.retryIntervalMs ?? 1_000);
    const tagTtlMs = positive('tagTtlMs', options.tagTtlMs ?? 3_600_000);
    this.#knownPending = options.knownPending;
    this.#local = options.localCopies;
    this.#responses = options.responses;
    this.#fleet = options.fleet;
    this.#l1 = options.l1;
    const { store, codec, events, logger, knownPending, localCopies, responses, fleet, l1 } = options;
    this.#pending = new PendingInvalidations({
      store,
      responses,
      events,
      logger,
      retryIntervalMs,
      ...(fleet ? { broadcast: (dependencies) => fleet.broadcast(dependencies), drained: () => fleet.settled() } : {}),
    });
    const { graceMs: grace = 0, earlyRefresh = 0, isSourceUnavailable } = options;
    this.#expiry = new Expiry({ graceMs: grace, earlyRefresh, isSourceUnavailable, codec, events, logger, pending: this.#pending, fleet });
    options.responses?.useGrace(this.#expiry);
    const { graceMs } = this.#expiry.policy;
    // Fills jitter their TTLs, and reads invalidate unreadable values and read write-behind
    // changes, through this core's public methods, as any caller's calls do.
    this.#loads = new SourceLoads({ store, codec, events, logger, localCopies, graceMs, jitter: (ttlMs) => this.jitter(ttlMs) });
    this.#reads = new ReadPath({
      store,
      codec,
      events,
      logger,
      knownPending,
      localCopies,
      l1,
      leaseTtlMs,
      leaseRetries,
      leaseWaitMs,
      tagTtlMs,
      pending: this.#pending,
      expiry: this.#expiry,
      ...(options.fleet ? { fleet: options.fleet } : {}),
      loads: this.#loads,
      host: this,
    });
  }

  /** The L1, if any. */
  get l1(): L1Cache | undefined {
    return this.#l1;
  }

  /** Grace and early refresh: the policy, whether the source was seen down, the background reloads. */
  get expiry(): Expiry {
    return this.#expiry;
  }

  /** The response store, if any. */
  get responses(): ResponseStore | undefined {
    return this.#responses;
  }

  /**
   * True when whole responses may be served and stored here: there is a response store and no
   * invalidation waits for delivery (one that does may not have reached the responses either).
   */
  get responsesUsable(): boolean {
    return this.#responses !== undefined && this.#store !== null && this.pendingInvalidations === 0 && (this.#fleet?.servable() ?? true);
  }

  /**
   * Voids the responses that depend on `keys` (a change the keys' own values do not show, such
   * as a queued write-behind change), and what the L1 holds of them. Never throws: what cannot be delivered is kept pending,
   * and retried, with the keys themselves.
   */
  async invalidateResponses(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    // Dropped before the call (no read here serves them from now on) and after it: a read that
    // began in between may have read what the call voids, and must not hold it. With or without
    // responses: an entity held in L1 with the write-behind changes it was read with is dropped
    // by a change of one of its fields (`<entity key>#<field>`).
    this.#l1?.invalidate(keys);
    if (!this.#responses && !this.#fleet) return;
    try {
      await this.#responses?.invalidate(keys);
      await this.#afterDelivered(keys);
    } catch (error) {
      this.#failed('invalidate', error);
      this.#pending.add(keys, []);
      await this.#fleet?.owe(keys, []);
    }
  }

  /** True when a Redis store is configured (not whether it is up). */
  get enabled(): boolean {
    return this.#store !== null;
  }

  /** How many keys and tags wait for an undelivered invalidation. */
  get pendingInvalidations(): number {
    return this.#pending.size;
  }

  /** True when `key` waits here for an undelivered invalidation (reads bypass it until it is delivered). */
  invalidationPending(key: string): boolean {
    return this.#pending.bypasses(key, undefined);
  }

  /**
   * What Redis stores at each key (same order; null where nothing, or no Redis), decoded, without
   * taking a lease, filling or counting a hit: for audits that compare the cache with the source,
   * never for serving. Rejects when Redis fails (unlike `fetch`, nothing falls back).
   */
  async peek(keys: readonly string[]): Promise<(PeekedValue | null)[]> {
    if (!this.#store?.peek) return keys.map(() => null);
    const raw = await this.#store.peek(keys);
    return raw.map((stored) => {
      const version = stored ? versionOf(stored) : null;
      if (!stored || version === null) return null;
      const payload = payloadOf(stored);
      return { version, value: payload ? this.#codec.decode(payload) : null };
    });
  }

  /**
   * The values of `spec.keys`: from Redis where present, else loaded (once per batch) and
   * filled. Never throws for a cache failure; `spec.load`'s errors propagate.
   */
  fetch<T>(spec: FetchSpec<T>): Promise<(T | null)[]> {
    // Not async: the read path's own promise, so that a fetch settles when it did in one piece.
    return this.#reads.fetch(spec);
  }

  /** Writes values through (refresh), never replacing a newer version; undeliverable ones become pending invalidations. */
  async refresh<T>(name: string, entries: readonly RefreshEntry<T>[]): Promise<void> {
    if (!this.#store || entries.length === 0) return;
    const keys = entries.map((entry) => entry.key);
    this.#loads.forget(keys);
    this.#l1?.invalidate(keys);
    const store = this.#store;
    try {
      const values: VersionedValue[] = entries.map((entry) => {
        const payload = this.#codec.encode(entry.value);
        this.#events.write(name, payload.length);
        const graceMs = entry.grace ? this.#expiry.policy.graceMs : 0;
        return { key: entry.key, version: entry.version, payload, ttlMs: entry.ttlMs === 0 ? 0 : this.jitter(entry.ttlMs) + graceMs };
      });
      const etag = newToken();
      const stored = await store.refresh(values, etag);
      await this.#responses?.invalidate(keys);
      await this.#afterDelivered(keys);
      stored.forEach((ok, i) => {
        if (!ok) return;
        const entry = at(entries, i, 'refresh: the entry of a reply');
        this.#local?.set(entry.key, etag, entry.value, decodedSizeEstimate(at(values, i, 'refresh: a value sent').payload));
      });
    } catch (error) {
      this.#failed('refresh', error);
      const keys = entries.map((e) => e.key);
      this.#pending.add(keys, []);
      await this.#fleet?.owe(keys, []);
    }
  }

  /**
   * Deletes keys and their leases, and the tags (what depends on them reads as a miss). Never
   * throws: what cannot be delivered now is retried, and bypasses the cache until then.
   *
   * With `holdMs` (after a write whose outcome is unknown: the database may still apply it),
   * the keys and tags also bypass the cache in this process for that long, in milliseconds, and
   * are invalidated once more at its end: a reader that refilled them from the database before
   * the write landed cannot leave its value behind.
   */
  async invalidate(keys: readonly string[], tags: readonly string[] = [], options: { holdMs?: number } = {}): Promise<void> {
    if (!this.#store || (keys.length === 0 && tags.length === 0)) return;
    this.#loads.forget(keys);
    this.#local?.delete(keys);
    const dependencies = [...keys, ...tags];
    this.#l1?.invalidate(dependencies);
    try {
      await this.#store.invalidate(keys, tags);
      await this.#responses?.invalidate(dependencies);
      await this.#afterDelivered(dependencies);
      if (options.holdMs) this.#pending.add(keys, tags, Date.now() + options.holdMs);
    } catch (error) {
      this.#failed('invalidate', error);
      this.#pending.add(keys, tags, options.holdMs ? Date.now() + options.holdMs : 0);
      await this.#fleet?.owe(keys, tags);
    }
  }

  /**
   * Delivers an invalidation now: the keys and tags, the responses that depend on them, and the
   * fleet's broadcast (for the fleet's recovery of what another member owed). Rejects on failure.
   */
  async deliver(keys: readonly string[], tags: readonly string[]): Promise<void> {
    if (!this.#store) return;
    this.#loads.forget(keys);
    this.#local?.delete(keys);
    await this.#store.invalidate(keys, tags);
    await this.#responses?.invalidate([...keys, ...tags]);
    await this.#fleet?.broadcast([...keys, ...tags]);
  }

  /**
   * The write-behind changes in each hash (same order); empty where none. Never throws: when
   * Redis fails, what this process knows to be queued ({@link KnownPending}).
   */
  async pendingChanges(keys: readonly string[], trace?: CacheTrace): Promise<PendingEntry[][]> {
    if (!this.#store || keys.length === 0) return keys.map(() => []);
    const askedAt = Date.now();
    try {
      const found = await this.#store.pending(keys, trace);
      found.forEach((entries, i) => this.#knownPending?.observed(at(keys, i, 'pendingChanges: the key of a reply'), entries, askedAt));
      return found;
    } catch (error) {
      this.#failed('pending', error);
      return keys.map((key) => this.#knownPending?.get(key) ?? []);
    }
  }

  /** `ttlMs` ± the jitter, rounded; at least 1. */
  jitter(ttlMs: number): number {
    const factor = 1 + this.#ttlJitter * (2 * Math.random() - 1);
    return Math.max(1, Math.round(ttlMs * factor));
  }

  /** Tries to deliver pending invalidations now (also runs on a timer and when Redis reconnects). */
  deliverPending(): Promise<void> {
    // Not async: the delivery's own promise (one run at a time, see PendingInvalidations.deliver).
    return this.#pending.deliver();
  }

  /** Stops the retry timer (pending invalidations are logged, not delivered). */
  close(): void {
    this.#pending.close();
  }

  /**
   * Once an invalidation reached Redis: drops it from this process's L1 again (a read that began
   * before may have read the old value, and must not hold it) and, with a fleet, from every other
   * instance's (the broadcast drops it here too).
   */
  async #afterDelivered(dependencies: readonly string[]): Promise<void> {
    if (this.#fleet) await this.#fleet.broadcast(dependencies);
    else this.#l1?.invalidate(dependencies);
  }

  #failed(op: string, error: unknown): void {
    reportFailure(this.#events, this.#logger, op, error);
  }
}
