import type { Change, WriteBehindQueue } from '../cache/write-behind.js';
import type { Logger } from '../logger.js';

export type { WritePolicy, WritePolicies } from '../config.js';

/** Options of {@link queueChange}. */
export interface QueueChangeOptions {
  queue: WriteBehindQueue;
  logger: Logger;
  type: string;
  id: string;
  change: Omit<Change, 'at'>;
}

/**
 * Queues a write-behind change; false when the queue cannot take it (no Redis, a Cluster, Redis
 * unreachable or its breaker open), and the caller must then write MongoDB synchronously, so
 * that the mutation still succeeds and nothing is lost.
 */
export async function queueChange(options: QueueChangeOptions): Promise<boolean> {
  const { queue, type, id } = options;
  if (queue.available) {
    try {
      await queue.enqueue(type, id, { ...options.change, at: Date.now() });
      return true;
    } catch (error) {
      options.logger.warn({ err: error, type, id }, 'write-behind queue unavailable; writing MongoDB synchronously');
    }
  }
  queue.metrics.fallbacks.inc({ type });
  return false;
}
