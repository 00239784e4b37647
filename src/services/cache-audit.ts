import { Cluster, type Redis } from 'ioredis';
import type { Cache, PeekedEntity, Versioned } from 'graphql-lease-cache';
import { findByIds, type Identified } from '../loaders/batch.js';
import type { Logger } from '../logger.js';
import { AUDITED_TYPES, type Metrics } from '../metrics.js';
import { ProductModel, UserModel } from '../models/index.js';
import { PRODUCT_BOOKKEEPING } from '../models/product.model.js';
import { WRITE_BEHIND_BOOKKEEPING } from '../models/write-behind.plugin.js';
import type { DocumentLock } from './document-lock.js';
import { lockOf } from './write-behind-target.js';

/** Options of {@link startCacheAudit}. */
export interface CacheAuditOptions {
  cache: Cache;
  documentLock: DocumentLock;
  metrics: Metrics;
  logger: Logger;
  /** Cached entities compared per minute (CACHE_AUDIT_PER_MINUTE); 0 starts nothing. */
  perMinute: number;
}

/** A running staleness audit. */
export interface CacheAudit {
  /** Stops the timer and waits for the comparison under way. */
  stop(): Promise<void>;
}

type AuditedType = (typeof AUDITED_TYPES)[number];

/** How each audited type is read from MongoDB: as its loader reads it (loaders/index.ts), so that the two compare. */
const SOURCES: Record<AuditedType, (id: string) => Promise<(Versioned | null)[]>> = {
  Product: (id) => findByIds(ProductModel, [id], PRODUCT_BOOKKEEPING),
  User: (id) => findByIds(UserModel, [id], WRITE_BEHIND_BOOKKEEPING),
};

/** How often the audit wakes to spend its budget, in milliseconds. */
const TICK_MS = 1_000;
/** The most keys one SCAN call visits (COUNT), and the most SCAN calls of one tick. */
const SCAN_COUNT = 500;
const SCANS_PER_TICK = 20;
/**
 * How long a difference must last, the cached copy unchanged, before it counts, in milliseconds:
 * a write through the API updates MongoDB, then the cache (refresh or invalidation) a round trip
 * later; one of another instance holds no lock here. A copy still different after this is stale.
 */
const CONFIRM_MS = 2_000;
/** Mismatching keys logged per minute at most (the counter counts them all). */
const LOGGED_PER_MINUTE = 5;

/**
 * Starts the staleness audit: every second it spends its share of `perMinute` comparing cached
 * Product and User documents (half each), sampled by SCAN over their entity keys, with MongoDB's, as
 * cache_audit_checked_total and cache_audit_mismatches_total count. It skips what the protocol
 * itself leaves different for a moment: an invalidation pending in this process, a queued
 * write-behind change, a document lock held here, and a difference gone within CONFIRM_MS. It
 * only reads, so every instance runs it. Null when off (0), without Redis, or on a Redis Cluster
 * (SCAN sees one node; not sampled yet). A failed tick is logged and the next one goes on.
 */
export function startCacheAudit(options: CacheAuditOptions): CacheAudit | null {
  const { cache, logger, perMinute } = options;
  const client = cache.store?.client;
  if (perMinute === 0 || !client) return null;
  if (client instanceof Cluster) {
    logger.warn('the cache staleness audit does not sample a Redis Cluster yet: CACHE_AUDIT_PER_MINUTE is ignored');
    return null;
  }
  const sampler = keySampler(client, cache);
  const log = mismatchLog(logger);
  let budget = 0;
  let stopped = false;
  let running: Promise<void> | null = null;
  const tick = async (): Promise<void> => {
    // At most one minute's budget carried over: a slow tick does not make a burst later.
    budget = Math.min(budget + perMinute / (60_000 / TICK_MS), perMinute);
    for (const type of AUDITED_TYPES) {
      const ids = await sampler.next(type, Math.floor(budget / AUDITED_TYPES.length));
      budget -= ids.length;
      for (const id of ids) {
        // A stale hot key costs CONFIRM_MS per visit: stop() does not wait for the rest.
        if (stopped) return;
        record(type, id, await audit({ ...options, type, id }));
      }
    }
  };
  const record = (type: AuditedType, id: string, outcome: Outcome): void => {
    if (outcome === 'match' || outcome === 'mismatch') options.metrics.cacheAuditChecked.inc({ type });
    if (outcome === 'mismatch') {
      options.metrics.cacheAuditMismatches.inc({ type });
      log(type, id);
    } else if (outcome !== 'match') options.metrics.cacheAuditSkipped.inc({ type, reason: outcome });
  };
  const timer = setInterval(() => {
    running ??= tick()
      .catch((error: unknown) => logger.warn({ err: error }, 'a cache audit round failed; the next one goes on'))
      .finally(() => (running = null));
  }, TICK_MS);
  timer.unref();
  logger.info({ perMinute }, 'the cache staleness audit compares cached entities with MongoDB');
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}

/**
 * The ids of cached entities to audit, per type: SCAN over their entity keys, each visited once
 * per pass; a few hot keys are visited again by the next pass, as often as the budget allows.
 */
function keySampler(client: Redis, cache: Cache): { next(type: AuditedType, count: number): Promise<string[]> } {
  const cursors = new Map<AuditedType, string>();
  const queued = new Map<AuditedType, string[]>();
  return {
    async next(type, count) {
      const ids = queued.get(type) ?? [];
      queued.set(type, ids);
      // `<prefix>:{Product:*}` ends with `}`: entity keys only, not their fields, tags or leases.
      const match = cache.keys.entity(type, 'ID').replace(/ID\}$/, '*}');
      let pass = new Set(ids);
      for (let scans = 0; ids.length < count && scans < SCANS_PER_TICK; scans += 1) {
        const [cursor, keys] = await client.scan(cursors.get(type) ?? '0', 'MATCH', match, 'COUNT', SCAN_COUNT);
        cursors.set(type, cursor);
        for (const key of keys) {
          const id = /:\{[A-Za-z]+:([^}]+)\}$/.exec(key)?.[1];
          if (!id || cache.keys.entityType(key) !== type || pass.has(id)) continue;
          pass.add(id);
          ids.push(id);
        }
        if (cursor === '0') {
          // A pass that found nothing ends the tick; after one that did, the next pass starts.
          if (pass.size === 0) break;
          pass = new Set();
        }
      }
      return ids.splice(0, count);
    },
  };
}

/** What one comparison found: the same, stale, or why it compared nothing. */
type Outcome = 'match' | 'mismatch' | 'pending_invalidation' | 'write_in_flight' | 'not_cached' | 'changed';

/** Compares the cached copy of one entity with MongoDB's, twice CONFIRM_MS apart when they differ. */
async function audit(options: CacheAuditOptions & { type: AuditedType; id: string }): Promise<Outcome> {
  const first = await compare(options);
  if (first.outcome !== 'mismatch') return first.outcome;
  await new Promise((resolve) => setTimeout(resolve, CONFIRM_MS));
  const second = await compare(options);
  if (second.outcome !== 'mismatch') return second.outcome === 'match' ? 'changed' : second.outcome;
  // The cache changed in between (a write, an eviction and a fill): not the copy first seen.
  return second.cached === first.cached ? 'mismatch' : 'changed';
}

/** One comparison; `cached` is the canonical JSON of the cached copy compared. */
async function compare(options: CacheAuditOptions & { type: AuditedType; id: string }): Promise<{ outcome: Outcome; cached?: string }> {
  const { cache, documentLock, type, id } = options;
  const entities = cache.entity<Identified & Versioned>(type);
  if (entities.invalidationPending(id)) return { outcome: 'pending_invalidation' };
  if (documentLock.held(lockOf(type, id))) return { outcome: 'write_in_flight' };
  const [queued] = await cache.core.pendingChanges([cache.keys.pending(type, id)]);
  if (queued?.length) return { outcome: 'write_in_flight' };
  const [peeked] = await entities.peek([id]);
  if (!peeked || peeked.value === null) return { outcome: 'not_cached' };
  const [doc] = await SOURCES[type](id);
  const cached = canonical(peeked);
  return { outcome: cached === canonical({ version: doc?.version ?? 0, value: doc ?? null }) ? 'match' : 'mismatch', cached };
}

/** Bookkeeping fields that neither loads nor writes show the same way, left out of the comparison. */
const IGNORED = new Set(['__v', 'reviewsCounted', 'wbApplied']);

/**
 * A cached copy or a MongoDB document as one string: its version, and its fields in key order
 * (ObjectIds as hex and Dates as ISO, as JSON writes them); a cached absence as `null`.
 */
function canonical(entry: PeekedEntity<unknown> | { version: number; value: unknown }): string {
  const value = typeof entry.value === 'symbol' ? null : entry.value;
  return JSON.stringify({ version: value === null ? 0 : entry.version, value }, (key, field: unknown) =>
    IGNORED.has(key)
      ? undefined
      : field && typeof field === 'object' && !Array.isArray(field) && Object.getPrototypeOf(field) === Object.prototype
        ? Object.fromEntries(Object.entries(field).sort(([a], [b]) => (a < b ? -1 : 1)))
        : field,
  );
}

/** Logs a mismatching key, at most LOGGED_PER_MINUTE a minute, then how many were not logged. */
function mismatchLog(logger: Logger): (type: AuditedType, id: string) => void {
  let windowStart = 0;
  let logged = 0;
  let unlogged = 0;
  return (type, id) => {
    if (Date.now() - windowStart >= 60_000) {
      if (unlogged) logger.warn({ unlogged }, 'the cache audit found more stale cached entities than it logged last minute');
      windowStart = Date.now();
      logged = 0;
      unlogged = 0;
    }
    if (logged >= LOGGED_PER_MINUTE) {
      unlogged += 1;
      return;
    }
    logged += 1;
    logger.warn({ type, id }, 'the cache audit found a cached entity that differs from MongoDB (a write made outside the API?)');
  };
}
