import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The Prometheus metrics of one server (a registry each, so tests can run several). */
export interface Metrics {
  registry: Registry;
  /** MongoDB commands sent, by command name. */
  mongoCommands: Counter<'command'>;
  /** GraphQL operations served, by operation type and outcome (ok, error). */
  graphqlOperations: Counter<'type' | 'outcome'>;
  /** MongoDB commands per GraphQL request. */
  requestMongoCommands: Histogram;
  /** Redis round trips per GraphQL request. */
  requestRedisRoundTrips: Histogram;
  /** Automatic persisted queries not stored, by reason (`too_large`). */
  persistedQueriesNotStored: Counter<'reason'>;
  /** Executed responses the response cache did not store, by reason (`too_large`, `client_budget`). */
  responsesNotStored: Counter<'reason'>;
  /** MongoDB reads refused by the read bulkhead (SERVER_BUSY), by reason (`queue_full`, `timeout`). */
  mongoReadsRejected: Counter<'reason'>;
  /** MongoDB reads of queries running now (at most MONGODB_MAX_CONCURRENT_READS). */
  mongoReadsInFlight: Gauge;
  /** MongoDB reads of queries waiting for a slot now (at most MONGODB_MAX_QUEUED_READS). */
  mongoReadsWaiting: Gauge;
  /** Cached entities the staleness audit compared with MongoDB, by type (cache-audit.ts). */
  cacheAuditChecked: Counter<'type'>;
  /** Of those, the ones whose cached copy differed from MongoDB (stale), by type. */
  cacheAuditMismatches: Counter<'type'>;
  /** Sampled entities the audit did not compare, by type and reason (pending_invalidation, write_in_flight, not_cached, changed). */
  cacheAuditSkipped: Counter<'type' | 'reason'>;
}

/** A registry with Node's default metrics and the server's own counters. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    mongoCommands: new Counter({
      name: 'mongodb_commands_total',
      help: 'MongoDB commands sent, by command name.',
      labelNames: ['command'],
      registers: [registry],
    }),
    graphqlOperations: new Counter({
      name: 'graphql_operations_total',
      help: 'GraphQL operations served, by operation type and outcome.',
      labelNames: ['type', 'outcome'],
      registers: [registry],
    }),
    requestMongoCommands: new Histogram({
      name: 'graphql_request_mongodb_commands',
      help: 'MongoDB commands per traced GraphQL request (REQUEST_TRACE: all requests, or those that may write).',
      buckets: [0, 1, 2, 3, 4, 6, 10, 20, 50],
      registers: [registry],
    }),
    requestRedisRoundTrips: new Histogram({
      name: 'graphql_request_redis_round_trips',
      help: 'Redis round trips per GraphQL request.',
      buckets: [0, 1, 2, 3, 4, 6, 10, 20, 50],
      registers: [registry],
    }),
    persistedQueriesNotStored: new Counter({
      name: 'graphql_persisted_queries_not_stored_total',
      help: 'Automatic persisted queries not stored, by reason (too_large).',
      labelNames: ['reason'],
      registers: [registry],
    }),
    responsesNotStored: new Counter({
      name: 'graphql_responses_not_stored_total',
      help: 'Executed responses the response cache did not store, by reason (too_large, client_budget).',
      labelNames: ['reason'],
      registers: [registry],
    }),
    mongoReadsRejected: new Counter({
      name: 'mongodb_reads_rejected_total',
      help: 'MongoDB reads of queries refused with SERVER_BUSY, by reason (queue_full, timeout).',
      labelNames: ['reason'],
      registers: [registry],
    }),
    mongoReadsInFlight: new Gauge({
      name: 'mongodb_reads_in_flight',
      help: 'MongoDB reads of queries running now (at most MONGODB_MAX_CONCURRENT_READS).',
      registers: [registry],
    }),
    mongoReadsWaiting: new Gauge({
      name: 'mongodb_reads_waiting',
      help: 'MongoDB reads of queries waiting for a slot now (at most MONGODB_MAX_QUEUED_READS).',
      registers: [registry],
    }),
    ...auditCounters(registry),
  };
}

/** The entity types the staleness audit samples (cache-audit.ts): their series exist from the start, at 0. */
export const AUDITED_TYPES = ['Product', 'User'] as const;

/** The staleness audit's counters, each type's series at 0 so that an alert on an increase sees the first mismatch. */
function auditCounters(registry: Registry): Pick<Metrics, 'cacheAuditChecked' | 'cacheAuditMismatches' | 'cacheAuditSkipped'> {
  const checked = new Counter({
    name: 'cache_audit_checked_total',
    help: 'Cached entities the staleness audit compared with MongoDB (CACHE_AUDIT_PER_MINUTE), by type.',
    labelNames: ['type'],
    registers: [registry],
  });
  const mismatches = new Counter({
    name: 'cache_audit_mismatches_total',
    help: 'Compared cached entities that differed from MongoDB (a stale cached copy), by type.',
    labelNames: ['type'],
    registers: [registry],
  });
  const skipped = new Counter({
    name: 'cache_audit_skipped_total',
    help: 'Sampled cached entities not compared, by type and reason (pending_invalidation, write_in_flight, not_cached, changed).',
    labelNames: ['type', 'reason'],
    registers: [registry],
  });
  for (const type of AUDITED_TYPES) {
    checked.inc({ type }, 0);
    mismatches.inc({ type }, 0);
  }
  return { cacheAuditChecked: checked, cacheAuditMismatches: mismatches, cacheAuditSkipped: skipped };
}
