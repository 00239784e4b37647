import type { CacheEvents } from './events.js';
import { deepFreeze } from './freeze.js';
import type { PendingEntry } from './lease-store.js';

/** Whether the L1 may serve now: the fleet protocol says so (every invalidation of the fleet reaches this process in time). */
export interface L1Gate {
  /** True when a value held in L1 may be served without asking Redis. Called on every {@link L1Cache.get}. */
  l1Servable(): boolean;
}

/** The gate of an L1 without a fleet protocol: never servable, so that it never serves what another process changed. */
export const NEVER_SERVABLE: L1Gate = Object.freeze({ l1Servable: () => false });

/** Options of {@link L1Cache}. */
export interface L1CacheOptions {
  /** The most bytes of values held (an estimate: their stored payloads' sizes); the least recently used go first. Required, > 0. */
  maxBytes: number;
  /** How long an entry may be served, in milliseconds, at most (less when its own TTL is shorter); default 60000. */
  maxAgeMs?: number;
  /** Whether the L1 may serve at all; default {@link NEVER_SERVABLE} (it holds values, and never serves them). */
  gate?: L1Gate;
  /** The response-store bucket of a dependency: entries filled with `buckets` are dropped by the dependencies of those buckets. Default: none. */
  bucketOf?(dependency: string): number;
  /** Deep-freeze every value held (plain objects and arrays), so that a mutation of a shared value throws; default false. */
  freeze?: boolean;
  /** Where hits, misses, evictions and flushes are reported (the `l1` channel); default: nowhere. */
  events?: CacheEvents;
  /** The most invalidated dependencies and buckets remembered to refuse racing fills; past it, all are forgotten and the floor raised. Default 100000. */
  maxRecorded?: number;
}

/** What {@link L1Cache.set} is told of a value besides the value. */
export interface L1SetOptions {
  /** {@link L1Cache.generation} read before the Redis call that brought the value was sent. */
  startedAt: number;
  /** The size of the value, in bytes (an estimate). */
  bytes: number;
  /** What the value depends on besides its key (tags; an invalidation of one drops it); default none. */
  dependencies?: readonly string[];
  /** The response-store buckets it depends on (whole responses; see `bucketOf`); default none. */
  buckets?: readonly number[];
  /** The value's own remaining TTL, in milliseconds, when known: caps `maxAgeMs`. */
  ttlMs?: number;
  /** The write-behind changes queued when the value was read (applied to it on each hit, as to a Redis hit). */
  pending?: readonly PendingEntry[];
}

/** A value held in L1 (shared: never mutate it). */
export interface L1Entry {
  readonly key: string;
  readonly value: unknown;
  readonly bytes: number;
  readonly dependencies: readonly string[];
  readonly buckets: readonly number[];
  /** When it stops being served, in ms since the epoch. */
  readonly expiresAt: number;
  readonly pending: readonly PendingEntry[] | undefined;
}

/** Running counts of an {@link L1Cache} since it was made. */
export interface L1Stats {
  hits: number;
  misses: number;
  /** Entries dropped to stay within `maxBytes`. */
  evictions: number;
  /** Flushes by reason. */
  flushes: Record<string, number>;
  /** Bytes held now. */
  bytes: number;
  /** Entries held now. */
  entries: number;
}

/**
 * An in-process cache of decoded values served with no Redis round trip, in front of the lease
 * protocol: bounded by bytes (least recently used first out), each entry served for at most
 * `maxAgeMs`, and only while its gate says the fleet's invalidations reach this process.
 *
 * Why a fill cannot outlive the invalidation it raced. Every invalidation bumps a generation
 * counter and records, per dependency (and per response bucket), the generation of its last
 * invalidation. A reader reads the generation before it sends the Redis call that brings a
 * value, and a set is refused when the key, one of its dependencies or buckets was invalidated
 * at a later generation, or the cache was flushed since: the value may be older than that
 * invalidation. The record is bounded: when full it is cleared and a floor raised to the
 * current generation, below which every set is refused.
 *
 * An entity entry `K` is also dropped (and its fills refused) by a dependency `K#<field>` (the
 * field changes of write-behind), and entries filled with buckets by every dependency of those buckets.
 */
export class L1Cache {
  readonly #maxBytes: number;
  readonly #maxAgeMs: number;
  readonly #gate: L1Gate;
  readonly #bucketOf: ((dependency: string) => number) | undefined;
  readonly #freeze: boolean;
  readonly #events: CacheEvents | undefined;
  readonly #maxRecorded: number;
  /** In use order: the first is the least recently used. */
  readonly #entries = new Map<string, L1Entry>();
  /** Dependency (keys included) -> the keys of the entries that depend on it. */
  readonly #byDependency = new Map<string, Set<string>>();
  readonly #byBucket = new Map<number, Set<string>>();
  /** Dependency -> generation of its last invalidation. */
  readonly #invalidatedAt = new Map<string, number>();
  readonly #bucketInvalidatedAt = new Map<number, number>();
  #generation = 0;
  #floor = 0;
  #bytes = 0;
  readonly #stats = { hits: 0, misses: 0, evictions: 0, flushes: {} as Record<string, number> };

  constructor(options: L1CacheOptions) {
    this.#maxBytes = positiveInteger('maxBytes', options.maxBytes);
    this.#maxAgeMs = positiveInteger('maxAgeMs', options.maxAgeMs ?? 60_000);
    this.#maxRecorded = positiveInteger('maxRecorded', options.maxRecorded ?? 100_000);
    this.#gate = options.gate ?? NEVER_SERVABLE;
    this.#bucketOf = options.bucketOf;
    this.#freeze = options.freeze ?? false;
    this.#events = options.events;
  }

  /** The invalidation counter: read it before sending the Redis call whose value is then {@link set}. */
  get generation(): number {
    return this.#generation;
  }

  /** Bytes held now (the estimates given to {@link set}). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Entries held now. */
  get size(): number {
    return this.#entries.size;
  }

  /** Whether the gate lets the L1 serve now. */
  get servable(): boolean {
    return this.#gate.l1Servable();
  }

  /** The running counts (a copy). */
  stats(): L1Stats {
    const { hits, misses, evictions, flushes } = this.#stats;
    return { hits, misses, evictions, flushes: { ...flushes }, bytes: this.#bytes, entries: this.#entries.size };
  }

  /** The entry of `key` when it may be served now (a hit, made the most recently used); undefined (a miss) when absent, too old, or the gate is closed. */
  get(key: string): L1Entry | undefined {
    const entry = this.#gate.l1Servable() ? this.#entries.get(key) : undefined;
    if (entry && entry.expiresAt > Date.now()) {
      this.#entries.delete(key);
      this.#entries.set(key, entry);
      this.#stats.hits += 1;
      this.#events?.l1('hit', 1, this.#bytes);
      return entry;
    }
    if (entry) this.#drop(key);
    this.#stats.misses += 1;
    this.#events?.l1('miss', 1, this.#bytes);
    return undefined;
  }

  /** Counts `count` gets not made because the gate is closed (a batch's, at once) as misses. */
  missed(count: number): void {
    if (count <= 0) return;
    this.#stats.misses += count;
    this.#events?.l1('miss', count, this.#bytes);
  }

  /**
   * Holds `value` as `key`'s, unless something it depends on was invalidated (or the cache
   * flushed) after `options.startedAt`, it is larger than `maxBytes`, or the gate is closed: then false.
   */
  set(key: string, value: unknown, options: L1SetOptions): boolean {
    const dependencies = options.dependencies ?? [];
    const buckets = options.buckets ?? [];
    // Not held while the L1 may not serve: what it missed meanwhile could not be told apart later.
    if (options.bytes > this.#maxBytes || !this.#gate.l1Servable() || this.#raced(key, dependencies, buckets, options.startedAt))
      return false;
    if (this.#freeze) {
      deepFreeze(value);
      if (options.pending) deepFreeze(options.pending);
    }
    this.#drop(key);
    const maxAgeMs = options.ttlMs === undefined ? this.#maxAgeMs : Math.min(this.#maxAgeMs, options.ttlMs);
    const entry: L1Entry = {
      key,
      value,
      bytes: options.bytes,
      dependencies,
      buckets,
      expiresAt: Date.now() + maxAgeMs,
      pending: options.pending,
    };
    this.#entries.set(key, entry);
    this.#bytes += entry.bytes;
    indexAdd(this.#byDependency, key, key);
    for (const dependency of dependencies) indexAdd(this.#byDependency, dependency, key);
    for (const bucket of buckets) indexAdd(this.#byBucket, bucket, key);
    this.#evict();
    this.#events?.l1('fill', 1, this.#bytes);
    return true;
  }

  /**
   * Drops every entry keyed by, or depending on, one of `dependencies` (and the entity of a
   * `K#<field>`, and the entries in their response buckets), and refuses the fills of them
   * that began before. Synchronous.
   */
  invalidate(dependencies: readonly string[]): void {
    if (dependencies.length === 0) return;
    this.#generation += 1;
    const generation = this.#generation;
    for (const dependency of dependencies) {
      this.#invalidateDependency(dependency, generation);
      const hash = dependency.lastIndexOf('#');
      if (hash > 0) this.#invalidateDependency(dependency.slice(0, hash), generation);
      if (this.#bucketOf) {
        const bucket = this.#bucketOf(dependency);
        this.#bucketInvalidatedAt.set(bucket, generation);
        for (const key of [...(this.#byBucket.get(bucket) ?? [])]) this.#drop(key);
      }
    }
    if (this.#invalidatedAt.size + this.#bucketInvalidatedAt.size > this.#maxRecorded) {
      // Forgotten: every fill that began before now is refused instead.
      this.#invalidatedAt.clear();
      this.#bucketInvalidatedAt.clear();
      this.#floor = this.#generation;
    }
  }

  /** Drops everything, and refuses every fill that began before (counted by `reason`, e.g. `gate`, `reconnect`). */
  flush(reason: string): void {
    this.#generation += 1;
    this.#floor = this.#generation;
    this.#entries.clear();
    this.#byDependency.clear();
    this.#byBucket.clear();
    this.#invalidatedAt.clear();
    this.#bucketInvalidatedAt.clear();
    this.#bytes = 0;
    this.#stats.flushes[reason] = (this.#stats.flushes[reason] ?? 0) + 1;
    this.#events?.l1('flush', 1, 0, reason);
  }

  #raced(key: string, dependencies: readonly string[], buckets: readonly number[], startedAt: number): boolean {
    if (startedAt < this.#floor) return true;
    if ((this.#invalidatedAt.get(key) ?? 0) > startedAt) return true;
    for (const dependency of dependencies) if ((this.#invalidatedAt.get(dependency) ?? 0) > startedAt) return true;
    for (const bucket of buckets) if ((this.#bucketInvalidatedAt.get(bucket) ?? 0) > startedAt) return true;
    return false;
  }

  #invalidateDependency(dependency: string, generation: number): void {
    this.#invalidatedAt.set(dependency, generation);
    const keys = this.#byDependency.get(dependency);
    if (keys) for (const key of [...keys]) this.#drop(key);
  }

  /** Drops the least recently used entries until the bytes held fit `maxBytes`. */
  #evict(): void {
    let evicted = 0;
    for (const key of this.#entries.keys()) {
      if (this.#bytes <= this.#maxBytes) break;
      this.#drop(key);
      evicted += 1;
    }
    if (evicted === 0) return;
    this.#stats.evictions += evicted;
    this.#events?.l1('eviction', evicted, this.#bytes);
  }

  #drop(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    this.#entries.delete(key);
    this.#bytes -= entry.bytes;
    indexDelete(this.#byDependency, key, key);
    for (const dependency of entry.dependencies) indexDelete(this.#byDependency, dependency, key);
    for (const bucket of entry.buckets) indexDelete(this.#byBucket, bucket, key);
  }
}

function indexAdd<K>(index: Map<K, Set<string>>, at: K, key: string): void {
  const keys = index.get(at);
  if (keys) keys.add(key);
  else index.set(at, new Set([key]));
}

function indexDelete<K>(index: Map<K, Set<string>>, at: K, key: string): void {
  const keys = index.get(at);
  if (!keys) return;
  keys.delete(key);
  if (keys.size === 0) index.delete(at);
}

function positiveInteger(name: string, value: number): number {
  if (!(Number.isInteger(value) && value > 0)) throw new TypeError(`${name} must be a positive integer, got ${String(value)}`);
  return value;
}
