import type { CacheTrace } from './trace.js';
import { at } from './at.js';
import type { CacheEvents } from './events.js';
import type { KnownPending } from './known-pending.js';
import type { LeaseReply, LeaseRequest, PendingEntry } from './lease-store.js';

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
   * True keeps the values past their TTL for the core's grace (`graceMs`), to be served when the
   * load fails as the source being unavailable (`isSourceUnavailable`). Default false: a value
   * whose expiry is a boundary (a session) keeps none.
   */
  grace?: boolean;
  /**
   * The TTL of a present value of item `index`, in milliseconds, before jitter: a hit in the
   * last `earlyRefresh` part of it is reloaded in the background. Default none: no early refresh.
   */
  refreshTtlMs?(index: number): number;
  /**
   * The write-behind hash of each key (same index), read in the same round trip. Its changes,
   * which the database does not have yet, are applied to the value read by `applyPending`; what is
   * stored in the cache stays the value as loaded.
   */
  pendingKeys?: readonly string[];
  /** Returns `value` with `pending` applied (a new value: `value` may be shared). */
  applyPending?(value: T, pending: readonly PendingEntry[]): T;
  /** The request these reads are for: the events name it, and its `dependencies` collect what it read (see trace.ts). */
  trace?: CacheTrace;
}

/** A value to write through (refresh): stored unless Redis holds a newer version. */
export interface RefreshEntry<T> {
  key: string;
  value: T;
  version: number;
  /** In milliseconds, before jitter; 0 keeps the value without expiry (write-behind). */
  ttlMs: number;
  /** True keeps it past `ttlMs` for the core's grace (as {@link FetchSpec.grace}); default false. */
  grace?: boolean;
}

/** Per name, the bytes and absent values a batch read (counted once per batch). */
export type HitTally = Map<string, { bytes: number; absent: number }>;

/** How a read treats expiry: the grace and the early-refresh fraction of the core (see CacheCoreOptions). */
export interface ExpiryPolicy {
  /** In milliseconds; 0: none. */
  graceMs: number;
  /** A fraction of the TTL; 0: none. */
  earlyRefresh: number;
}

/** The get-or-lease request of item `index`, with its grace and early-refresh window under `expiry`. */
export function requestOf<T>(spec: FetchSpec<T>, index: number, expiry?: ExpiryPolicy): LeaseRequest {
  const request: LeaseRequest = { key: at(spec.keys, index, 'spec.keys') };
  const tags = spec.tags?.[index];
  if (tags && tags.length > 0) request.tags = tags;
  if (spec.pendingKeys) request.pendingKey = at(spec.pendingKeys, index, 'spec.pendingKeys');
  if (expiry && spec.grace && expiry.graceMs > 0) request.graceMs = expiry.graceMs;
  if (expiry && spec.refreshTtlMs && expiry.earlyRefresh > 0) {
    const windowMs = Math.floor(expiry.earlyRefresh * spec.refreshTtlMs(index));
    if (windowMs > 0) request.refreshWindowMs = windowMs;
  }
  return request;
}

/** The grace of `spec`'s values under `expiry`, in milliseconds (added to what a fill or refresh stores). */
export function graceOf<T>(spec: Pick<FetchSpec<T>, 'grace'>, expiry: ExpiryPolicy): number {
  return spec.grace ? expiry.graceMs : 0;
}

/**
 * Value `i` of a load (checked to hold one per key, see SourceLoads's #load): an `undefined`
 * the load returned in range counts as null ("none"), as it always has; past the end, throws.
 */
export function loadedAt<T>(values: readonly (T | null)[], i: number): T | null {
  return at(values, i, 'a loaded value') ?? null;
}

/** The error of a load that did not return one value per key (DataLoader's TypeError). */
export function loadContractError<T>(spec: FetchSpec<T>, indexes: readonly number[], values: unknown): TypeError {
  const names = [...new Set(indexes.map((index) => nameOf(spec, index)))].join(', ');
  const got = Array.isArray(values) ? `${values.length} values` : `${values === null ? 'null' : typeof values} instead of an array`;
  return new TypeError(
    `the load function of ${names} returned ${got} for ${indexes.length} keys: it must return one value per key, in the keys' order ` +
      '(null where there is none); nothing of this batch was cached',
  );
}

/** Adds one value read to a batch's tally. */
export function tallyRead(tally: HitTally, name: string, bytes: number, absent: boolean): void {
  const entry = tally.get(name);
  if (entry) {
    entry.bytes += bytes;
    if (absent) entry.absent += 1;
  } else {
    tally.set(name, { bytes, absent: absent ? 1 : 0 });
  }
}

export function nameOf<T>(spec: FetchSpec<T>, index: number): string {
  return typeof spec.name === 'string' ? spec.name : spec.name(index);
}

/** Reports the hits and misses of a fetch per name (the items of one fetch may belong to several). */
export function countLookups<T>(events: CacheEvents, spec: FetchSpec<T>, hits: readonly number[], misses: readonly number[]): void {
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
  for (const [name, count] of byName) events.lookup(name, count.hits, count.misses, spec.trace);
}

/** Remembers the write-behind snapshot each get-or-lease reply brought (see {@link KnownPending.observed}). */
export function observePending<T>(
  known: KnownPending | undefined,
  spec: FetchSpec<T>,
  indexes: readonly number[],
  replies: readonly LeaseReply[],
  askedAt: number,
): void {
  const pendingKeys = spec.pendingKeys;
  if (!known || !pendingKeys) return;
  replies.forEach((reply, i) =>
    known.observed(at(pendingKeys, at(indexes, i, 'get-or-lease: the index of a reply'), 'spec.pendingKeys'), reply.pending ?? [], askedAt),
  );
}
