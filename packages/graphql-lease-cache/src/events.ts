import { channel, type Channel } from 'node:diagnostics_channel';
import type { BreakerState } from './breaker.js';
import type { CacheStats } from './stats.js';
import type { CacheTrace } from './trace.js';

/**
 * What the cache reports, published on `node:diagnostics_channel` (as ioredis and undici do):
 * subscribe with `diagnostics_channel.subscribe(CACHE_CHANNELS.lookup, fn)`. Nothing is built or
 * sent while a channel has no subscriber. Every event names the `cache` that published it (see
 * {@link CacheEvents.id}), so that subscribers of several caches in one process can tell them apart.
 */
export const CACHE_CHANNELS = {
  /** {@link LookupEvent}: hits and misses of one fetch, per entity type or field coordinate. */
  lookup: 'graphql-lease-cache:lookup',
  /** {@link ReadEvent}: bytes of the cached values a fetch decoded, and its hits on cached absences. */
  read: 'graphql-lease-cache:read',
  /** {@link WriteEvent}: bytes of a value encoded to be stored (fills and refreshes). */
  write: 'graphql-lease-cache:write',
  /** {@link FillEvent}: a lease holder's fill, stored or lost to a write. */
  fill: 'graphql-lease-cache:fill',
  /** {@link LeaseEvent}: a read that found another reader's lease and waited, or gave up waiting. */
  lease: 'graphql-lease-cache:lease',
  /** {@link StoreEvent}: one round trip to Redis, timed. */
  store: 'graphql-lease-cache:store',
  /** {@link ErrorEvent}: a failed cache operation (the read was served without the cache). */
  error: 'graphql-lease-cache:error',
  /** {@link BreakerEvent}: the circuit breaker changed state. */
  breaker: 'graphql-lease-cache:breaker',
  /** {@link PendingEvent}: invalidations not yet delivered to Redis. */
  pending: 'graphql-lease-cache:pending-invalidations',
  /** {@link WriteBehindEvent}: write-behind changes queued, applied, retried, dead-lettered. */
  writeBehind: 'graphql-lease-cache:write-behind',
  /** {@link FlushEvent}: one write-behind batch applied and acknowledged. */
  flush: 'graphql-lease-cache:write-behind-flush',
  /** {@link DepthEvent}: the write-behind queue's depth, as the worker read it. */
  depth: 'graphql-lease-cache:write-behind-depth',
  /** {@link FleetEvent}: the fleet protocol: acknowledged broadcasts, lapsed leases, owed and recovered invalidations. */
  fleet: 'graphql-lease-cache:fleet',
  /** {@link L1Event}: the in-process L1's hits, misses, fills, evictions and flushes, with the bytes it holds. */
  l1: 'graphql-lease-cache:l1',
  /** {@link ExpiryEvent}: values served in their grace, early refreshes, and reads that waited on the source. */
  expiry: 'graphql-lease-cache:expiry',
} as const;

interface CacheEvent {
  /** The cache that published it ({@link CacheEvents.id}). */
  cache: string;
}

/** The request a read or round trip was made for, when the caller passed one. */
interface TracedEvent extends CacheEvent {
  trace: CacheTrace | undefined;
}

export interface LookupEvent extends TracedEvent {
  /** An entity type (`User`) or a field coordinate (`Product.averageRating`). */
  name: string;
  hits: number;
  misses: number;
}
export interface ReadEvent extends CacheEvent {
  name: string;
  bytes: number;
  /** Hits on a cached "no such document" (negative caching), among the lookup's hits. */
  absentHits: number;
}
export interface WriteEvent extends CacheEvent {
  name: string;
  bytes: number;
}
export interface FillEvent extends CacheEvent {
  name: string;
  /** `lost`: the lease was revoked by a write, or a newer version was there. */
  outcome: 'stored' | 'lost';
}
export interface LeaseEvent extends CacheEvent {
  name: string;
  /** `wait`: found another reader's lease and waited; `timeout`: gave up and read the source without filling. */
  outcome: 'wait' | 'timeout';
}
export interface StoreEvent extends TracedEvent {
  /** The operation (`get`, `fill`, `invalidate`, `wb-enqueue`, …). */
  op: string;
  durationMs: number;
  ok: boolean;
}
export interface ErrorEvent extends CacheEvent {
  op: string;
  error: unknown;
}
export interface BreakerEvent extends CacheEvent {
  state: BreakerState;
}
export interface PendingEvent extends CacheEvent {
  count: number;
}
export interface WriteBehindEvent extends CacheEvent {
  /**
   * `enqueued`; `fallback` (written synchronously, the queue being unavailable); `flushed`
   * (applied and acknowledged); `write` (a document update sent, one per entity per batch);
   * `retry`; `dead-letter`.
   */
  kind: 'enqueued' | 'fallback' | 'flushed' | 'write' | 'retry' | 'dead-letter';
  /** The entity type. */
  type: string;
  count: number;
}
export interface FlushEvent extends CacheEvent {
  /** Time to apply and acknowledge the batch. */
  durationMs: number;
}
export interface DepthEvent extends CacheEvent {
  /** Changes queued and not yet acknowledged. */
  depth: number;
}

/** What the fleet protocol did (fleet/). */
export interface FleetEvent {
  cache: string;
  /**
   * `ack`: a broadcast acknowledged by every member (or their leases ran out); `lapse`: this
   * member's lease lapsed (its L1 emptied); `owe`: a write waited out an undeliverable
   * invalidation; `recover`: this member delivered invalidations others had recorded.
   */
  kind: 'ack' | 'lapse' | 'owe' | 'recover';
  /** How long it took (0 for a lapse), in ms. */
  durationMs: number;
  /** Why a lease lapsed (`expired`, `subscriber`, `owing`, `lagging`, `registered`). */
  reason?: string;
}

export interface L1Event extends CacheEvent {
  /** `hit` and `miss` (of a get), `fill` (a value held), `eviction` (dropped to stay within its bytes), `flush` (all dropped). */
  kind: 'hit' | 'miss' | 'fill' | 'eviction' | 'flush';
  count: number;
  /** Bytes the L1 holds after it. */
  bytes: number;
  /** Why a flush dropped everything (`kind` `flush` only). */
  reason?: string;
}

export interface ExpiryEvent extends TracedEvent {
  /**
   * `grace`: values (or a whole response) served past their TTL because the source could not
   * answer; `early-refresh`: a hit near its end reloaded in the background (`refresh-error`: that
   * reload failed, nothing surfaced); `source-wait`: reads that waited on the source, for their
   * own load or another reader's lease.
   */
  kind: 'grace' | 'early-refresh' | 'refresh-error' | 'source-wait';
  /** An entity type, a field coordinate, or `response`. */
  name: string;
  count: number;
}

/** Each channel's event, by the key of {@link CACHE_CHANNELS}: for typed subscribers. */
export interface CacheEventMap {
  lookup: LookupEvent;
  read: ReadEvent;
  write: WriteEvent;
  fill: FillEvent;
  lease: LeaseEvent;
  store: StoreEvent;
  error: ErrorEvent;
  breaker: BreakerEvent;
  pending: PendingEvent;
  writeBehind: WriteBehindEvent;
  flush: FlushEvent;
  depth: DepthEvent;
  fleet: FleetEvent;
  l1: L1Event;
  expiry: ExpiryEvent;
}

const channels = {
  lookup: channel(CACHE_CHANNELS.lookup),
  read: channel(CACHE_CHANNELS.read),
  write: channel(CACHE_CHANNELS.write),
  fill: channel(CACHE_CHANNELS.fill),
  lease: channel(CACHE_CHANNELS.lease),
  store: channel(CACHE_CHANNELS.store),
  error: channel(CACHE_CHANNELS.error),
  breaker: channel(CACHE_CHANNELS.breaker),
  pending: channel(CACHE_CHANNELS.pending),
  writeBehind: channel(CACHE_CHANNELS.writeBehind),
  flush: channel(CACHE_CHANNELS.flush),
  depth: channel(CACHE_CHANNELS.depth),
  fleet: channel(CACHE_CHANNELS.fleet),
  l1: channel(CACHE_CHANNELS.l1),
  expiry: channel(CACHE_CHANNELS.expiry),
} satisfies Record<keyof typeof CACHE_CHANNELS, Channel>;

let instances = 0;

/**
 * One cache's publisher: the core, the store, the queue and the worker report through it. It
 * keeps the running hit and miss counts ({@link CacheStats}) itself, so that they hold whether
 * or not anyone subscribes.
 */
export class CacheEvents {
  /** Unique in this process: `<namespace>#<n>`. */
  readonly id: string;
  readonly stats: CacheStats;

  constructor(namespace: string, stats: CacheStats) {
    instances += 1;
    this.id = `${namespace}#${instances}`;
    this.stats = stats;
  }

  lookup(name: string, hits: number, misses: number, trace?: CacheTrace): void {
    this.stats.record(name, hits, misses);
    if (channels.lookup.hasSubscribers) channels.lookup.publish({ cache: this.id, name, hits, misses, trace } satisfies LookupEvent);
  }

  read(name: string, bytes: number, absentHits: number): void {
    if (channels.read.hasSubscribers) channels.read.publish({ cache: this.id, name, bytes, absentHits } satisfies ReadEvent);
  }

  write(name: string, bytes: number): void {
    if (channels.write.hasSubscribers) channels.write.publish({ cache: this.id, name, bytes } satisfies WriteEvent);
  }

  fill(name: string, outcome: FillEvent['outcome']): void {
    if (channels.fill.hasSubscribers) channels.fill.publish({ cache: this.id, name, outcome } satisfies FillEvent);
  }

  lease(name: string, outcome: LeaseEvent['outcome']): void {
    if (channels.lease.hasSubscribers) channels.lease.publish({ cache: this.id, name, outcome } satisfies LeaseEvent);
  }

  /** Whether anyone times round trips (the store skips reading the clock otherwise). */
  get timingStore(): boolean {
    return channels.store.hasSubscribers;
  }

  store(op: string, durationMs: number, ok: boolean, trace?: CacheTrace): void {
    if (channels.store.hasSubscribers) channels.store.publish({ cache: this.id, op, durationMs, ok, trace } satisfies StoreEvent);
  }

  error(op: string, error: unknown): void {
    if (channels.error.hasSubscribers) channels.error.publish({ cache: this.id, op, error } satisfies ErrorEvent);
  }

  breaker(state: BreakerState): void {
    if (channels.breaker.hasSubscribers) channels.breaker.publish({ cache: this.id, state } satisfies BreakerEvent);
  }

  pending(count: number): void {
    if (channels.pending.hasSubscribers) channels.pending.publish({ cache: this.id, count } satisfies PendingEvent);
  }

  writeBehind(kind: WriteBehindEvent['kind'], type: string, count = 1): void {
    if (channels.writeBehind.hasSubscribers) channels.writeBehind.publish({ cache: this.id, kind, type, count } satisfies WriteBehindEvent);
  }

  flush(durationMs: number): void {
    if (channels.flush.hasSubscribers) channels.flush.publish({ cache: this.id, durationMs } satisfies FlushEvent);
  }

  depth(depth: number): void {
    if (channels.depth.hasSubscribers) channels.depth.publish({ cache: this.id, depth } satisfies DepthEvent);
  }

  fleet(kind: FleetEvent['kind'], durationMs: number, reason?: string): void {
    if (channels.fleet.hasSubscribers)
      channels.fleet.publish({ cache: this.id, kind, durationMs, ...(reason ? { reason } : {}) } satisfies FleetEvent);
  }

  l1(kind: L1Event['kind'], count: number, bytes: number, reason?: string): void {
    if (!channels.l1.hasSubscribers) return;
    channels.l1.publish({ cache: this.id, kind, count, bytes, ...(reason === undefined ? {} : { reason }) } satisfies L1Event);
  }

  expiry(kind: ExpiryEvent['kind'], name: string, count: number, trace?: CacheTrace): void {
    if (channels.expiry.hasSubscribers) channels.expiry.publish({ cache: this.id, kind, name, count, trace } satisfies ExpiryEvent);
  }
}
