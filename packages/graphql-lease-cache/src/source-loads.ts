import type { CacheLogger } from './logger.js';
import { at } from './at.js';
import { ABSENT, decodedSizeEstimate, type Codec } from './codec.js';
import type { LocalCopies } from './local-copies.js';
import type { CacheEvents } from './events.js';
import type { LeaseStore, VersionedValue } from './lease-store.js';
import { loadContractError, loadedAt, nameOf, type FetchSpec } from './fetch-spec.js';
import { reportFailure } from './core-helpers.js';

/** A load of this process that holds the lease `token` on a key: readers that meet that lease share its value. */
export interface InFlight {
  token: string;
  value: Promise<unknown>;
}

/** Told of each value a fill stored: the item's index, the value (`ABSENT` for none), its size estimate in bytes and its TTL in milliseconds. */
export type OnStored = (index: number, value: unknown, bytes: number, ttlMs: number) => void;

/** Options of {@link SourceLoads}. */
export interface SourceLoadsOptions {
  /** Null: no Redis; loads are never filled. */
  store: LeaseStore | null;
  codec: Codec;
  events: CacheEvents;
  logger: CacheLogger;
  localCopies: LocalCopies | undefined;
  /** `ttlMs` ± the jitter (CacheCore.jitter). */
  jitter(ttlMs: number): number;
  /** Kept past the TTL by values whose spec asks for grace (`FetchSpec.grace`), in milliseconds; default 0. */
  graceMs?: number;
}

/**
 * The reads from the source of truth of the core's fetches: each held to the load contract, and
 * the leased ones filled into Redis while their lease stands. A leased load is registered by key
 * while it runs, so that other readers of this process that meet its lease share it (single
 * flight) instead of waiting for the fill.
 */
export class SourceLoads {
  readonly #store: LeaseStore | null;
  readonly #codec: Codec;
  readonly #events: CacheEvents;
  readonly #logger: CacheLogger;
  readonly #local: LocalCopies | undefined;
  readonly #jitter: (ttlMs: number) => number;
  readonly #graceMs: number;
  readonly #inFlight = new Map<string, InFlight>();

  constructor(options: SourceLoadsOptions) {
    this.#store = options.store;
    this.#codec = options.codec;
    this.#events = options.events;
    this.#logger = options.logger;
    this.#local = options.localCopies;
    this.#jitter = options.jitter;
    this.#graceMs = options.graceMs ?? 0;
  }

  /** The leased load of `key` running in this process, if any. */
  inFlight(key: string): InFlight | undefined {
    return this.#inFlight.get(key);
  }

  /** Stops sharing the loads of `keys` (they were written or invalidated: a later reader must not join a load from before). */
  forget(keys: readonly string[]): void {
    for (const key of keys) this.#inFlight.delete(key);
  }

  /** Loads the leased items (once, shared with joiners in this process) and fills them; `onStored` is told of each one stored. */
  async loadAndFill<T>(
    spec: FetchSpec<T>,
    indexes: readonly number[],
    token: string,
    out: (T | null)[],
    onStored?: OnStored,
  ): Promise<void> {
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
      await this.#fill(spec, { token, indexes, values, onStored });
    } finally {
      for (const index of indexes) {
        const key = at(spec.keys, index, 'spec.keys');
        if (this.#inFlight.get(key)?.token === token) this.#inFlight.delete(key);
      }
    }
  }

  /** Reads items from the source without filling them. */
  async loadInto<T>(spec: FetchSpec<T>, indexes: readonly number[], out: (T | null)[]): Promise<void> {
    const values = await this.#load(spec, indexes);
    indexes.forEach((index, i) => {
      out[index] = loadedAt(values, i);
    });
  }

  async #fill<T>(
    spec: FetchSpec<T>,
    fill: { token: string; indexes: readonly number[]; values: readonly (T | null)[]; onStored: OnStored | undefined },
  ): Promise<void> {
    const { token, indexes, values, onStored } = fill;
    const store = this.#store;
    if (!store) return;
    const graceMs = spec.grace ? this.#graceMs : 0;
    const ttls: number[] = [];
    try {
      const entries: VersionedValue[] = indexes.map((index, i) => {
        const value = loadedAt(values, i);
        const payload = this.#codec.encode(value === null ? ABSENT : value);
        this.#events.write(nameOf(spec, index), payload.length);
        const tags = spec.tags?.[index];
        const ttlMs = this.#jitter(spec.ttlMs(value, index));
        ttls.push(ttlMs);
        return {
          key: at(spec.keys, index, 'spec.keys'),
          version: value === null ? 0 : spec.versionOf(value),
          payload,
          // Stored past its TTL for the grace; its logical life (what L1 may hold it for) is the TTL.
          ttlMs: ttlMs + graceMs,
          ...(tags && tags.length > 0 ? { tags } : {}),
        };
      });
      const stored = await store.setIfLeased(token, entries, spec.trace);
      stored.forEach((ok, i) => {
        const index = at(indexes, i, 'fill: the index of a reply');
        this.#events.fill(nameOf(spec, index), ok ? 'stored' : 'lost');
        if (!ok) return;
        const entry = at(entries, i, 'fill: the entry of a reply');
        const value = loadedAt(values, i) ?? ABSENT;
        const bytes = decodedSizeEstimate(entry.payload);
        // The lease token is the stored value's etag.
        this.#local?.set(entry.key, token, value, bytes);
        onStored?.(index, value, bytes, at(ttls, i, 'fill: a TTL'));
      });
    } catch (error) {
      reportFailure(this.#events, this.#logger, 'fill', error);
    }
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
}
