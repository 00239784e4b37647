import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The write-behind metrics (queue depth, flush latency, retries, dead letters). */
export interface WriteBehindMetrics {
  enqueued: Counter<'type'>;
  /** Mutations that wrote MongoDB synchronously because the queue was unavailable. */
  fallbacks: Counter<'type'>;
  flushed: Counter<'type'>;
  /** Documents updated in MongoDB (one per entity per batch, whatever the number of changes). */
  writes: Counter<'type'>;
  retries: Counter<'type'>;
  deadLetters: Counter<'type'>;
  flushDuration: Histogram;
  queueDepth: Gauge;
}

/** Registers the write-behind metrics on `registry`, each named `<prefix>write_behind_…` (prefix default none). */
export function createWriteBehindMetrics(registry: Registry, prefix = ''): WriteBehindMetrics {
  const registers = [registry];
  const counter = (name: string, help: string) => new Counter<'type'>({ name: prefix + name, help, labelNames: ['type'], registers });
  return {
    enqueued: counter('write_behind_enqueued_total', 'Changes queued for MongoDB, by entity type.'),
    fallbacks: counter('write_behind_fallbacks_total', 'Write-behind mutations written to MongoDB synchronously (queue unavailable).'),
    flushed: counter('write_behind_flushed_total', 'Queued changes applied to MongoDB and acknowledged.'),
    writes: counter('write_behind_mongo_writes_total', 'Document updates the worker sent to MongoDB.'),
    retries: counter('write_behind_retries_total', 'Failed attempts to apply a change (it is tried again).'),
    deadLetters: counter('write_behind_dead_letters_total', 'Changes moved to the dead-letter stream.'),
    flushDuration: new Histogram({
      name: `${prefix}write_behind_flush_duration_seconds`,
      help: 'Time to apply and acknowledge one batch of queued changes.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    queueDepth: new Gauge({ name: `${prefix}write_behind_queue_depth`, help: 'Changes queued and not yet acknowledged.', registers }),
  };
}
