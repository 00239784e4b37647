import type { CacheLogger } from './logger.js';
import { at } from './at.js';
import { ABSENT, type Codec } from './codec.js';
import type { CacheEvents } from './events.js';
import type { StaleValue } from './lease-store.js';
import { nameOf, type ExpiryPolicy, type FetchSpec } from './fetch-spec.js';
import type { PendingInvalidations } from './pending-invalidations.js';
import type { Fleet } from './fleet/fleet.js';

/** Options of {@link Expiry}. */
export interface ExpiryOptions {
  /** How long values (and responses) are kept past their TTL, in milliseconds; 0: no grace (nor without `isSourceUnavailable`). */
  graceMs: number;
  /** The last part of a TTL (a fraction, in [0, 1)) in which a hit is reloaded in the background; 0: never. */
  earlyRefresh: number;
  /** True when a load's error means the source cannot answer (a timeout, a refused connection, a breaker open); default: never. */
  isSourceUnavailable: ((error: unknown) => boolean) | undefined;
  codec: Codec;
  events: CacheEvents;
  logger: CacheLogger;
  pending: PendingInvalidations;
  fleet: Fleet | undefined;
}

/** After this long without a grace serve, the next one starts a new outage (and logs again), in milliseconds. */
const OUTAGE_QUIET_MS = 60_000;

/** How long after the source was last seen unavailable whole responses may still be served in their grace, in milliseconds. */
export const SOURCE_DOWN_RECENT_MS = 5_000;

/**
 * The core's handling of expiry beyond the TTL: serving a value in its grace when the source
 * cannot answer, and the background loads of early refreshes.
 *
 * Why grace breaks no promise about acknowledged writes: a mutation through the API invalidates
 * (deletes, or floors) or refreshes (overwrites) what it changed before it returns, so a value
 * that is still stored and only expired was never replaced by one. What remains excluded is
 * excluded here: a key whose invalidation this process still owes bypasses the cache (and so
 * carries no expired value), a member without a fleet lease reads nothing from the cache, and
 * both are checked again at the moment an expired value would be served.
 */
export class Expiry {
  readonly policy: ExpiryPolicy;
  readonly #isSourceUnavailable: ((error: unknown) => boolean) | undefined;
  readonly #codec: Codec;
  readonly #events: CacheEvents;
  readonly #logger: CacheLogger;
  readonly #pending: PendingInvalidations;
  readonly #fleet: Fleet | undefined;
  readonly #background = new Set<Promise<void>>();
  /** When the source was last seen unavailable (ms since the epoch; 0: never). */
  #sourceDownAt = 0;
  /** Background reloads of values served while the source was known down, still out. */
  #probes = 0;
  /** When a value was last served in its grace (ms since the epoch; 0: never). */
  #lastGraceAt = 0;

  constructor(options: ExpiryOptions) {
    const { graceMs, earlyRefresh } = options;
    if (!(Number.isFinite(graceMs) && graceMs >= 0)) throw new TypeError(`graceMs must be a non-negative number, got ${String(graceMs)}`);
    if (!(earlyRefresh >= 0 && earlyRefresh < 1)) throw new TypeError(`earlyRefresh must be in [0, 1), got ${String(earlyRefresh)}`);
    // Without a way to tell the source is down, a grace could never serve: nothing is kept for it.
    this.policy = Object.freeze({ graceMs: options.isSourceUnavailable ? Math.round(graceMs) : 0, earlyRefresh });
    this.#isSourceUnavailable = options.isSourceUnavailable;
    this.#codec = options.codec;
    this.#events = options.events;
    this.#logger = options.logger;
    this.#pending = options.pending;
    this.#fleet = options.fleet;
  }

  /** True when `error` says the source cannot answer (and records when it was seen). */
  unavailable(error: unknown): boolean {
    if (!this.#isSourceUnavailable?.(error)) return false;
    this.#sourceDownAt = Date.now();
    return true;
  }

  /** True when the source was seen unavailable within the last `withinMs` milliseconds (default {@link SOURCE_DOWN_RECENT_MS}). */
  sourceRecentlyDown(withinMs = SOURCE_DOWN_RECENT_MS): boolean {
    // A probe still out (waiting for the source's timeout) keeps it down past the window.
    return this.#sourceDownAt > 0 && (this.#probes > 0 || Date.now() - this.#sourceDownAt <= withinMs);
  }

  /**
   * `work` (the loads of the items of `indexes`), or, when it fails because the source cannot
   * answer and every one of them has an expired value in `stale` that may still be served, those
   * values, decoded into `out`. Any other failure, or one item without such a value, rejects.
   */
  async orStale<T>(
    spec: FetchSpec<T>,
    indexes: readonly number[],
    out: (T | null)[],
    stale: ReadonlyMap<number, StaleValue>,
    work: Promise<void>,
  ): Promise<void> {
    try {
      await work;
    } catch (error) {
      // Recorded first: a failure that cannot be served from the grace still says the source is down.
      if (!this.unavailable(error) || !this.#servable(spec, indexes, stale)) throw error;
      let decoded: (T | null)[];
      try {
        decoded = indexes.map((index) => {
          const found = stale.get(index);
          if (!found) throw error;
          const value = this.#codec.decode(found.payload);
          return value === ABSENT ? null : (value as T);
        });
      } catch {
        // An expired value that does not decode is no value: the load's own error stands.
        throw error;
      }
      indexes.forEach((index, i) => {
        out[index] = at(decoded, i, 'the stale values');
      });
      this.#served(spec, indexes);
    }
  }

  /**
   * While the source was seen unavailable within {@link SOURCE_DOWN_RECENT_MS}: serves into `out`
   * the items of `indexes` whose expired value may be served, without asking the source (which
   * would make each read wait for its timeout), and returns them; none otherwise.
   */
  serveWhileDown<T>(
    spec: FetchSpec<T>,
    indexes: readonly number[],
    out: (T | null)[],
    stale: ReadonlyMap<number, StaleValue>,
  ): Set<number> {
    const served = new Set<number>();
    if (stale.size === 0 || indexes.length === 0 || !this.sourceRecentlyDown() || !(this.#fleet?.servable() ?? true)) return served;
    for (const index of indexes) {
      const found = stale.get(index);
      if (!found || this.#pending.bypasses(at(spec.keys, index, 'spec.keys'), spec.tags?.[index])) continue;
      let value: unknown;
      try {
        value = this.#codec.decode(found.payload);
      } catch {
        continue; // an expired value that does not decode is no value: loaded as usual
      }
      out[index] = value === ABSENT ? null : (value as T);
      served.add(index);
    }
    if (served.size) this.#served(spec, [...served]);
    return served;
  }

  /** Counts, traces and (once per outage) logs a response served in its grace. */
  servedResponse(trace?: { graceServed?: number }): void {
    if (trace) trace.graceServed = (trace.graceServed ?? 0) + 1;
    this.#events.expiry('grace', 'response', 1);
    this.#logOutage('response');
  }

  /**
   * Runs a background reload (an early refresh) of `spec`'s items: its failures are logged and
   * counted, never surfaced; {@link idle} waits for the ones running.
   */
  background<T>(spec: FetchSpec<T>, indexes: readonly number[], reload: () => Promise<void>, why: 'early' | 'probe' = 'early'): void {
    if (why === 'early') for (const [name, count] of countByName(spec, indexes)) this.#events.expiry('early-refresh', name, count);
    if (why === 'probe') this.#probes += 1;
    const run = reload()
      .then(() => {
        // A probe that loaded: the source answers again, and reads ask it again.
        if (why === 'probe') this.#sourceDownAt = 0;
      })
      .catch((error: unknown) => {
        // A probe's failure keeps the source known down: the next reads are served at once again.
        if (this.unavailable(error) && why === 'probe') return;
        for (const [name, count] of countByName(spec, indexes)) this.#events.expiry('refresh-error', name, count);
        this.#logger.debug({ err: error, keys: indexes.length }, 'an early refresh failed; the value expires as usual');
      })
      .finally(() => {
        if (why === 'probe') this.#probes -= 1;
        this.#background.delete(run);
      });
    this.#background.add(run);
  }

  /** Settles when every background reload started so far has (none ever rejects). */
  async idle(): Promise<void> {
    while (this.#background.size > 0) await Promise.all([...this.#background]);
  }

  /** Counts reads of `indexes` that waited on the source (their own load, or another reader's). */
  sourceWaits<T>(spec: FetchSpec<T>, indexes: readonly number[]): void {
    for (const [name, count] of countByName(spec, indexes)) this.#events.expiry('source-wait', name, count, spec.trace);
  }

  /** True when every item has an expired value that may be served: none is owed an invalidation here, and the fleet lets this member read the cache. */
  #servable<T>(spec: FetchSpec<T>, indexes: readonly number[], stale: ReadonlyMap<number, StaleValue>): boolean {
    if (indexes.length === 0 || !(this.#fleet?.servable() ?? true)) return false;
    return indexes.every((index) => stale.has(index) && !this.#pending.bypasses(at(spec.keys, index, 'spec.keys'), spec.tags?.[index]));
  }

  #served<T>(spec: FetchSpec<T>, indexes: readonly number[]): void {
    if (spec.trace) spec.trace.graceServed = (spec.trace.graceServed ?? 0) + indexes.length;
    const names = countByName(spec, indexes);
    for (const [name, count] of names) this.#events.expiry('grace', name, count, spec.trace);
    this.#logOutage([...names.keys()].join(', '));
  }

  /** One warning per outage: the first grace serve after {@link OUTAGE_QUIET_MS} without one. */
  #logOutage(what: string): void {
    const now = Date.now();
    if (now - this.#lastGraceAt > OUTAGE_QUIET_MS)
      this.#logger.warn({ served: what }, 'the source is unavailable: serving expired cache entries in their grace');
    this.#lastGraceAt = now;
  }
}

/** How many of `indexes` each name has. */
function countByName<T>(spec: FetchSpec<T>, indexes: readonly number[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const index of indexes) {
    const name = nameOf(spec, index);
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return counts;
}
