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
  };
}
