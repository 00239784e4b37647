import { createServer as createHttpServer, type Server } from 'node:http';
import express, { type Express } from 'express';
import type { GraphQLSchema } from 'graphql';
import { type Cache, FieldCache, type RedisClient } from 'graphql-lease-cache';
import { ResponseFlights } from 'graphql-lease-cache/apollo';
import { createApollo } from './apollo.js';
import { cacheInvalidateRoute } from './cache-invalidate-route.js';
import { checkEntityDeclarations } from './caching/entity-declarations.js';
import { cachedFields } from './caching/fields.js';
import { ENTITY_POLICIES } from './caching/policies.js';
import { KNOWN_TAGS } from './caching/tags.js';
import type { Config } from './config.js';
import type { Database } from './db.js';
import { explorerRouter } from './explorer.js';
import { bodyErrorHandler, graphqlRoute } from './graphql-route.js';
import type { Loaders } from './loaders/index.js';
import { ReadBulkhead } from './loaders/read-bulkhead.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import { ENTITY_MODELS } from './models/index.js';
import { listenMetrics, opsRoutes } from './ops-routes.js';
import { buildSchema } from './schema.js';
import type { DocumentLock } from './services/document-lock.js';
import { createServices, type Services } from './services/index.js';
import { createRateLimits, type RateLimits } from './services/rate-limits.js';

/** What {@link createServer} is built from; the caller owns (and closes) these. */
export interface ServerDeps {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  db: Database;
  /** Null when running without a cache. */
  redis: RedisClient | null;
  /** The Redis of the rate limits' counters (REDIS_STATE_URL, else the cache's); null: in process. */
  stateRedis: RedisClient | null;
  cache: Cache;
  /** Serializes document writes where the server needs it (shared with the write-behind worker). */
  documentLock: DocumentLock;
}

/** A started HTTP server with GraphQL at /graphql. */
export interface AppServer {
  httpServer: Server;
  /** The base URL it listens on, e.g. http://127.0.0.1:4000. */
  url: string;
  /** The base URL of GET /metrics when it has a port of its own (METRICS_PORT), else null (it is on `url`). */
  metricsUrl: string | null;
  /** Stops taking requests, drains the ones in flight, and resolves when closed. */
  stop(): Promise<void>;
  /** The response computations under way (tests wait on its joins); not an API. */
  __testing__responseFlights: ResponseFlights;
}

/**
 * Builds the Apollo server and the HTTP routes (`/graphql`, `/cache/invalidate`, `/healthz`,
 * `/readyz`, `/metrics`, `/explorer`) and starts listening on `config.host:config.port`.
 */
export async function createServer(deps: ServerDeps): Promise<AppServer> {
  const { config, logger, metrics, db, redis, cache } = deps;
  const app = express();
  // The listener is set once the routes are built: a stored /graphql response is answered before Express.
  const httpServer = createHttpServer();
  const { schema, fieldCache, reads, services, rateLimits } = createDomain(deps);
  // Response computations under way, shared by the fast path (which leads them) and the plugin (which settles them).
  const flights = new ResponseFlights();
  const apollo = createApollo({ config, logger, metrics, cache, schema, httpServer, flights });
  await apollo.start();

  app.disable('x-powered-by');
  // No weak ETag of Express's on every body: GET queries get a strong one of their own
  // (httpCachePlugin), and a POST answer is not cached by anyone.
  app.set('etag', false);
  // req.ip, the address the rate limits count: the socket's unless TRUST_PROXY names the proxies.
  app.set('trust proxy', config.trustProxy);
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  const metricsServer = await mountOpsRoutes(app, deps);
  // GraphiQL served from this server (EXPLORER): works offline, unlike Sandbox at GET /graphql.
  if (config.explorer) app.use(explorerRouter());
  // Writes made outside the API (scripts, other services, migrations) void what they changed here.
  app.use(cacheInvalidateRoute({ config, logger, cache, fieldCache, services, rateLimits }));
  const graphql = graphqlRoute({ config, logger, metrics, cache, fieldCache, reads, services, schema, apollo, flights });
  app.use('/graphql', ...graphql.handlers);
  app.use(bodyErrorHandler);
  httpServer.on('request', graphql.front(app));

  const port = await listen(httpServer, config);
  return {
    httpServer,
    url: `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${port}`,
    metricsUrl: metricsServer?.url ?? null,
    __testing__responseFlights: flights,
    stop: async () => {
      await apollo.stop();
      await metricsServer?.close();
    },
  };
}

/** The schema (checked against the code's declarations), the field cache, the read bulkhead and the services. */
function createDomain(deps: ServerDeps): {
  schema: GraphQLSchema;
  fieldCache: FieldCache<Loaders>;
  reads: ReadBulkhead;
  services: Services;
  rateLimits: RateLimits;
} {
  const { config, logger, metrics, stateRedis, cache, documentLock } = deps;
  const schema = buildSchema();
  // Fail start-up with every mismatch between the schema's @entity and @cached declarations and the code.
  checkEntityDeclarations({ schema, models: ENTITY_MODELS, generated: ENTITY_POLICIES });
  const fieldCache = new FieldCache<Loaders>({
    core: cache.core,
    keys: cache.keys,
    schema,
    definitions: cachedFields,
    knownTags: KNOWN_TAGS,
  });
  // One per process: the MongoDB reads of every request's loaders take turns here (not the writes).
  const reads = new ReadBulkhead({
    ...config.mongodbReads,
    onReject: (reason) => metrics.mongoReadsRejected.inc({ reason }),
    onChange: ({ inFlight, waiting }) => {
      metrics.mongoReadsInFlight.set(inFlight);
      metrics.mongoReadsWaiting.set(waiting);
    },
  });
  // Counters in the state Redis (shared by every server), in-process while it is away.
  const rateLimits = createRateLimits({ redis: stateRedis, keys: cache.keys, settings: config.rateLimits });
  const services = createServices({
    logger,
    sessionTtlSeconds: config.sessionTtlSeconds,
    documentLock,
    writePolicies: config.writePolicies,
    cache,
    fieldCache,
    rateLimits,
    uncertainWriteHoldMs: 2 * config.mongodbTimeoutMs,
  });
  return { schema, fieldCache, reads, services, rateLimits };
}

/**
 * Mounts `/readyz` (and `/metrics` when it has no port of its own) on `app`, and starts the
 * metrics server when METRICS_PORT names a port: null otherwise.
 */
async function mountOpsRoutes(
  app: Express,
  { config, db, redis, metrics }: ServerDeps,
): Promise<Awaited<ReturnType<typeof listenMetrics>> | null> {
  // /metrics on a port of its own when METRICS_PORT says so (production's default), and then the
  // public /readyz says only the status.
  const separateMetrics = config.metrics.port !== null;
  app.use(opsRoutes({ db, redis, metrics: separateMetrics ? null : metrics, details: !config.production || !separateMetrics }));
  return config.metrics.port === null
    ? null
    : await listenMetrics(opsRoutes({ db, redis, metrics, details: true }), config.metrics.host, config.metrics.port);
}

/** Listens on `config.host:config.port`; resolves with the port bound (`config.port` 0 picks one). */
async function listen(httpServer: Server, config: Config): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(config.port, config.host, resolve);
  });
  const address = httpServer.address();
  return typeof address === 'object' && address ? address.port : config.port;
}
