// npm run worker — the write-behind worker on its own (run the servers with WRITE_BEHIND_WORKER=false).
// It needs MONGODB_URI and REDIS_URL (a standalone Redis); SIGTERM/SIGINT drain the queue, then exit.
// WORKER_METRICS_PORT serves its Prometheus metrics (queue depth, flushes, retries, dead letters).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createCache, createRedisClient } from 'graphql-lease-cache';
import { DOMAIN_CACHE_OPTIONS } from './caching/cache-options.js';
import { createSurrogatePurger } from './caching/surrogate-purge.js';
import { checkEntityDeclarations } from './caching/entity-declarations.js';
import { ENTITY_POLICIES } from './caching/policies.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { connectMongo } from './db.js';
import { createLogger } from './logger.js';
import { createMetrics } from './metrics.js';
import { ENTITY_MODELS } from './models/index.js';
import { buildSchema } from './schema.js';
import { observeCache } from './cache-observer.js';
import { checkPortFree, portInUseMessage } from './port-in-use.js';
import { mongoIntentLog } from './services/cache-intents.js';
import { isReadUnavailable } from './services/mongo-errors.js';
import { AnotherWriterError, startDocumentLock } from './services/shared-writes.js';
import { startWriteBehindWorker } from './services/write-behind-target.js';

let config: Config;
try {
  config = loadConfig();
  if (!config.mongodbUri || !config.redisUrl)
    throw new ConfigError('Invalid configuration:\n  MONGODB_URI and REDIS_URL: the worker needs both');
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(1);
  }
  throw error;
}
// What the worker may write behind is the schema's @entity: the same check as the server's start-up.
checkEntityDeclarations({ schema: buildSchema(), models: ENTITY_MODELS, generated: ENTITY_POLICIES });
const logger = createLogger({ level: config.logLevel });
/** A taken WORKER_METRICS_PORT: one line, and exit 1 (checked before the worker starts, and when its server listens). */
function exitIfPortInUse(error: unknown): void {
  const inUse = portInUseMessage(error, config.writeBehind.metricsPort ?? 0, 'WORKER_METRICS_PORT');
  if (!inUse) throw error;
  console.error(inUse);
  process.exit(1);
}
if (config.writeBehind.metricsPort !== undefined) await checkPortFree(config.writeBehind.metricsPort, config.host).catch(exitIfPortInUse);
const metrics = createMetrics();
const db = await connectMongo({ uri: config.mongodbUri, logger, metrics, timeoutMs: config.mongodbTimeoutMs });
const redis = createRedisClient({ url: config.redisUrl, logger, commandTimeoutMs: config.redisCommandTimeoutMs });
await redis.connect();
// The worker's writes invalidate responses too: a shared HTTP cache in front is purged of them.
const purger = createSurrogatePurger({ config, registry: metrics.registry, logger, redis });
const cache = createCache({
  redis,
  // No L1: the worker serves no reads, and an L1 would make every write wait for its acknowledgement.
  settings: { ...config.cache, l1MaxBytes: 0 },
  logger,
  ...DOMAIN_CACHE_OPTIONS,
  // As the servers: what the worker stores is kept for the grace (CACHE_GRACE_SECONDS).
  isSourceUnavailable: isReadUnavailable,
  ...(purger ? { onResponsesInvalidated: (dependencies: readonly string[]) => purger.add(dependencies) } : {}),
  // A member of the fleet like the servers: its flushes' invalidations are acknowledged, and recorded when undeliverable.
  fleet: { intents: mongoIntentLog(), leaseMs: config.cacheFleetLeaseMs },
});
observeCache({ cacheId: cache.events.id, registry: metrics.registry });
// On FerretDB the worker's writes take the servers' document locks in Redis (FERRETDB_DOCUMENT_LOCK=redis);
// with `process`, a server is the only writer and this refuses to start beside it.
const locks = await startDocumentLock({
  isFerretdb: db.isFerretdb,
  mode: config.ferretdbDocumentLock,
  redis,
  cache,
  logger,
  waitMs: config.mongodbTimeoutMs,
  leaseTtlMs: config.jobsLeaseTtlMs,
}).catch((error: unknown) => {
  if (!(error instanceof AnotherWriterError)) throw error;
  console.error(error.message);
  process.exit(1);
});
const worker = startWriteBehindWorker({ cache, documentLock: locks.documentLock, logger, settings: config.writeBehind });
logger.info({ consumer: worker.consumer }, 'write-behind worker running');

const metricsServer =
  config.writeBehind.metricsPort === undefined
    ? null
    : createServer((request, response) => {
        if (request.method === 'GET' && request.url === '/metrics') {
          metrics.registry
            .metrics()
            .then((text) => response.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text))
            .catch(() => response.writeHead(500).end());
        } else {
          response.writeHead(404).end();
        }
      });
if (metricsServer) {
  await new Promise<void>((resolve, reject) => {
    metricsServer.once('error', reject);
    metricsServer.listen(config.writeBehind.metricsPort, config.host, resolve);
  }).catch(exitIfPortInUse);
  const { port } = metricsServer.address() as AddressInfo;
  logger.info(`worker metrics at http://${config.host}:${port}/metrics`);
}

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'draining the write-behind queue');
  metricsServer?.close();
  await worker.stop({ drainMs: config.writeBehind.drainMs });
  await locks.stop();
  await cache.fleet?.leave();
  cache.close();
  purger?.close();
  redis.disconnect();
  await db.close();
  logger.flush();
  process.exit(0);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
