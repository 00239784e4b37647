import { randomBytes } from 'node:crypto';
import { BreakerOpenError } from '../cache/breaker.js';
import type { Change, WriteBehindQueue } from '../cache/write-behind.js';
import type { Logger } from '../logger.js';

export type { WritePolicy, WritePolicies } from '../config.js';

/** Options of {@link queueChange}. */
export interface QueueChangeOptions {
  queue: WriteBehindQueue;
  logger: Logger;
  type: string;
  id: string;
  change: Omit<Change, 'at' | 'u'>;
}

/** The outcome of {@link queueChange}. */
export type Queued =
  | { queued: true }
  /**
   * Not queued: the caller writes MongoDB synchronously, so that the mutation still succeeds
   * and nothing is lost. With `done`, the enqueue may have happened all the same (a timeout):
   * the synchronous update must also add `done` to the document's `wbDone` (`$addToSet`), so
   * that the queued copy, if any, is skipped rather than applied twice.
   */
  | { queued: false; done?: string };

/**
 * Queues a write-behind change, or says that the caller must write MongoDB itself (no Redis, a
 * Cluster, Redis unreachable, its breaker open).
 */
export async function queueChange(options: QueueChangeOptions): Promise<Queued> {
  const { queue, type, id } = options;
  let done: string | undefined;
  if (queue.available) {
    const u = randomBytes(9).toString('base64url');
    try {
      if ((await queue.enqueue(type, id, { ...options.change, at: Date.now(), u })) !== null) return { queued: true };
      options.logger.warn({ type, id }, 'write-behind backlog of this entity is full; writing MongoDB synchronously');
    } catch (error) {
      // Only an open breaker certainly sent nothing; a timeout or a dropped connection may
      // have reached Redis after all.
      if (!(error instanceof BreakerOpenError)) done = u;
      options.logger.warn({ err: error, type, id }, 'write-behind queue unavailable; writing MongoDB synchronously');
    }
  }
  queue.metrics.fallbacks.inc({ type });
  return done === undefined ? { queued: false } : { queued: false, done };
}

/** The `$addToSet` a synchronous fallback update needs (see {@link Queued}); empty when none. */
export function markDone(queued: Queued): { $addToSet?: { wbDone: string } } {
  return !queued.queued && queued.done !== undefined ? { $addToSet: { wbDone: queued.done } } : {};
}
