import type { RedisClient } from 'graphql-lease-cache';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { surrogateKey } from './surrogate-keys.js';

/** Where purges go (PURGE_ADAPTER and its URL). */
export type PurgeTarget = NonNullable<Config['sharedCache']['purge']>;

/** Options of {@link SurrogatePurger}. */
export interface SurrogatePurgerOptions {
  target: PurgeTarget;
  /** Purge each key once more this many milliseconds after it was invalidated; 0 for never (PURGE_REPEAT_MS). */
  repeatMs: number;
  /** Where `http_cache_purges_total` and `http_cache_purges_pending` are registered. */
  registry: Registry;
  logger: Logger;
  /**
   * Where undelivered keys are also kept (a Redis set), so that a server that stops before
   * delivering them leaves them to the next one to start; null: in this process only.
   */
  durable: { redis: RedisClient; key: string } | null;
}

/** Keys a server takes over at start from the Redis set of undelivered ones. */
const RECOVERED_MAX = 100_000;

/**
 * Keys per purge request, by adapter: an `xkey-purge` header of 400 keys is about 3.6 KB, under
 * Varnish's 8 KiB header limit; Fastly takes at most 256 surrogate keys per purge, and
 * Cloudflare 100 tags per purge_cache call (its limit on every plan since 2025; 30 before).
 */
const KEYS_PER_PURGE: Record<PurgeTarget['adapter'], number> = { varnish: 400, webhook: 400, fastly: 256, cloudflare: 100 };
/** The first retry of a failed purge, in milliseconds; doubled on each failure up to {@link MAX_BACKOFF_MS}. */
const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 30_000;
/** How long one purge request may take, in milliseconds (then it failed, and is retried). */
const PURGE_TIMEOUT_MS = 5_000;

/**
 * Purges a shared HTTP cache (Varnish, Fastly, Cloudflare, or a webhook) of the surrogate keys of
 * every invalidation (createCache's `onResponsesInvalidated`), so that a response the cache
 * keeps is removed once something it read changed.
 *
 * Delivery: keys wait in this process until purged; a failed purge is retried with exponential
 * backoff (100 ms doubling to 30 s) and counted (`http_cache_purges_total{outcome}`). While keys
 * wait (`http_cache_purges_pending`), the shared cache may serve their old responses. Each key is
 * purged once more PURGE_REPEAT_MS later, for a response in flight to the shared cache during
 * the first purge. Durable with `durable`: undelivered keys are also in a Redis set (added
 * when queued, removed once purged), which each server takes over at start; a purge is then
 * lost only when the process ends between the invalidation and that set's SADD, or when Redis
 * loses the set (their responses then live until their max-age).
 */
export class SurrogatePurger {
  readonly #options: SurrogatePurgerOptions;
  /**
   * Keys to purge now (or at the next retry), each with the generation of its last queuing: a key
   * queued again while its purge is in flight stays queued (that purge may have preceded the
   * write that queued it again).
   */
  readonly #pending = new Map<string, number>();
  #generation = 0;
  /** Keys purged once, to purge again at their time (ms since the epoch). */
  readonly #repeats = new Map<string, number>();
  readonly #outcomes: Counter<'outcome'>;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  #nextRunAt = Infinity;
  #running = false;
  #closed = false;

  constructor(options: SurrogatePurgerOptions) {
    this.#options = options;
    this.#outcomes = new Counter({
      name: 'http_cache_purges_total',
      help: 'Purge requests sent to the shared HTTP cache (PURGE_ADAPTER), by outcome (ok, failed: retried with backoff).',
      labelNames: ['outcome'],
      registers: [options.registry],
    });
    const pending = this.#pending;
    new Gauge({
      name: 'http_cache_purges_pending',
      help: 'Surrogate keys invalidated but not yet purged from the shared HTTP cache: their old responses may be served there meanwhile.',
      registers: [options.registry],
      collect() {
        this.set(pending.size);
      },
    });
  }

  /** How many keys wait for their first purge. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Queues the purge of these dependencies' surrogate keys (never throws; delivered in the background). */
  add(dependencies: readonly string[]): void {
    if (this.#closed || dependencies.length === 0) return;
    const repeatAt = Date.now() + this.#options.repeatMs;
    for (const dependency of dependencies) {
      const key = surrogateKey(dependency);
      this.#pending.set(key, ++this.#generation);
      if (this.#options.repeatMs > 0) this.#repeats.set(key, repeatAt);
    }
    this.#persist('sadd', [...new Set(dependencies.map(surrogateKey))]);
    this.#schedule(this.#failures > 0 ? this.#backoffMs() : 0);
  }

  /** Takes over the undelivered keys a stopped server left in the durable set (never throws). */
  async recover(): Promise<number> {
    const durable = this.#options.durable;
    if (!durable) return 0;
    try {
      const keys = (await durable.redis.srandmember(durable.key, RECOVERED_MAX)) as string[];
      for (const key of keys) if (!this.#pending.has(key)) this.#pending.set(key, ++this.#generation);
      if (keys.length > 0) {
        this.#options.logger.info({ keys: keys.length }, 'purging the shared-cache keys a stopped server left undelivered');
        this.#schedule(0);
      }
      return keys.length;
    } catch (error) {
      this.#options.logger.warn({ err: error }, 'could not read the undelivered shared-cache purges');
      return 0;
    }
  }

  /** Adds keys to, or removes them from, the durable set, in the background. */
  #persist(command: 'sadd' | 'srem', keys: readonly string[]): void {
    const durable = this.#options.durable;
    if (!durable || keys.length === 0) return;
    durable.redis[command](durable.key, ...keys).catch((error: unknown) => {
      this.#options.logger.warn({ err: error, command }, 'the durable set of shared-cache purges could not be updated');
    });
  }

  /** Stops retrying; keys still waiting are logged (their responses live until their max-age). */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    if (this.#pending.size > 0) this.#options.logger.warn({ pending: this.#pending.size }, 'closing with shared-cache purges undelivered');
  }

  #backoffMs(): number {
    return Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (this.#failures - 1));
  }

  /** Runs delivery in `delayMs`, unless a run is due sooner already. */
  #schedule(delayMs: number): void {
    if (this.#closed || this.#running) return;
    const at = Date.now() + delayMs;
    if (at >= this.#nextRunAt) return;
    clearTimeout(this.#timer);
    this.#nextRunAt = at;
    this.#timer = setTimeout(() => void this.#run(), delayMs);
    this.#timer.unref();
  }

  /** One delivery run: every key due, in batches; then the next run is scheduled (never throws). */
  async #run(): Promise<void> {
    this.#nextRunAt = Infinity;
    this.#running = true;
    try {
      const now = Date.now();
      for (const [key, at] of this.#repeats) {
        if (at > now || this.#pending.has(key)) continue;
        this.#repeats.delete(key);
        this.#pending.set(key, ++this.#generation);
      }
      while (this.#pending.size > 0 && !this.#closed) {
        const batch = [...this.#pending].slice(0, KEYS_PER_PURGE[this.#options.target.adapter]);
        await this.#send(batch.map(([key]) => key));
        const delivered = batch.filter(([key, generation]) => this.#pending.get(key) === generation).map(([key]) => key);
        for (const key of delivered) this.#pending.delete(key);
        this.#persist('srem', delivered);
        this.#outcomes.inc({ outcome: 'ok' });
        this.#failures = 0;
      }
    } catch (error) {
      this.#failures += 1;
      this.#outcomes.inc({ outcome: 'failed' });
      this.#options.logger.warn(
        { err: error, pending: this.#pending.size, failures: this.#failures },
        'shared-cache purge failed; retrying',
      );
    } finally {
      this.#running = false;
    }
    if (this.#pending.size > 0) return this.#schedule(this.#failures > 0 ? this.#backoffMs() : 0);
    const nextRepeat = Math.min(...this.#repeats.values());
    if (Number.isFinite(nextRepeat)) this.#schedule(Math.max(0, nextRepeat - Date.now()));
  }

  /** One purge request; throws unless the shared cache (or the webhook) accepted it. */
  async #send(keys: readonly string[]): Promise<void> {
    const { target } = this.#options;
    const signal = AbortSignal.timeout(PURGE_TIMEOUT_MS);
    let response: Response;
    switch (target.adapter) {
      case 'varnish':
        response = await fetch(target.url, { method: 'PURGE', headers: { 'xkey-purge': keys.join(' ') }, signal });
        break;
      case 'fastly':
        response = await fetch(target.url, {
          method: 'POST',
          headers: { 'fastly-key': target.token, 'surrogate-key': keys.join(' ') },
          signal,
        });
        break;
      case 'cloudflare':
        response = await fetch(target.url, {
          method: 'POST',
          headers: { authorization: `Bearer ${target.token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ tags: keys }),
          signal,
        });
        break;
      case 'webhook':
        response = await fetch(target.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ keys }),
          signal,
        });
        break;
    }
    await response.body?.cancel();
    if (!response.ok) throw new Error(`${target.adapter} purge answered ${response.status}`);
  }
}

/**
 * The purger of PURGE_ADAPTER, or null when it is off; with a Redis, its undelivered keys are
 * kept in `<CACHE_NAMESPACE>:purges:pending` too, and those a stopped server left are taken over.
 */
export function createSurrogatePurger(deps: {
  config: Config;
  registry: Registry;
  logger: Logger;
  redis: RedisClient | null;
}): SurrogatePurger | null {
  const { purge, purgeRepeatMs } = deps.config.sharedCache;
  if (!purge) return null;
  const durable = deps.redis ? { redis: deps.redis, key: `${deps.config.cache.namespace}:purges:pending` } : null;
  const purger = new SurrogatePurger({ target: purge, repeatMs: purgeRepeatMs, registry: deps.registry, logger: deps.logger, durable });
  void purger.recover();
  return purger;
}
