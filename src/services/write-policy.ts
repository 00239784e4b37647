import { randomBytes } from 'node:crypto';
import type DataLoader from 'dataloader';
import { BreakerOpenError, type Change, type EntityCache, type Versioned, withChange, type WriteBehindQueue } from 'graphql-lease-cache';
import { ENTITY_POLICIES, type EntityType, type WritePolicy } from '../caching/policies.js';
import type { Logger } from '../logger.js';

export type { WritePolicy, WritePolicies } from '../caching/policies.js';

/**
 * What an update of `type` that wrote MongoDB itself does to the cached document under `policy`:
 * `refresh` stores the new document, `invalidate` deletes the key. Under `write-behind` the
 * update wrote synchronously (a field that is never written behind, or no queue): the type's
 * `@entity(writeBehind: {synchronous:})` in the schema (src/caching/policies.ts).
 */
export function cacheAfterWrite(type: EntityType, policy: WritePolicy): 'refresh' | 'invalidate' {
  return policy === 'write-behind' ? ENTITY_POLICIES[type].writeBehind.synchronous : policy;
}

/** One entity type's updates under its write policy, as every service applies them. */
export interface WritePolicyStrategy<T extends Versioned> {
  readonly type: EntityType;
  readonly policy: WritePolicy;
  /** Under `write-behind`: an update queues its change ({@link queueOnto}) rather than write MongoDB. */
  readonly writesBehind: boolean;
  /**
   * After an update wrote MongoDB itself (and committed): stores `doc`, the document it wrote,
   * when the policy refreshes ({@link cacheAfterWrite}), else invalidates `id`; also
   * invalidates when `doc` is null (nothing to store).
   */
  afterWrite(id: string, doc: T | null): Promise<void>;
}

/** The strategy of `type`'s updates under `policy`, over the type's entity cache. */
export function writePolicyStrategy<T extends Versioned>(
  type: EntityType,
  policy: WritePolicy,
  entities: EntityCache<T>,
): WritePolicyStrategy<T> {
  const refreshes = cacheAfterWrite(type, policy) === 'refresh';
  return {
    type,
    policy,
    writesBehind: policy === 'write-behind',
    afterWrite: (id, doc) => (refreshes && doc ? entities.refresh([doc]) : entities.invalidate([id])),
  };
}

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
   * the synchronous update must also add `done` to the document's `wbDone` ({@link markDone}), so
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
      warnSometimes(options.logger, 'full', { type, id }, 'write-behind backlog of an entity is full; writing MongoDB synchronously');
    } catch (error) {
      // Only an open breaker certainly sent nothing; a timeout or a dropped connection may
      // have reached Redis after all.
      if (!(error instanceof BreakerOpenError)) done = u;
      warnSometimes(options.logger, 'down', { err: error, type, id }, 'write-behind queue unavailable; writing MongoDB synchronously');
    }
  }
  queue.countFallback(type);
  return done === undefined ? { queued: false } : { queued: false, done };
}

/** Options of {@link queueOnto}. */
export interface QueueOntoOptions<T> extends QueueChangeOptions {
  /** The document as reads show it now (loaded through `loader`). */
  current: T;
  /** The request's loader of that type, primed with the result. */
  loader: DataLoader<string, T | null>;
}

/**
 * Queues a change of a document already loaded: when queued, the document with the change
 * applied (what reads now show, primed in the request's loader); else the {@link Queued} that
 * the synchronous write needs.
 */
export async function queueOnto<T>(options: QueueOntoOptions<T>): Promise<{ queued: true; doc: T } | Exclude<Queued, { queued: true }>> {
  const queued = await queueChange(options);
  if (!queued.queued) return queued;
  const doc = withChange(options.current, options.change);
  options.loader.clear(options.id).prime(options.id, doc);
  return { queued: true, doc };
}

/** How many change ids a document keeps in `wbDone` (the newest). */
export const WB_DONE_KEPT = 100;

/**
 * The `$push` a synchronous fallback update needs (see {@link Queued}); empty when none. Only
 * the newest {@link WB_DONE_KEPT} ids are kept: enough for any queued copy still waiting,
 * unless that many uncertain enqueues of one document happen while it waits.
 */
export function markDone(queued: Queued): { $push?: { wbDone: { $each: string[]; $slice: number } } } {
  return !queued.queued && queued.done !== undefined ? { $push: { wbDone: { $each: [queued.done], $slice: -WB_DONE_KEPT } } } : {};
}

const WARN_EVERY_MS = 10_000;
const lastWarned = new Map<string, { at: number; suppressed: number }>();

/** A warning at most every 10 s per kind (an outage would log every mutation), with how many were skipped. */
function warnSometimes(logger: Logger, kind: string, details: Record<string, unknown>, message: string): void {
  const now = Date.now();
  const last = lastWarned.get(kind);
  if (last && now - last.at < WARN_EVERY_MS) {
    last.suppressed += 1;
    return;
  }
  logger.warn({ ...details, alsoSince: last?.suppressed ?? 0 }, message);
  lastWarned.set(kind, { at: now, suppressed: 0 });
}
