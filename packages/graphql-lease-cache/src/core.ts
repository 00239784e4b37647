import { randomBytes } from 'node:crypto';
import type { CacheLogger } from './logger.js';
import { NO_TRACE, type CacheTrace, type CurrentTrace } from './trace.js';
import { at } from './at.js';
import { ABSENT, type Codec } from './codec.js';
import type { KnownPending } from './known-pending.js';
import type { LocalCopies, LocalCopy } from './local-copies.js';
import type { CacheMetrics } from './metrics.js';
import type { LeaseReply, LeaseRequest, LeaseStore, PendingEntry, VersionedValue } from './lease-store.js';
import type { ResponseStore } from './response-store.js';
import type { CacheStats } from './stats.js';

/** What {@link CacheCore.fetch} reads: one key per item, in the caller's order. */
export interface FetchSpec<T> {
  /**
   * For stats and metrics: an entity type (`User`) or a field coordinate
   * (`Product.averageRating`); a function when one fetch mixes several (the field cache).
   */
  name: string | ((index: number) => string);
  keys: readonly string[];
  /** The tag keys of each key (same index): their versions are read into its lease, and a value is a miss once one changed. */
  tags?: readonly (readonly string[])[];
  /**
   * Reads the items at `indexes` from the source of truth, in that order; null where there is
   * none. Called at most once per fetch for the items this reader leased, so once per batch.
   * Must return exactly one value per index (DataLoader's contract): any other length rejects
   * the fetch with a TypeError naming the counts, and nothing of that batch is cached.
   */
  load(indexes: readonly number[]): Promise<(T | null)[]>;
  /** The version of a loaded value (absent values have version 0). */
  versionOf(value: T): number;
  /** How long to keep the value of item `index`, in milliseconds, before jitter. */
  ttlMs(value: T | null, index: number): number;
  /** Reset the expiry of each hit to this, in milliseconds (sliding expiration); default: leave it. */
  touchTtlMs?: number;
  /**
   * The write-behind hash of each key (same index), read in the same round trip. Its changes,
   * which MongoDB does not have yet, are applied to the value read by `applyPending`; what is
   * stored in the cache stays the value as loaded.
   */
  pendingKeys?: readonly string[];
  /** Returns `value` with `pending` applied (a new value: `value` may be shared). */
  applyPending?(value: T, pending: readonly PendingEntry[]): T;
  /** The request whose hits, misses and Redis round trips these are (default: the traced request, if any; see trace.ts). */
  trace?: CacheTrace;
}

/** A value to write through (refresh): stored unless Redis holds a newer version. */
export interface RefreshEntry<T> {
  key: string;
  value: T;
  version: number;
  /** In milliseconds, before jitter; 0 keeps the value without expiry (write-behind). */
  ttlMs: number;
}

/** Options of {@link CacheCore}. */
export interface CacheCoreOptions {
  /** Null: no Redis; every fetch reads the source (and counts a miss). */
  store: LeaseStore | null;
  codec: Codec;
  metrics: CacheMetrics;
  stats: CacheStats;
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
  /** The trace a read that passes none is counted in (the request being served); default none. */
  currentTrace?: CurrentTrace;
}

/** Per name, the bytes and absent values a batch read (counted once per batch). */
type HitTally = Map<string, { bytes: number; absent: number }>;

interface InFlight {
  token: string;
  value: Promise<unknown>;
}

/** Undelivered invalidations: key or tag -> generation (bumped each time it is added again). */
interface Pending {
  keys: Map<string, number>;
  tags: Map<string, number>;
}

/** This process's random prefix of {@link newToken}. */
const TOKEN_PREFIX = randomBytes(9).toString('base64url');
let tokenCounter = 0;

/**
 * A lease token, which also names the value it fills (its etag, see LocalCopies): unique across
 * processes (a random prefix per process) and within one (a counter). It need not be secret:
 * nothing but this process's fills present it. Cheaper than random bytes per call.
 */
function newToken(): string {
  tokenCounter += 1;
  return TOKEN_PREFIX + tokenCounter.toString(36);
}

/** How many keys and tags one delivery call carries (a large backlog goes in several). */
const DELIVERY_CHUNK = 500;

/**
 * The one cache protocol, shared by the entity cache, the field cache and the session store:
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
  readonly #metrics: CacheMetrics;
  readonly #stats: CacheStats;
  readonly #logger: CacheLogger;
  readonly #leaseTtlMs: number;
  readonly #leaseRetries: number;
  readonly #leaseWaitMs: number;
  readonly #ttlJitter: number;
  readonly #retryIntervalMs: number;
  readonly #tagTtlMs: number;
  readonly #knownPending: KnownPending | undefined;
  readonly #local: LocalCopies | undefined;
  readonly #responses: ResponseStore | undefined;
  readonly #currentTrace: CurrentTrace;
  readonly #inFlight = new Map<string, InFlight>();
  readonly #pending: Pending = { keys: new Map(), tags: new Map() };
  /** Pending keys (`k:<key>`) and tags (`t:<tag>`) not to deliver before then (ms since the epoch). */
  readonly #heldUntil = new Map<string, number>();
  #generation = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #delivering: Promise<void> | undefined;

  constructor(options: CacheCoreOptions) {
    this.#store = options.store;
    this.#codec = options.codec;
    this.#metrics = options.metrics;
    this.#stats = options.stats;
    this.#logger = options.logger;
    this.#leaseTtlMs = positive('leaseTtlMs', options.leaseTtlMs ?? 3_000);
    this.#leaseRetries = nonNegative('leaseRetries', options.leaseRetries ?? 4);
    this.#leaseWaitMs = positive('leaseWaitMs', options.leaseWaitMs ?? 5);
    this.#ttlJitter = options.ttlJitter ?? 0.1;
    if (!(this.#ttlJitter >= 0 && this.#ttlJitter < 1)) throw new TypeError(`ttlJitter must be in [0, 1), got ${this.#ttlJitter}`);
    this.#retryIntervalMs = positive('retryIntervalMs', options.retryIntervalMs ?? 1_000);
    this.#tagTtlMs = positive('tagTtlMs', options.tagTtlMs ?? 3_600_000);
    this.#knownPending = options.knownPending;
    this.#local = options.localCopies;
    this.#responses = options.responses;
    this.#currentTrace = options.currentTrace ?? NO_TRACE;
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
    return this.#responses !== undefined && this.#store !== null && this.pendingInvalidations === 0;
  }

  /**
   * Voids the responses that depend on `keys` (a change the keys' own values do not show, such
   * as a queued write-behind change). Never throws: what cannot be delivered is kept pending,
   * and retried, with the keys themselves.
   */
  async invalidateResponses(keys: readonly string[]): Promise<void> {
    if (!this.#responses || keys.length === 0) return;
    try {
      await this.#responses.invalidate(keys);
    } catch (error) {
      this.#failed('invalidate', error);
      this.#addPending(keys, []);
    }
  }

  /** True when a Redis store is configured (not whether it is up). */
  get enabled(): boolean {
    return this.#store !== null;
  }

  /** How many keys and tags wait for an undelivered invalidation. */
  get pendingInvalidations(): number {
    return this.#pending.keys.size + this.#pending.tags.size;
  }

  /**
   * The values of `spec.keys`: from Redis where present, else loaded (once per batch) and
   * filled. Never throws for a cache failure; `spec.load`'s errors propagate.
   */
  async fetch<T>(spec: FetchSpec<T>): Promise<(T | null)[]> {
    const out = new Array<T | null>(spec.keys.length).fill(null);
    const dependencies = spec.trace?.dependencies;
    if (dependencies) {
      spec.keys.forEach((key, index) => {
        dependencies.add(key);
        for (const tag of spec.tags?.[index] ?? []) dependencies.add(tag);
      });
    }
    const bypass: number[] = [];
    const candidates: number[] = [];
    spec.keys.forEach((key, index) => (!this.#store || this.#mustBypass(key, spec.tags?.[index]) ? bypass : candidates).push(index));
    const work: Promise<void>[] = [];
    const pending = new Map<number, PendingEntry[]>();
    if (bypass.length) {
      // Not looked up in Redis at all (no Redis, or a pending invalidation): misses.
      this.#count(spec, [], bypass);
      work.push(this.#loadWithPending(spec, bypass, out, pending));
    }
    if (candidates.length) work.push(this.#fetchCandidates(spec, candidates, out, pending));
    await Promise.all(work);
    if (spec.applyPending) {
      for (const [index, entries] of pending) {
        const value = out[index];
        if (value !== null && value !== undefined && entries.length > 0) out[index] = spec.applyPending(value, entries);
      }
    }
    return out;
  }

  /** Writes values through (refresh), never replacing a newer version; undeliverable ones become pending invalidations. */
  async refresh<T>(name: string, entries: readonly RefreshEntry<T>[]): Promise<void> {
    if (!this.#store || entries.length === 0) return;
    for (const entry of entries) this.#inFlight.delete(entry.key);
    const store = this.#store;
    try {
      const values: VersionedValue[] = entries.map((entry) => {
        const payload = this.#codec.encode(entry.value);
        this.#metrics.bytesWritten.inc({ name }, payload.length);
        return { key: entry.key, version: entry.version, payload, ttlMs: entry.ttlMs === 0 ? 0 : this.jitter(entry.ttlMs) };
      });
      const etag = newToken();
      const stored = await store.refresh(values, etag);
      await this.#responses?.invalidate(entries.map((e) => e.key));
      stored.forEach((ok, i) => {
        if (!ok) return;
        const entry = at(entries, i, 'refresh: the entry of a reply');
        this.#local?.set(entry.key, etag, entry.value);
      });
    } catch (error) {
      this.#failed('refresh', error);
      this.#addPending(
        entries.map((e) => e.key),
        [],
      );
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
    for (const key of keys) this.#inFlight.delete(key);
    this.#local?.delete(keys);
    try {
      await this.#store.invalidate(keys, tags);
      await this.#responses?.invalidate([...keys, ...tags]);
      if (options.holdMs) this.#addPending(keys, tags, Date.now() + options.holdMs);
    } catch (error) {
      this.#failed('invalidate', error);
      this.#addPending(keys, tags, options.holdMs ? Date.now() + options.holdMs : 0);
    }
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
  async deliverPending(): Promise<void> {
    if (this.#delivering) return this.#delivering;
    const run = this.#deliver();
    this.#delivering = run;
    // Cleared when this run ends, never before it is recorded: a run with nothing to deliver
    // finishes without awaiting, and clearing inside it would leave its settled promise here,
    // answering every later call at once and never delivering again.
    return run.finally(() => {
      if (this.#delivering === run) this.#delivering = undefined;
      this.#scheduleRetry();
    });
  }

  /** One delivery run (never throws). */
  async #deliver(): Promise<void> {
    try {
      while (this.#store && this.pendingInvalidations > 0) {
        // Held ones (see invalidate's holdMs) wait for their time.
        const now = Date.now();
        const keys = [...this.#pending.keys].filter(([key]) => (this.#heldUntil.get(`k:${key}`) ?? 0) <= now).slice(0, DELIVERY_CHUNK);
        const tags = [...this.#pending.tags].filter(([tag]) => (this.#heldUntil.get(`t:${tag}`) ?? 0) <= now).slice(0, DELIVERY_CHUNK);
        if (keys.length === 0 && tags.length === 0) break;
        await this.#store.invalidate(
          keys.map(([key]) => key),
          tags.map(([tag]) => tag),
        );
        await this.#responses?.invalidate([...keys.map(([key]) => key), ...tags.map(([tag]) => tag)]);
        // Only what this call delivered: an entry added again meanwhile (a newer generation)
        // belongs to a later write whose invalidation may have run before this one.
        for (const [key, generation] of keys) {
          if (this.#pending.keys.get(key) !== generation) continue;
          this.#pending.keys.delete(key);
          this.#heldUntil.delete(`k:${key}`);
        }
        for (const [tag, generation] of tags) {
          if (this.#pending.tags.get(tag) !== generation) continue;
          this.#pending.tags.delete(tag);
          this.#heldUntil.delete(`t:${tag}`);
        }
        this.#logger.info({ keys: keys.length, tags: tags.length }, 'delivered pending cache invalidations');
      }
    } catch (error) {
      this.#failed('invalidate', error);
    } finally {
      this.#metrics.pendingInvalidations.set(this.pendingInvalidations);
    }
  }

  /** Stops the retry timer (pending invalidations are logged, not delivered). */
  close(): void {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    if (this.pendingInvalidations > 0) {
      this.#logger.warn({ pending: this.pendingInvalidations }, 'closing with undelivered cache invalidations; their keys expire by TTL');
    }
  }

  async #fetchCandidates<T>(
    spec: FetchSpec<T>,
    indexes: readonly number[],
    out: (T | null)[],
    pending: Map<number, PendingEntry[]>,
  ): Promise<void> {
    const store = this.#store;
    if (!store) return;
    const token = newToken();
    let replies: LeaseReply[];
    const askedAt = Date.now();
    // The copies whose etags are sent: held here, so that a "same" finds its copy even if the
    // copy is dropped from LocalCopies while the call is out.
    const copies: (LocalCopy | undefined)[] = [];
    try {
      replies = await store.getOrLease(
        indexes.map((index, i) => {
          const request = requestOf(spec, index);
          const copy = this.#local?.get(request.key);
          copies[i] = copy;
          if (copy) request.etag = copy.etag;
          return request;
        }),
        { token, leaseTtlMs: this.#leaseTtlMs, touchTtlMs: spec.touchTtlMs, tagTtlMs: this.#tagTtlMs, trace: spec.trace },
      );
    } catch (error) {
      // Served from MongoDB, with the queued write-behind changes all the same.
      this.#failed('get', error);
      this.#count(spec, [], indexes);
      await this.#loadWithPending(spec, indexes, out, pending);
      return;
    }
    this.#observePending(spec, indexes, replies, askedAt);

    const leased: number[] = [];
    const busy: number[] = [];
    const unreadable: number[] = [];
    const joins: Promise<void>[] = [];
    const hits: number[] = [];
    const tally: HitTally = new Map();
    replies.forEach((reply, i) => {
      const index = at(indexes, i, 'get-or-lease: the index of a reply');
      if (reply.pending) pending.set(index, reply.pending);
      if (reply.kind === 'same') {
        const copy = copies[i];
        if (!copy) throw new Error(`the cache answered "same" for ${at(spec.keys, index, 'spec.keys')}, whose etag was not sent`);
        out[index] = copy.value === ABSENT ? null : (copy.value as T);
        if (copy.value === ABSENT) tallyRead(tally, nameOf(spec, index), 0, true);
        hits.push(index);
      } else if (reply.kind === 'hit') {
        (this.#readHit(spec, index, reply.payload, out, tally, reply.etag) ? hits : unreadable).push(index);
      } else if (reply.kind === 'lease') {
        leased.push(index);
      } else {
        // Another reader is filling it. In this process? Then share its load (single flight).
        const flight = this.#inFlight.get(at(spec.keys, index, 'spec.keys'));
        if (flight && flight.token === reply.token) {
          joins.push(
            flight.value.then((value) => {
              out[index] = value as T | null;
            }),
          );
        } else {
          busy.push(index);
        }
      }
    });
    this.#countRead(tally);
    const hitSet = new Set(hits);
    this.#count(spec, hits, hits.length === indexes.length ? [] : indexes.filter((index) => !hitSet.has(index)));

    const work: Promise<void>[] = [...joins];
    if (leased.length) work.push(this.#loadAndFill(spec, leased, token, out));
    if (unreadable.length) {
      // Overwrite garbage only through the protocol: invalidate, then a later read refills it.
      work.push(this.invalidate(unreadable.map((index) => at(spec.keys, index, 'spec.keys'))));
      work.push(this.#loadInto(spec, unreadable, out));
    }
    if (busy.length) work.push(this.#waitForBusy(spec, busy, out, pending));
    await Promise.all(work);
  }

  /** Loads the leased items (once, shared with joiners in this process) and fills them. */
  async #loadAndFill<T>(spec: FetchSpec<T>, indexes: readonly number[], token: string, out: (T | null)[]): Promise<void> {
    // Calls spec.load synchronously; rejects, before anything is filled, when the load breaks
    // its contract (then the leases are left to expire, as when it throws).
    const loading = this.#load(spec, indexes);
    // Registered synchronously, before any await: the busy replies of concurrent readers of
    // the same keys are processed after this reply, and must find these loads.
    indexes.forEach((index, i) => {
      const key = at(spec.keys, index, 'spec.keys');
      const value = loading.then((values) => loadedAt(values, i));
      value.catch(() => undefined); // the owner reports the error; joiners get it too
      this.#inFlight.set(key, { token, value });
    });
    try {
      const values = await loading;
      indexes.forEach((index, i) => {
        out[index] = loadedAt(values, i);
      });
      await this.#fill(spec, token, indexes, values);
    } finally {
      for (const index of indexes) {
        const key = at(spec.keys, index, 'spec.keys');
        if (this.#inFlight.get(key)?.token === token) this.#inFlight.delete(key);
      }
    }
  }

  async #fill<T>(spec: FetchSpec<T>, token: string, indexes: readonly number[], values: readonly (T | null)[]): Promise<void> {
    const store = this.#store;
    if (!store) return;
    try {
      const entries: VersionedValue[] = indexes.map((index, i) => {
        const value = loadedAt(values, i);
        const payload = this.#codec.encode(value === null ? ABSENT : value);
        this.#metrics.bytesWritten.inc({ name: nameOf(spec, index) }, payload.length);
        const tags = spec.tags?.[index];
        return {
          key: at(spec.keys, index, 'spec.keys'),
          version: value === null ? 0 : spec.versionOf(value),
          payload,
          ttlMs: this.jitter(spec.ttlMs(value, index)),
          ...(tags && tags.length > 0 ? { tags } : {}),
        };
      });
      const stored = await store.setIfLeased(token, entries, spec.trace);
      stored.forEach((ok, i) => {
        const index = at(indexes, i, 'fill: the index of a reply');
        this.#metrics.fills.inc({ name: nameOf(spec, index), outcome: ok ? 'stored' : 'lost' });
        // The lease token is the stored value's etag.
        if (ok) this.#local?.set(at(spec.keys, index, 'spec.keys'), token, loadedAt(values, i) ?? ABSENT);
      });
    } catch (error) {
      this.#failed('fill', error);
    }
  }

  /** Waits for other readers' leases with doubling pauses, retrying the cache; then loads without filling. */
  async #waitForBusy<T>(
    spec: FetchSpec<T>,
    indexes: readonly number[],
    out: (T | null)[],
    pending: Map<number, PendingEntry[]>,
  ): Promise<void> {
    const store = this.#store;
    let waiting = [...indexes];
    for (let attempt = 0; store && waiting.length > 0 && attempt < this.#leaseRetries; attempt += 1) {
      for (const index of waiting) this.#metrics.leaseWaits.inc({ name: nameOf(spec, index) });
      await sleep(this.#leaseWaitMs * 2 ** attempt);
      let replies: LeaseReply[];
      const token = newToken();
      const askedAt = Date.now();
      try {
        replies = await store.getOrLease(
          waiting.map((index) => requestOf(spec, index)),
          { token, leaseTtlMs: this.#leaseTtlMs, tagTtlMs: this.#tagTtlMs, trace: spec.trace },
        );
      } catch (error) {
        this.#failed('get', error);
        break;
      }
      this.#observePending(spec, waiting, replies, askedAt);
      const stillBusy: number[] = [];
      const leased: number[] = [];
      const tally: HitTally = new Map();
      replies.forEach((reply, i) => {
        const index = at(waiting, i, 'get-or-lease: the index of a reply');
        // The newest snapshot of the changes goes with the newest read.
        if (reply.pending) pending.set(index, reply.pending);
        else pending.delete(index);
        if (reply.kind === 'hit') {
          if (!this.#readHit(spec, index, reply.payload, out, tally, reply.etag)) stillBusy.push(index);
        } else if (reply.kind === 'lease') {
          leased.push(index);
        } else {
          stillBusy.push(index);
        }
      });
      this.#countRead(tally);
      if (leased.length) await this.#loadAndFill(spec, leased, token, out);
      waiting = stillBusy;
    }
    if (waiting.length) {
      for (const index of waiting) this.#metrics.leaseTimeouts.inc({ name: nameOf(spec, index) });
      await this.#loadInto(spec, waiting, out);
    }
  }

  /** Decodes a hit into `out[index]`; false (counted as a decode error) when the value is unreadable. */
  #readHit<T>(spec: FetchSpec<T>, index: number, payload: Buffer, out: (T | null)[], tally: HitTally, etag: string): boolean {
    try {
      const value = this.#codec.decode(payload);
      this.#local?.set(at(spec.keys, index, 'spec.keys'), etag, value);
      tallyRead(tally, nameOf(spec, index), payload.length, value === ABSENT);
      out[index] = value === ABSENT ? null : (value as T);
      return true;
    } catch (error) {
      this.#failed('decode', error);
      return false;
    }
  }

  /** Counts a batch's hits in the metrics: once per name, not once per value (label look-ups cost). */
  #countRead(tally: HitTally): void {
    for (const [name, { bytes, absent }] of tally) {
      this.#metrics.bytesRead.inc({ name }, bytes);
      if (absent > 0) this.#metrics.absentHits.inc({ name }, absent);
    }
  }

  /**
   * Reads items from the source without filling them, with their queued write-behind changes
   * read first (from Redis, else as this process knows them): a flush in between then shows in
   * the document, and its `wbSeq` skips what it applied, so nothing is lost or counted twice.
   */
  async #loadWithPending<T>(
    spec: FetchSpec<T>,
    indexes: readonly number[],
    out: (T | null)[],
    pending: Map<number, PendingEntry[]>,
  ): Promise<void> {
    const pendingKeys = spec.pendingKeys;
    if (this.#store && pendingKeys) {
      const found = await this.pendingChanges(
        indexes.map((index) => at(pendingKeys, index, 'spec.pendingKeys')),
        spec.trace,
      );
      found.forEach((entries, i) => {
        if (entries.length > 0) pending.set(at(indexes, i, 'pendingChanges: the index of a reply'), entries);
      });
    }
    await this.#loadInto(spec, indexes, out);
  }

  /** Remembers the write-behind snapshot each reply brought (see {@link KnownPending.observed}). */
  #observePending<T>(spec: FetchSpec<T>, indexes: readonly number[], replies: readonly LeaseReply[], askedAt: number): void {
    const known = this.#knownPending;
    const pendingKeys = spec.pendingKeys;
    if (!known || !pendingKeys) return;
    replies.forEach((reply, i) =>
      known.observed(
        at(pendingKeys, at(indexes, i, 'get-or-lease: the index of a reply'), 'spec.pendingKeys'),
        reply.pending ?? [],
        askedAt,
      ),
    );
  }

  /** Reads items from the source without filling them. */
  async #loadInto<T>(spec: FetchSpec<T>, indexes: readonly number[], out: (T | null)[]): Promise<void> {
    const values = await this.#load(spec, indexes);
    indexes.forEach((index, i) => {
      out[index] = loadedAt(values, i);
    });
  }

  /**
   * `spec.load(indexes)` (called synchronously), held to DataLoader's contract: an array of one
   * value per index. Anything else rejects with a TypeError naming the counts, before a value is
   * read or filled: a missing position must never pass for "none" and be cached as such.
   */
  async #load<T>(spec: FetchSpec<T>, indexes: readonly number[]): Promise<(T | null)[]> {
    const values: unknown = await spec.load(indexes);
    if (!Array.isArray(values) || values.length !== indexes.length) throw loadContractError(spec, indexes, values);
    return values as (T | null)[];
  }

  /** Counts hits and misses per name (the items of one fetch may belong to several). */
  #count<T>(spec: FetchSpec<T>, hits: readonly number[], misses: readonly number[]): void {
    const byName = new Map<string, { hits: number; misses: number }>();
    const add = (index: number, hit: boolean): void => {
      const name = nameOf(spec, index);
      const entry = byName.get(name) ?? { hits: 0, misses: 0 };
      if (hit) entry.hits += 1;
      else entry.misses += 1;
      byName.set(name, entry);
    };
    for (const index of hits) add(index, true);
    for (const index of misses) add(index, false);
    for (const [name, count] of byName) {
      if (count.hits) this.#metrics.hits.inc({ name }, count.hits);
      if (count.misses) this.#metrics.misses.inc({ name }, count.misses);
      this.#stats.record(name, count.hits, count.misses);
    }
    const trace = spec.trace ?? this.#currentTrace();
    if (trace) {
      trace.cacheHits += hits.length;
      trace.cacheMisses += misses.length;
    }
  }

  #mustBypass(key: string, tags: readonly string[] | undefined): boolean {
    if (this.#pending.keys.size === 0 && this.#pending.tags.size === 0) return false;
    return this.#pending.keys.has(key) || (tags ?? []).some((tag) => this.#pending.tags.has(tag));
  }

  /** Keeps keys and tags pending (bypassed here, delivered by the retries), not before `heldUntil` (ms since the epoch; 0: at once). */
  #addPending(keys: readonly string[], tags: readonly string[], heldUntil = 0): void {
    this.#generation += 1;
    const hold = (name: string) => {
      if (heldUntil > (this.#heldUntil.get(name) ?? 0)) this.#heldUntil.set(name, heldUntil);
    };
    for (const key of keys) {
      this.#pending.keys.set(key, this.#generation);
      hold(`k:${key}`);
    }
    for (const tag of tags) {
      this.#pending.tags.set(tag, this.#generation);
      hold(`t:${tag}`);
    }
    this.#metrics.pendingInvalidations.set(this.pendingInvalidations);
    this.#logger.warn(
      { keys: keys.length, tags: tags.length, heldMs: heldUntil ? heldUntil - Date.now() : 0 },
      heldUntil
        ? 'cache keys held after a write of unknown outcome; bypassing them, and invalidating again later'
        : 'cache invalidation not delivered; retrying, and bypassing those keys meanwhile',
    );
    this.#scheduleRetry();
  }

  #scheduleRetry(): void {
    if (this.#retryTimer || this.pendingInvalidations === 0) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      void this.deliverPending();
    }, this.#retryIntervalMs);
    this.#retryTimer.unref();
  }

  #failed(op: string, error: unknown): void {
    this.#metrics.errors.inc({ op });
    this.#logger.debug({ err: error, op }, 'cache operation failed; serving from MongoDB');
  }
}

function requestOf<T>(spec: FetchSpec<T>, index: number): LeaseRequest {
  const request: LeaseRequest = { key: at(spec.keys, index, 'spec.keys') };
  const tags = spec.tags?.[index];
  if (tags && tags.length > 0) request.tags = tags;
  if (spec.pendingKeys) request.pendingKey = at(spec.pendingKeys, index, 'spec.pendingKeys');
  return request;
}

/**
 * Value `i` of a load (checked to hold one per key, see CacheCore's #load): an `undefined`
 * the load returned in range counts as null ("none"), as it always has; past the end, throws.
 */
function loadedAt<T>(values: readonly (T | null)[], i: number): T | null {
  return at(values, i, 'a loaded value') ?? null;
}

/** The error of a load that did not return one value per key (DataLoader's TypeError). */
function loadContractError<T>(spec: FetchSpec<T>, indexes: readonly number[], values: unknown): TypeError {
  const names = [...new Set(indexes.map((index) => nameOf(spec, index)))].join(', ');
  const got = Array.isArray(values) ? `${values.length} values` : `${values === null ? 'null' : typeof values} instead of an array`;
  return new TypeError(
    `the load function of ${names} returned ${got} for ${indexes.length} keys: it must return one value per key, in the keys' order ` +
      '(null where there is none); nothing of this batch was cached',
  );
}

/** Adds one value read to a batch's tally. */
function tallyRead(tally: HitTally, name: string, bytes: number, absent: boolean): void {
  const entry = tally.get(name);
  if (entry) {
    entry.bytes += bytes;
    if (absent) entry.absent += 1;
  } else {
    tally.set(name, { bytes, absent: absent ? 1 : 0 });
  }
}

function nameOf<T>(spec: FetchSpec<T>, index: number): string {
  return typeof spec.name === 'string' ? spec.name : spec.name(index);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function positive(name: string, value: number): number {
  if (!(Number.isFinite(value) && value > 0)) throw new TypeError(`${name} must be a positive number, got ${String(value)}`);
  return value;
}

function nonNegative(name: string, value: number): number {
  if (!(Number.isInteger(value) && value >= 0)) throw new TypeError(`${name} must be a non-negative integer, got ${String(value)}`);
  return value;
}
