import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { type Cache, createCache, createRedisClient, Leadership, type RedisClient } from 'graphql-lease-cache';
import { DOMAIN_CACHE_OPTIONS } from './caching/cache-options.js';
import { createSurrogatePurger } from './caching/surrogate-purge.js';
import type { Config } from './config.js';
import { connectMongo, type Database } from './db.js';
import { databaseIsEmpty, seedDemoData } from './dev/seed.js';
import type { Logger } from './logger.js';
import { createMetrics, type Metrics } from './metrics.js';
import { observeCache, type CacheMetrics } from './cache-observer.js';
import { currentTrace } from './trace.js';
import { ensureIndexes } from './models/index.js';
import type { ProductDoc } from './models/product.model.js';
import { createServer, type AppServer } from './server.js';
import { sweepExpiredSessions } from './services/auth.service.js';
import { type BackgroundJobs, startBackgroundJobs } from './services/background-jobs.js';
import type { DocumentLock } from './services/document-lock.js';
import { recoverReservations } from './services/order.service.js';
import { backfillReviewCounts, recoverReviewCounts } from './services/review-counts.js';
import { startDocumentLock } from './services/shared-writes.js';
import { startWriteBehindWorker } from './services/write-behind-target.js';
import { startCacheAudit } from './services/cache-audit.js';
import { mongoIntentLog } from './services/cache-intents.js';
import { isReadUnavailable } from './services/mongo-errors.js';
import { ProductModel } from './models/index.js';

/** A running application: server, connections and background jobs. */
export interface App {
  url: string;
  config: Config;
  server: AppServer;
  db: Database;
  redis: RedisClient | null;
  cache: Cache;
  metrics: Metrics;
  /** The cache's metrics, kept from its events (cache-observer.ts). */
  cacheMetrics: CacheMetrics;
  /** Serializes document writes where MongoDB does not (FerretDB); shared by services and worker. */
  documentLock: DocumentLock;
  /** Stops the server, the background jobs, and closes the connections (not the services). */
  stop(): Promise<void>;
}

/** Options of {@link startApp}. */
export interface StartAppOptions {
  config: Config;
  logger: Logger;
  mongodbUri: string;
  redisUrl: string | null;
  /** Benchmarks and tests only, not an API: no write-behind queue, so that write-behind mutations take the synchronous path. */
  __testing__withoutWriteBehindQueue?: boolean;
}

/** How often unfinished placeOrder journals are looked for, in milliseconds. */
const RESERVATION_RECOVERY_INTERVAL_MS = 60_000;

/** How often expired sessions are swept where the server has no TTL indexes, in milliseconds. */
const SESSION_SWEEP_INTERVAL_MS = 10 * 60_000;

/** How often an instance that does not run the jobs looks whether the review-count backfill is done, at start, in milliseconds. */
const BACKFILL_WAIT_POLL_MS = 200;

/**
 * Connects MongoDB and Redis, creates the indexes, seeds an empty database outside
 * production, and starts the HTTP server.
 */
export async function startApp(options: StartAppOptions): Promise<App> {
  const { config, logger } = options;
  const metrics = createMetrics();
  const db = await connectMongo({ uri: options.mongodbUri, logger, metrics, timeoutMs: config.mongodbTimeoutMs });
  const cleanups: Cleanup[] = [() => db.close()];
  try {
    const indexes = await ensureIndexes(logger);
    if (config.seedOnStart && !config.production && (await databaseIsEmpty())) {
      logger.info('the database is empty: seeding demo data');
      await seedDemoData({ logger, admin: config.seedAdmin });
    }
    const { redis, stateRedis } = await connectRedis(options, cleanups);
    const { cache, observer } = createObservedCache({ options, redis, metrics }, cleanups);
    const locks = await startDocumentLock({
      isFerretdb: db.isFerretdb,
      mode: config.ferretdbDocumentLock,
      redis,
      cache,
      logger,
      waitMs: config.mongodbTimeoutMs,
      leaseTtlMs: config.jobsLeaseTtlMs,
    });
    cleanups.push(() => locks.stop());
    const { documentLock } = locks;
    const jobs = await startJobs({ config, logger, cache, documentLock, sessionTtlIndex: indexes.sessionTtl });
    cleanups.push(() => jobs.stop());
    await waitForBackfill(jobs, logger);
    startWriteBehind({ options, redis, cache, documentLock }, cleanups);
    // Read-only, so on every instance (not one of the leased jobs): each samples what it can reach.
    const audit = startCacheAudit({ cache, documentLock, metrics, logger, perMinute: config.cacheAuditPerMinute });
    if (audit) cleanups.push(() => audit.stop());
    const server = await createServer({ config, logger, metrics, db, redis, stateRedis, cache, documentLock });
    cleanups.push(() => server.stop());
    return {
      url: server.url,
      config,
      server,
      db,
      redis,
      cache,
      metrics,
      cacheMetrics: observer.metrics,
      documentLock,
      async stop() {
        for (const cleanup of cleanups.reverse()) {
          await cleanup().catch((error: unknown) => logger.warn({ err: error }, 'shutdown step failed'));
        }
      },
    };
  } catch (error) {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    throw error;
  }
}

/** A step of {@link App.stop}, run in the reverse order of start-up. */
type Cleanup = () => Promise<unknown>;

/**
 * The cache's Redis (null without REDIS_URL or cluster nodes) and the rate limits' (REDIS_STATE_URL,
 * else the cache's): connected, or left reconnecting with a warning; their disconnects in `cleanups`.
 */
async function connectRedis(
  options: StartAppOptions,
  cleanups: Cleanup[],
): Promise<{ redis: RedisClient | null; stateRedis: RedisClient | null }> {
  const { config, logger } = options;
  let redis: RedisClient | null = null;
  if (options.redisUrl || config.redisClusterNodes) {
    const client = createRedisClient({
      url: options.redisUrl ?? '',
      clusterNodes: config.redisClusterNodes ?? undefined,
      logger,
      commandTimeoutMs: config.redisCommandTimeoutMs,
    });
    redis = client;
    cleanups.push(async () => client.disconnect());
    await client
      .connect()
      .catch((error: unknown) => logger.warn({ err: error }, 'Redis is not reachable at start-up; serving from MongoDB'));
  }
  // Rate limits' counters in a Redis of their own when REDIS_STATE_URL names one (never evicted there).
  let stateRedis = redis;
  if (config.redisStateUrl) {
    const client = createRedisClient({ url: config.redisStateUrl, logger, commandTimeoutMs: config.redisCommandTimeoutMs });
    stateRedis = client;
    cleanups.push(async () => client.disconnect());
    await client
      .connect()
      .catch((error: unknown) => logger.warn({ err: error }, 'the state Redis is not reachable at start-up; rate limits count in process'));
  }
  if (stateRedis) void warnIfStateEvictable({ stateRedis, shared: stateRedis === redis, production: config.production, logger });
  return { redis, stateRedis };
}

/** The cache (createCache with the domain's options) and its metrics' observer; their stops in `cleanups`. */
function createObservedCache(
  deps: { options: StartAppOptions; redis: RedisClient | null; metrics: Metrics },
  cleanups: Cleanup[],
): { cache: Cache; observer: ReturnType<typeof observeCache> } {
  const { options, redis, metrics } = deps;
  const { config, logger } = options;
  // A shared HTTP cache in front keeps responses by their dependencies: purged on each invalidation.
  const purger = createSurrogatePurger({ config, registry: metrics.registry, logger, redis });
  if (purger) cleanups.push(async () => purger.close());
  const cache = createCache({
    redis,
    settings: config.cache,
    logger,
    ...DOMAIN_CACHE_OPTIONS,
    ...(purger ? { onResponsesInvalidated: (dependencies: readonly string[]) => purger.add(dependencies) } : {}),
    __testing__withoutWriteBehindQueue: options.__testing__withoutWriteBehindQueue,
    writeBehindMaxPending: config.writeBehind.maxPendingPerEntity,
    redisCommandTimeoutMs: config.redisCommandTimeoutMs,
    freezeLocalCopies: !config.production,
    // A read whose entry only expired is served it while MongoDB cannot answer (CACHE_GRACE_SECONDS).
    isSourceUnavailable: isReadUnavailable,
    // Invalidations an instance could not deliver are recorded in MongoDB: any instance delivers them.
    fleet: { intents: mongoIntentLog(), leaseMs: config.cacheFleetLeaseMs },
    // Unset: invalidations and enqueues wait for a replica on a Cluster where a master has one.
    replicaAcks: {
      ...(config.cacheReplicaAcks.replicas === null ? {} : { replicas: config.cacheReplicaAcks.replicas }),
      timeoutMs: config.cacheReplicaAcks.timeoutMs,
    },
  });
  // Leaves the fleet (so that no one takes this instance for dead) once its writes are done.
  cleanups.push(async () => {
    // Early refreshes running in the background finish (or fail, logged) before Redis closes.
    await cache.core.expiry.idle();
    await cache.fleet?.leave();
    cache.close();
  });
  const observer = observeCache({ cacheId: cache.events.id, registry: metrics.registry, currentTrace });
  cleanups.push(async () => observer.stop());
  return { cache, observer };
}

/** What {@link startJobs} and its jobs use. */
interface JobsDeps {
  config: Config;
  logger: Logger;
  cache: Cache;
  documentLock: DocumentLock;
  /** Whether MongoDB expires sessions itself (a TTL index): no sweep job then. */
  sessionTtlIndex: boolean;
}

/**
 * Starts the background jobs (recovery, session sweep), which run on one instance of those
 * sharing this Redis; the one that leads first backfills the review counts and recovers.
 */
async function startJobs(deps: JobsDeps): Promise<BackgroundJobs> {
  const { config, logger, cache, documentLock } = deps;
  const recover = () => recoverUnfinished(deps);
  // Products written before they kept their review counts get them before the server answers.
  const products = cache.entity<ProductDoc>('Product');
  const backfill = async (): Promise<void> => {
    const backfilled = await backfillReviewCounts(documentLock);
    if (backfilled.length) {
      await products.invalidate(backfilled);
      logger.info({ products: backfilled.length }, 'set the review counts of products that had none');
    }
  };
  // The jobs that write run on one instance of those sharing this Redis: with two, each would
  // write the same documents (on FerretDB, outside the other's in-process lock).
  return startBackgroundJobs({
    leadership: cache.store
      ? new Leadership({
          store: cache.store,
          key: cache.keys.lock('jobs'),
          holder: `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`,
          ttlMs: config.jobsLeaseTtlMs,
        })
      : null,
    renewMs: config.jobsLeaseTtlMs / 3,
    logger,
    onLead: async () => {
      await backfill();
      await recover();
    },
    jobs: [
      { name: 'recovery', everyMs: RESERVATION_RECOVERY_INTERVAL_MS, run: recover },
      ...(deps.sessionTtlIndex ? [] : [{ name: 'session sweep', everyMs: SESSION_SWEEP_INTERVAL_MS, run: sweepExpiredSessions }]),
    ],
  });
}

/**
 * Settles the placeOrder calls and review count changes that died half-way (a crash, MongoDB
 * lost mid-call); run when this instance starts leading, and every minute. Failures are logged.
 */
function recoverUnfinished({ logger, documentLock, cache }: JobsDeps): Promise<unknown> {
  return Promise.all([
    recoverReservations({ logger, documentLock, cache }).catch((error: unknown) =>
      logger.warn({ err: error }, 'recovering unfinished orders failed; retrying in a minute'),
    ),
    recoverReviewCounts({
      logger,
      documentLock,
      // What a finished change touched: the product, the review, and both pages of reviews.
      changed: (reviews) =>
        cache.core.invalidate(
          reviews.flatMap((r) => [cache.keys.entity('Product', r.product.toHexString()), cache.keys.entity('Review', r._id.toHexString())]),
          reviews.flatMap((r) => [
            cache.keys.tag('Product', r.product.toHexString(), 'reviews'),
            cache.keys.tag('User', r.author.toHexString(), 'reviews'),
          ]),
        ),
    }).catch((error: unknown) => logger.warn({ err: error }, 'recovering unfinished review counts failed; retrying in a minute')),
  ]);
}

/** When another instance runs the jobs: resolves once it has backfilled the review counts (or this one took over). */
async function waitForBackfill(jobs: BackgroundJobs, logger: Logger): Promise<void> {
  if (!jobs.leading && (await ProductModel.exists({ reviewCount: { $exists: false } }))) {
    logger.info('waiting for the instance that runs the background jobs to set the review counts of products that have none');
    while (!jobs.leading && (await ProductModel.exists({ reviewCount: { $exists: false } }))) {
      await new Promise((resolve) => setTimeout(resolve, BACKFILL_WAIT_POLL_MS));
      await jobs.tick();
    }
  }
}

/** Starts the write-behind worker (WRITE_BEHIND_WORKER) when write-behind is available; warns when it is not. */
function startWriteBehind(
  deps: { options: StartAppOptions; redis: RedisClient | null; cache: Cache; documentLock: DocumentLock },
  cleanups: Cleanup[],
): void {
  const { options, redis, cache, documentLock } = deps;
  const { config, logger } = options;
  if (!cache.writeBehind.available) {
    logger.warn(
      { policies: config.writePolicies },
      `write-behind is unavailable (${redis ? 'disabled' : 'no Redis'}): write-behind mutations write MongoDB synchronously`,
    );
  } else if (config.writeBehind.worker) {
    const worker = startWriteBehindWorker({ cache, documentLock, logger, settings: config.writeBehind });
    // Runs after the server stopped taking requests (cleanups run in reverse): SIGTERM drains the queue.
    cleanups.push(() => worker.stop({ drainMs: config.writeBehind.drainMs }));
  }
}

/**
 * Warns when the rate limits' counters sit in a Redis that may evict them (a lockout lifted by
 * memory pressure): always for REDIS_STATE_URL, which exists for this; for the cache's own Redis
 * only in production (the embedded one evicts, and says so in the docs).
 */
async function warnIfStateEvictable(options: {
  stateRedis: RedisClient;
  shared: boolean;
  production: boolean;
  logger: Logger;
}): Promise<void> {
  const { stateRedis, shared, production, logger } = options;
  if (shared && !production) return;
  try {
    const info = await stateRedis.info('memory');
    const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
    const maxmemory = Number(/^maxmemory:(\d+)/m.exec(info)?.[1] ?? '0');
    if (!policy || policy === 'noeviction' || maxmemory === 0) return;
    logger.warn(
      { maxmemoryPolicy: policy },
      shared
        ? "the rate limits share the cache's Redis, which may evict their counters under memory pressure (lifting a lockout): set REDIS_STATE_URL to a Redis with maxmemory-policy noeviction"
        : "REDIS_STATE_URL names a Redis that may evict the rate limits' counters under memory pressure: give it maxmemory-policy noeviction",
    );
  } catch {
    // INFO may be refused (a managed Redis) or Redis away: nothing to say then.
  }
}
