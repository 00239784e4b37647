import type { CacheLogger } from './logger.js';
import type { CacheEvents } from './events.js';
import type { LeaseStore } from './lease-store.js';
import type { ResponseStore } from './response-store.js';
import { reportFailure } from './core-helpers.js';

/** How many keys and tags one delivery call carries (a large backlog goes in several). */
const DELIVERY_CHUNK = 500;

/** Options of {@link PendingInvalidations}. */
export interface PendingInvalidationsOptions {
  /** Null: no Redis; nothing is ever delivered. */
  store: LeaseStore | null;
  /** The responses voided along with each delivery, if any. */
  responses: ResponseStore | undefined;
  events: CacheEvents;
  logger: CacheLogger;
  /** How often undelivered invalidations are retried, in milliseconds. */
  retryIntervalMs: number;
  /** After each delivery reached Redis, tells the fleet's other members (see Fleet.broadcast); rejects on failure. Default none. */
  broadcast?(dependencies: readonly string[]): Promise<void>;
  /** Told when nothing is left to deliver after a delivery run (see Fleet.settled). Default none. */
  drained?(): void;
}

/**
 * The invalidations the core could not deliver (or must deliver again after a hold): until
 * they are delivered, the keys and tags they name bypass the cache in this process, so no reader
 * here is served what a returned mutation replaced. Retried on a timer, and on demand.
 */
export class PendingInvalidations {
  readonly #store: LeaseStore | null;
  readonly #responses: ResponseStore | undefined;
  readonly #events: CacheEvents;
  readonly #logger: CacheLogger;
  readonly #retryIntervalMs: number;
  readonly #broadcast: ((dependencies: readonly string[]) => Promise<void>) | undefined;
  readonly #drained: (() => void) | undefined;
  /** Undelivered invalidations: key -> generation (bumped each time it is added again). */
  readonly #keys = new Map<string, number>();
  /** Undelivered invalidations: tag -> generation (bumped each time it is added again). */
  readonly #tags = new Map<string, number>();
  /** Pending keys (`k:<key>`) and tags (`t:<tag>`) not to deliver before then (ms since the epoch). */
  readonly #heldUntil = new Map<string, number>();
  #generation = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #delivering: Promise<void> | undefined;

  constructor(options: PendingInvalidationsOptions) {
    this.#store = options.store;
    this.#responses = options.responses;
    this.#events = options.events;
    this.#logger = options.logger;
    this.#retryIntervalMs = options.retryIntervalMs;
    this.#broadcast = options.broadcast;
    this.#drained = options.drained;
  }

  /** How many keys and tags wait for an undelivered invalidation. */
  get size(): number {
    return this.#keys.size + this.#tags.size;
  }

  /** True when `key`, or one of its `tags`, waits for an undelivered invalidation: it must not be read from the cache. */
  bypasses(key: string, tags: readonly string[] | undefined): boolean {
    if (this.#keys.size === 0 && this.#tags.size === 0) return false;
    return this.#keys.has(key) || (tags ?? []).some((tag) => this.#tags.has(tag));
  }

  /** Keeps keys and tags pending (bypassed here, delivered by the retries), not before `heldUntil` (ms since the epoch; 0: at once). */
  add(keys: readonly string[], tags: readonly string[], heldUntil = 0): void {
    this.#generation += 1;
    const hold = (name: string) => {
      if (heldUntil > (this.#heldUntil.get(name) ?? 0)) this.#heldUntil.set(name, heldUntil);
    };
    for (const key of keys) {
      this.#keys.set(key, this.#generation);
      hold(`k:${key}`);
    }
    for (const tag of tags) {
      this.#tags.set(tag, this.#generation);
      hold(`t:${tag}`);
    }
    this.#events.pending(this.size);
    this.#logger.warn(
      { keys: keys.length, tags: tags.length, heldMs: heldUntil ? heldUntil - Date.now() : 0 },
      heldUntil
        ? 'cache keys held after a write of unknown outcome; bypassing them, and invalidating again later'
        : 'cache invalidation not delivered; retrying, and bypassing those keys meanwhile',
    );
    this.#scheduleRetry();
  }

  /** Tries to deliver pending invalidations now (also runs on a timer and when Redis reconnects). */
  async deliver(): Promise<void> {
    if (this.#delivering) return this.#delivering;
    const run = this.#deliver();
    this.#delivering = run;
    // Cleared when this run ends, never before it is recorded: a run with nothing to deliver
    // finishes without awaiting, and clearing inside it would leave its settled promise here,
    // answering every later call at once and never delivering again.
    return run.finally(() => {
      if (this.#delivering === run) this.#delivering = undefined;
      this.#scheduleRetry();
    });
  }

  /** Stops the retry timer (pending invalidations are logged, not delivered). */
  close(): void {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    if (this.size > 0) {
      this.#logger.warn({ pending: this.size }, 'closing with undelivered cache invalidations; their keys expire by TTL');
    }
  }

  /** One delivery run (never throws). */
  async #deliver(): Promise<void> {
    try {
      while (this.#store && this.size > 0) {
        // Held ones (see CacheCore.invalidate's holdMs) wait for their time.
        const now = Date.now();
        const keys = [...this.#keys].filter(([key]) => (this.#heldUntil.get(`k:${key}`) ?? 0) <= now).slice(0, DELIVERY_CHUNK);
        const tags = [...this.#tags].filter(([tag]) => (this.#heldUntil.get(`t:${tag}`) ?? 0) <= now).slice(0, DELIVERY_CHUNK);
        if (keys.length === 0 && tags.length === 0) break;
        await this.#store.invalidate(
          keys.map(([key]) => key),
          tags.map(([tag]) => tag),
        );
        const dependencies = [...keys.map(([key]) => key), ...tags.map(([tag]) => tag)];
        await this.#responses?.invalidate(dependencies);
        await this.#broadcast?.(dependencies);
        // Only what this call delivered: an entry added again meanwhile (a newer generation)
        // belongs to a later write whose invalidation may have run before this one.
        for (const [key, generation] of keys) {
          if (this.#keys.get(key) !== generation) continue;
          this.#keys.delete(key);
          this.#heldUntil.delete(`k:${key}`);
        }
        for (const [tag, generation] of tags) {
          if (this.#tags.get(tag) !== generation) continue;
          this.#tags.delete(tag);
          this.#heldUntil.delete(`t:${tag}`);
        }
        this.#logger.info({ keys: keys.length, tags: tags.length }, 'delivered pending cache invalidations');
      }
      if (this.size === 0) this.#drained?.();
    } catch (error) {
      reportFailure(this.#events, this.#logger, 'invalidate', error);
    } finally {
      this.#events.pending(this.size);
    }
  }

  #scheduleRetry(): void {
    if (this.#retryTimer || this.size === 0) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      void this.deliver();
    }, this.#retryIntervalMs);
    this.#retryTimer.unref();
  }
}
