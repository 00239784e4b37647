import diagnostics from 'node:diagnostics_channel';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { CACHE_CHANNELS, type CacheEventMap, type CacheTrace, type WriteBehindEvent } from 'graphql-lease-cache';
import type { RequestTrace } from './trace.js';

/** The cache's Prometheus metrics. `name` is an entity type (`User`) or a field coordinate. */
export interface CacheMetrics {
  hits: Counter<'name'>;
  misses: Counter<'name'>;
  /** Hits on a cached "no such document" (negative caching); also counted in hits. */
  absentHits: Counter<'name'>;
  /** Reads that found another reader's lease and waited for it. */
  leaseWaits: Counter<'name'>;
  /** Reads that gave up waiting and read MongoDB without filling. */
  leaseTimeouts: Counter<'name'>;
  /** Fills by outcome: `stored`, or `lost` (the lease was revoked by a write, or a newer version was there). */
  fills: Counter<'name' | 'outcome'>;
  bytesRead: Counter<'name'>;
  bytesWritten: Counter<'name'>;
  /** Failed store operations (Redis errors, timeouts, breaker open, unreadable values), by operation. */
  errors: Counter<'op'>;
  /** Latency of each store round trip, in seconds. */
  redisDuration: Histogram<'op'>;
  /** 0 closed, 1 half-open, 2 open. */
  breakerState: Gauge;
  /** Invalidations that could not reach Redis yet (their keys bypass the cache meanwhile). */
  pendingInvalidations: Gauge;
  /** Time from publishing an invalidation to the fleet until every member acknowledged it (or its lease ended), in seconds. */
  fleetAckDuration: Histogram;
  /** Times this instance's fleet lease lapsed (its L1 emptied), by reason. */
  fleetLapses: Counter<'reason'>;
  /** Writes that waited out an invalidation they could not deliver, and deliveries of what other members owed. */
  fleetOwed: Counter;
  fleetRecovered: Counter;
  /** Write-behind changes by what happened to them (`enqueued`, `fallback`, `flushed`, `write`, `retry`, `dead-letter`). */
  writeBehind: Record<WriteBehindEvent['kind'], Counter<'type'>>;
  flushDuration: Histogram;
  queueDepth: Gauge;
  /** The in-process L1: values served with no round trip, gets it could not serve, entries evicted to stay within its bytes. */
  l1Hits: Counter;
  l1Misses: Counter;
  l1Evictions: Counter;
  /** Times the L1 dropped everything, by reason. */
  l1Flushes: Counter<'reason'>;
  /** Bytes the L1 holds (estimates of the decoded values). */
  l1Bytes: Gauge;
  /** Values served past their TTL (in their grace) while MongoDB could not answer, by entity type, field coordinate or `response`. */
  graceServed: Counter<'type'>;
  /** Hits near the end of their TTL reloaded in the background (early refresh), by entity type or field coordinate. */
  earlyRefreshes: Counter<'type'>;
  /** Early refreshes whose background reload failed (logged at debug, never surfaced). */
  earlyRefreshErrors: Counter<'type'>;
  /** Reads that waited on MongoDB: their own load, or another reader's lease (a miss, not an early refresh). */
  sourceWaits: Counter<'type'>;
}

/** Options of {@link observeCache}. */
export interface ObserveCacheOptions {
  /** The cache to observe: `cache.events.id` (events of other caches in this process are ignored). */
  cacheId: string;
  registry: Registry;
  /** Put before every metric name (e.g. `myapp_`); default none: `cache_hits_total`, `write_behind_…`. */
  prefix?: string;
  /** The request a read or round trip that names none was made for (a traced mutation's); default none. */
  currentTrace?: () => RequestTrace | undefined;
}

/** What {@link observeCache} returns. */
export interface CacheObserver {
  metrics: CacheMetrics;
  /** Stops listening (the metrics stay registered). */
  stop(): void;
}

/**
 * Listens to one cache's events (graphql-lease-cache publishes them on diagnostics_channel):
 * keeps its Prometheus metrics, and counts each read and Redis round trip in the request it
 * was made for (`extensions.cache`, the per-request histograms).
 */
export function observeCache(options: ObserveCacheOptions): CacheObserver {
  const metrics = createCacheMetrics(options.registry, options.prefix);
  const { cacheId } = options;
  const requestOf = (trace: CacheTrace | undefined): RequestTrace | undefined => {
    const found = trace ?? options.currentTrace?.();
    return found && isRequestTrace(found) ? found : undefined;
  };
  const handlers: { [K in keyof CacheEventMap]: (event: CacheEventMap[K]) => void } = {
    lookup: (e) => {
      if (e.hits) metrics.hits.inc({ name: e.name }, e.hits);
      if (e.misses) metrics.misses.inc({ name: e.name }, e.misses);
      const request = requestOf(e.trace);
      if (request) {
        request.cacheHits += e.hits;
        request.cacheMisses += e.misses;
      }
    },
    read: (e) => {
      metrics.bytesRead.inc({ name: e.name }, e.bytes);
      if (e.absentHits) metrics.absentHits.inc({ name: e.name }, e.absentHits);
    },
    write: (e) => metrics.bytesWritten.inc({ name: e.name }, e.bytes),
    fill: (e) => metrics.fills.inc({ name: e.name, outcome: e.outcome }),
    lease: (e) => (e.outcome === 'wait' ? metrics.leaseWaits : metrics.leaseTimeouts).inc({ name: e.name }),
    store: (e) => {
      metrics.redisDuration.observe({ op: e.op }, e.durationMs / 1_000);
      const request = requestOf(e.trace);
      if (request) request.redisRoundTrips += 1;
    },
    error: (e) => metrics.errors.inc({ op: e.op }),
    breaker: (e) => metrics.breakerState.set(e.state === 'closed' ? 0 : e.state === 'half-open' ? 1 : 2),
    pending: (e) => metrics.pendingInvalidations.set(e.count),
    writeBehind: (e) => metrics.writeBehind[e.kind].inc({ type: e.type }, e.count),
    flush: (e) => metrics.flushDuration.observe(e.durationMs / 1_000),
    depth: (e) => metrics.queueDepth.set(e.depth),
    expiry: (e) => expiryCounter(metrics, e.kind).inc({ type: e.name }, e.count),
    ...fleetAndL1Handlers(metrics),
  };
  const listeners = (Object.keys(handlers) as (keyof CacheEventMap)[]).map((channel) => {
    const name = CACHE_CHANNELS[channel];
    // Every event of the channel, of whichever cache: this one's go to its handler.
    const handle = handlers[channel] as (event: CacheEventMap[keyof CacheEventMap]) => void;
    const listener = (message: unknown): void => {
      const event = message as CacheEventMap[keyof CacheEventMap];
      if (event.cache === cacheId) handle(event);
    };
    diagnostics.subscribe(name, listener);
    return { name, listener };
  });
  return {
    metrics,
    stop: () => listeners.forEach(({ name, listener }) => diagnostics.unsubscribe(name, listener)),
  };
}

/** The app's request traces are the only traces it passes the cache; anything else (the response cache's own counts) is no request's. */
function isRequestTrace(trace: CacheTrace): trace is RequestTrace {
  return 'redisRoundTrips' in trace;
}

/** Registers the cache metrics on `registry`, each named `<prefix>cache_…` or `<prefix>write_behind_…` (prefix default none). */
export function createCacheMetrics(registry: Registry, prefix = ''): CacheMetrics {
  const registers = [registry];
  const counter = <L extends string>(name: string, help: string, labelNames: L[]) =>
    new Counter<L>({ name: prefix + name, help, labelNames, registers });
  const byType = (name: string, help: string) => counter(name, help, ['type']);
  return {
    hits: counter('cache_hits_total', 'Cache hits, by entity type or field coordinate.', ['name']),
    misses: counter('cache_misses_total', 'Cache misses, by entity type or field coordinate.', ['name']),
    absentHits: counter('cache_absent_hits_total', 'Hits on cached absences (negative caching).', ['name']),
    leaseWaits: counter('cache_lease_waits_total', "Reads that waited for another reader's fill lease.", ['name']),
    leaseTimeouts: counter('cache_lease_timeouts_total', 'Reads that stopped waiting for a lease and read MongoDB without filling.', [
      'name',
    ]),
    fills: counter('cache_fills_total', 'Cache fills by outcome (stored, lost).', ['name', 'outcome']),
    bytesRead: counter('cache_bytes_read_total', 'Bytes of cached values read.', ['name']),
    bytesWritten: counter('cache_bytes_written_total', 'Bytes of cached values written.', ['name']),
    errors: counter('cache_errors_total', 'Failed cache operations, by operation.', ['op']),
    redisDuration: new Histogram({
      name: `${prefix}cache_redis_duration_seconds`,
      help: 'Latency of cache round trips to Redis, by operation.',
      labelNames: ['op'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5],
      registers,
    }),
    breakerState: new Gauge({
      name: `${prefix}cache_breaker_state`,
      help: 'Redis circuit breaker: 0 closed, 1 half-open, 2 open.',
      registers,
    }),
    pendingInvalidations: new Gauge({
      name: `${prefix}cache_pending_invalidations`,
      help: 'Invalidations not yet delivered to Redis.',
      registers,
    }),
    writeBehind: {
      enqueued: byType('write_behind_enqueued_total', 'Changes queued for MongoDB, by entity type.'),
      fallback: byType('write_behind_fallbacks_total', 'Write-behind mutations written to MongoDB synchronously (queue unavailable).'),
      flushed: byType('write_behind_flushed_total', 'Queued changes applied to MongoDB and acknowledged.'),
      write: byType('write_behind_mongo_writes_total', 'Document updates the worker sent to MongoDB.'),
      retry: byType('write_behind_retries_total', 'Failed attempts to apply a change (it is tried again).'),
      'dead-letter': byType('write_behind_dead_letters_total', 'Changes moved to the dead-letter stream.'),
    },
    flushDuration: new Histogram({
      name: `${prefix}write_behind_flush_duration_seconds`,
      help: 'Time to apply and acknowledge one batch of queued changes.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    queueDepth: new Gauge({ name: `${prefix}write_behind_queue_depth`, help: 'Changes queued and not yet acknowledged.', registers }),
    ...createFleetAndL1Metrics(registry, prefix),
    ...createExpiryMetrics(registry, prefix),
  };
}

/** The grace's and the early refresh's metrics (see {@link createCacheMetrics}); label `type`: an entity type, a field coordinate, or `response`. */
function createExpiryMetrics(
  registry: Registry,
  prefix: string,
): Pick<CacheMetrics, 'graceServed' | 'earlyRefreshes' | 'earlyRefreshErrors' | 'sourceWaits'> {
  const counter = (name: string, help: string) => new Counter({ name: prefix + name, help, labelNames: ['type'], registers: [registry] });
  return {
    graceServed: counter('cache_grace_served_total', 'Values served past their TTL, in their grace, while MongoDB could not answer.'),
    earlyRefreshes: counter('cache_early_refresh_total', 'Hits near the end of their TTL reloaded from MongoDB in the background.'),
    earlyRefreshErrors: counter('cache_early_refresh_errors_total', 'Background reloads of early refreshes that failed.'),
    sourceWaits: counter('cache_source_waits_total', "Reads that waited on MongoDB: their own load, or another reader's lease."),
  };
}

/** The counter of an expiry event's kind. */
function expiryCounter(metrics: CacheMetrics, kind: CacheEventMap['expiry']['kind']): Counter<'type'> {
  switch (kind) {
    case 'grace':
      return metrics.graceServed;
    case 'early-refresh':
      return metrics.earlyRefreshes;
    case 'refresh-error':
      return metrics.earlyRefreshErrors;
    case 'source-wait':
      return metrics.sourceWaits;
    default: {
      const unknown: never = kind;
      throw new Error(`unknown expiry event ${String(unknown)}`);
    }
  }
}

/** The fleet's and the L1's metrics (see {@link createCacheMetrics}). */
function createFleetAndL1Metrics(
  registry: Registry,
  prefix: string,
): Pick<
  CacheMetrics,
  'fleetAckDuration' | 'fleetLapses' | 'fleetOwed' | 'fleetRecovered' | 'l1Hits' | 'l1Misses' | 'l1Evictions' | 'l1Flushes' | 'l1Bytes'
> {
  const registers = [registry];
  const counter = <L extends string>(name: string, help: string, labelNames: L[]) =>
    new Counter<L>({ name: prefix + name, help, labelNames, registers });
  return {
    fleetAckDuration: new Histogram({
      name: `${prefix}cache_fleet_ack_duration_seconds`,
      help: 'From publishing an invalidation to every instance until all acknowledged it (or their leases ended).',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 2.5],
      registers,
    }),
    fleetLapses: counter('cache_fleet_lapses_total', "This instance's fleet lease lapsed (its L1 emptied), by reason.", ['reason']),
    fleetOwed: new Counter({
      name: `${prefix}cache_fleet_owed_total`,
      help: 'Writes that waited out an invalidation they could not deliver to Redis (recorded in MongoDB).',
      registers,
    }),
    fleetRecovered: new Counter({
      name: `${prefix}cache_fleet_recovered_total`,
      help: 'Deliveries of invalidations other instances had recorded and not delivered.',
      registers,
    }),
    l1Hits: counter('cache_l1_hits_total', 'Values and responses served from the in-process L1, with no Redis round trip.', []),
    l1Misses: counter('cache_l1_misses_total', 'L1 gets it could not serve (not held, too old, or the L1 not servable).', []),
    l1Evictions: counter('cache_l1_evictions_total', 'L1 entries dropped to stay within CACHE_L1_MAX_BYTES.', []),
    l1Flushes: counter('cache_l1_flushes_total', 'Times the L1 dropped everything, by reason.', ['reason']),
    l1Bytes: new Gauge({ name: `${prefix}cache_l1_bytes`, help: 'Bytes the in-process L1 holds (estimated).', registers }),
  };
}

/** The fleet's and the L1's event handlers of {@link observeCache}. */
function fleetAndL1Handlers(metrics: CacheMetrics): {
  fleet: (event: CacheEventMap['fleet']) => void;
  l1: (event: CacheEventMap['l1']) => void;
} {
  return {
    fleet: (e) => {
      if (e.kind === 'ack') metrics.fleetAckDuration.observe(e.durationMs / 1_000);
      else if (e.kind === 'lapse') metrics.fleetLapses.inc({ reason: e.reason ?? 'unknown' });
      else if (e.kind === 'owe') metrics.fleetOwed.inc();
      else metrics.fleetRecovered.inc();
    },
    l1: (e) => {
      if (e.kind === 'hit') metrics.l1Hits.inc(e.count);
      else if (e.kind === 'miss') metrics.l1Misses.inc(e.count);
      else if (e.kind === 'eviction') metrics.l1Evictions.inc(e.count);
      else if (e.kind === 'flush') metrics.l1Flushes.inc({ reason: e.reason ?? 'unknown' }, e.count);
      metrics.l1Bytes.set(e.bytes);
    },
  };
}
