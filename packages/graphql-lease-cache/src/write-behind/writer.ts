import { randomBytes } from 'node:crypto';
import type DataLoader from 'dataloader';
import { BreakerOpenError } from '../breaker.js';
import type { Cache } from '../create-cache.js';
import type { EntityCache, Versioned } from '../entity-cache.js';
import { SILENT_LOGGER, type CacheLogger } from '../logger.js';
import { withChange, type Change } from './change.js';
import { ReplicaAckError, type WriteBehindQueue } from './queue.js';
import type { DirectWriteResult, EntityWriteTarget } from './target.js';

/**
 * How an entity type's updates reach the cache: `refresh` stores the new document at once,
 * `invalidate` deletes it (the next read loads it), `write-behind` queues the change in Redis
 * and returns (the worker writes your database later; reads show the change at once).
 */
export type WritePolicy = 'invalidate' | 'refresh' | 'write-behind';

/** The change an update makes: fields to set, counters to add to. */
export type EntityChange = Pick<Change, 'set' | 'inc'>;

/** Options of {@link createEntityWriter}. */
export interface EntityWriterOptions<T extends Versioned, Scope> {
  /** The cache whose entity cache of `type` and write-behind queue the writer uses. */
  cache: Pick<Cache, 'entity' | 'writeBehind'>;
  /** The entity type, e.g. `Product`. */
  type: string;
  /** Your database's side: which changes may be written behind, and the synchronous write. */
  target: EntityWriteTarget<T>;
  /** The policy of updates; a call may override it ({@link UpdateOptions.policy}). */
  policy: WritePolicy;
  /**
   * Under `write-behind`, what an update written synchronously does to the cached document (a
   * change the target refuses to take behind, or the queue unavailable); default `invalidate`.
   */
  synchronous?: 'refresh' | 'invalidate';
  /**
   * After a write whose outcome is unknown, how long the document (and what
   * {@link UpdateOptions.alsoInvalidate} names) bypasses the cache before it is invalidated
   * again, in milliseconds: past your database's deadline, by which it applied or dropped the write.
   */
  holdMs: number;
  /** The request's loader of the type: read for the current document, primed with the result. */
  loader(scope: Scope): DataLoader<string, T | null>;
  /** Runs a synchronous write of document `id` (e.g. holding a lock on it); default: runs it. */
  lock?: <R>(id: string, write: () => Promise<R>) => Promise<R>;
  /** False for a document that updates must not touch (soft-deleted); default: every document is live. */
  isLive?: (doc: T) => boolean;
  /** Where fallbacks to synchronous writes are warned of (at most one line per 10 s per cause); default silent. */
  logger?: CacheLogger;
}

/** Options of one {@link EntityWriter.update}. */
export interface UpdateOptions<T> {
  /** This call's policy instead of the writer's (a counter always written behind, say). */
  policy?: WritePolicy;
  /**
   * Awaited before a change is queued, with the document as reads show it: throws to refuse
   * what your database would refuse only when the worker writes (a unique value taken).
   */
  beforeQueue?: (current: T) => Promise<void>;
  /**
   * What else a synchronous write changes (the lists a document leaves and enters), to
   * invalidate with the document: called after the write with the document just before it and
   * after it; after a write of unknown outcome, with the document as reads showed it, `after`
   * null and `holdMs` to pass on. When given, the write is synchronous (never queued) and asks
   * the target for the document before it. Should never throw.
   */
  alsoInvalidate?: (write: { before: T | null; after: T | null; holdMs?: number }) => Promise<unknown>;
}

/** What a change could not be queued for: what the synchronous write needs to know. */
type Fallback = { queued: true } | { queued: false; doneId?: string };

/** A warning at most every 10 s per cause: an outage would log every mutation. */
const WARN_EVERY_MS = 10_000;

/**
 * The whole cached update of one entity type: queue the change or write it synchronously,
 * keep the cache exact after a write of unknown outcome, apply the policy, prime the request's
 * loader, and return what reads will show.
 */
export function createEntityWriter<T extends Versioned, Scope>(options: EntityWriterOptions<T, Scope>): EntityWriter<T, Scope> {
  return new EntityWriter(options);
}

/** See {@link createEntityWriter}. */
export class EntityWriter<T extends Versioned, Scope> {
  readonly type: string;
  readonly #entities: EntityCache<T>;
  readonly #queue: WriteBehindQueue;
  readonly #options: EntityWriterOptions<T, Scope>;
  readonly #lastWarned = new Map<string, { at: number; suppressed: number }>();

  constructor(options: EntityWriterOptions<T, Scope>) {
    if (!Number.isFinite(options.holdMs) || options.holdMs < 0) throw new TypeError(`holdMs: not a duration: ${String(options.holdMs)}`);
    this.type = options.type;
    this.#entities = options.cache.entity<T>(options.type);
    this.#queue = options.cache.writeBehind;
    this.#options = options;
  }

  /**
   * Updates document `id` by `change` and returns it as reads will show it (the request's
   * loader primed with it), or null when no live document has this id (nothing written).
   * Under `write-behind` a change the target takes is queued; one it refuses, or one the queue
   * cannot take (no Redis, its breaker open, the entity's backlog full), is written
   * synchronously. The target's and `beforeQueue`'s errors are thrown; after a write of
   * unknown outcome the document is held back from the cache and invalidated again first.
   */
  async update(scope: Scope, id: string, change: EntityChange, options: UpdateOptions<T> = {}): Promise<T | null> {
    const loader = this.#options.loader(scope);
    const policy = options.policy ?? this.#options.policy;
    let fallback: Fallback = { queued: false };
    if (policy === 'write-behind' && !options.alsoInvalidate && this.#options.target.refuse(id, { ...change, at: Date.now() }) === null) {
      const current = await this.#live(loader, id);
      if (!current || isEmpty(change)) return current;
      await options.beforeQueue?.(current);
      fallback = await this.#enqueue(id, change);
      if (fallback.queued) {
        const shown = withChange(current, change);
        loader.clear(id).prime(id, shown);
        return shown;
      }
    }
    const refreshes = (policy === 'write-behind' ? (this.#options.synchronous ?? 'invalidate') : policy) === 'refresh';
    return this.#writeNow(loader, id, change, { ...options, refreshes, doneId: fallback.queued ? undefined : fallback.doneId });
  }

  /** The synchronous write, the cache after it (or after its failure), and what reads will show. */
  async #writeNow(
    loader: DataLoader<string, T | null>,
    id: string,
    change: EntityChange,
    options: UpdateOptions<T> & { refreshes: boolean; doneId: string | undefined },
  ): Promise<T | null> {
    const also = options.alsoInvalidate;
    // Only for a write that gets no answer: what it may have changed, as reads show it now.
    const shownBefore = also ? await this.#live(loader, id) : null;
    // Read before the write: a change the worker applies in between is in the result, and its
    // `wbSeq` makes applying it again change nothing.
    const show = await this.#entities.queuedChanges(id);
    const written = await this.#uncertain(id, shownBefore, also, () => this.#write(id, change, options.doneId, also !== undefined));
    if (!written) return null;
    const { after } = written;
    await Promise.all([
      options.refreshes && after ? this.#entities.refresh([after]) : this.#entities.invalidate([id]),
      also?.({ before: written.before ?? null, after }),
    ]);
    if (!after) return null;
    const shown = show(after);
    loader.clear(id).prime(id, shown);
    return shown;
  }

  /** The target's write of `change`, under the lock hook. */
  #write(id: string, change: EntityChange, doneId: string | undefined, before: boolean): Promise<DirectWriteResult<T> | null> {
    const { target, lock } = this.#options;
    const write = () =>
      target.write({
        id,
        set: change.set ?? {},
        inc: change.inc ?? {},
        ...(doneId === undefined ? {} : { doneId }),
        ...(before ? { before } : {}),
      });
    return lock ? lock(id, write) : write();
  }

  /**
   * Runs `write`; when it fails with its outcome unknown, the document (and what `also` names)
   * bypasses the cache for `holdMs` and is invalidated again, before the error is rethrown: the
   * database may apply the write after the cached value was read.
   */
  async #uncertain<R>(id: string, before: T | null, also: UpdateOptions<T>['alsoInvalidate'], write: () => Promise<R>): Promise<R> {
    try {
      return await write();
    } catch (error) {
      if (this.#options.target.isOutcomeUnknown?.(error) ?? true) {
        const { holdMs } = this.#options;
        await Promise.all([this.#entities.invalidate([id], { holdMs }), also?.({ before, after: null, holdMs })]).catch(() => undefined);
      }
      throw error;
    }
  }

  /**
   * Queues `change`, or says why the caller writes synchronously. `doneId`: the enqueue may
   * have reached Redis all the same (a timeout, a dropped connection; only an open breaker
   * certainly sent nothing), so the synchronous write must mark the queued copy done.
   */
  async #enqueue(id: string, change: EntityChange): Promise<Fallback> {
    let doneId: string | undefined;
    if (this.#queue.available) {
      const u = randomBytes(9).toString('base64url');
      try {
        if ((await this.#queue.enqueue(this.type, id, { ...change, at: Date.now(), u })) !== null) return { queued: true };
        this.#warn('full', { type: this.type, id }, 'the write-behind backlog of an entity is full; writing the database synchronously');
      } catch (error) {
        if (!(error instanceof BreakerOpenError)) doneId = u;
        const [cause, message] =
          error instanceof ReplicaAckError
            ? ['unreplicated', 'a write-behind enqueue was not acknowledged by its replicas in time; writing the database synchronously']
            : ['down', 'the write-behind queue is unavailable; writing the database synchronously'];
        this.#warn(cause, { err: error, type: this.type, id }, message);
      }
    }
    this.#queue.countFallback(this.type);
    return doneId === undefined ? { queued: false } : { queued: false, doneId };
  }

  /** The document as reads show it, or null when none is live. */
  async #live(loader: DataLoader<string, T | null>, id: string): Promise<T | null> {
    const doc = await loader.load(id);
    return doc && (this.#options.isLive?.(doc) ?? true) ? doc : null;
  }

  #warn(cause: string, details: Record<string, unknown>, message: string): void {
    const logger = this.#options.logger ?? SILENT_LOGGER;
    const now = Date.now();
    const last = this.#lastWarned.get(cause);
    if (last && now - last.at < WARN_EVERY_MS) {
      last.suppressed += 1;
      return;
    }
    logger.warn({ ...details, alsoSince: last?.suppressed ?? 0 }, message);
    this.#lastWarned.set(cause, { at: now, suppressed: 0 });
  }
}

function isEmpty(change: EntityChange): boolean {
  return Object.keys(change.set ?? {}).length === 0 && Object.keys(change.inc ?? {}).length === 0;
}
