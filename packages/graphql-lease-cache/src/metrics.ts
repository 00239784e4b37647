import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

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
}

/** Registers the cache metrics on `registry`, each named `<prefix>cache_…` (prefix default none). */
export function createCacheMetrics(registry: Registry, prefix = ''): CacheMetrics {
  const registers = [registry];
  const counter = <L extends string>(name: string, help: string, labelNames: L[]) =>
    new Counter<L>({ name: prefix + name, help, labelNames, registers });
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
  };
}
