import { createServer as createHttpServer, type Server } from 'node:http';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginCacheControl } from '@apollo/server/plugin/cacheControl';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import { expressMiddleware } from '@as-integrations/express5';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import cors from 'cors';
import express, { type ErrorRequestHandler, type Request, type RequestHandler, type Response } from 'express';
import { type Cache, createPersistedQueryCache, FieldCache, type RedisClient } from 'graphql-lease-cache';
import { checkEntityDeclarations } from './caching/entity-declarations.js';
import { ResponseFlights, responseCachePlugin, responseFastPath } from 'graphql-lease-cache/apollo';
import { cachedFields } from './caching/fields.js';
import { ENTITY_POLICIES } from './caching/policies.js';
import { KNOWN_TAGS } from './caching/tags.js';
import type { Loaders } from './loaders/index.js';
import type { Config } from './config.js';
import { createContext, parseBearer, type GraphQLContext } from './context.js';
import type { Database } from './db.js';
import { ErrorCode } from './errors.js';
import { explorerRouter } from './explorer.js';
import { listenMetrics, opsRoutes } from './ops-routes.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import { createFormatError } from './plugins/errors.plugin.js';
import { cacheControlHeader, httpCachePlugin, varyByAuthorization } from './plugins/http-cache.plugin.js';
import { retryAfterPlugin } from './plugins/retry-after.plugin.js';
import { ReadBulkhead } from './loaders/read-bulkhead.js';
import { ENTITY_MODELS } from './models/index.js';
import { readBulkheadPlugin } from './plugins/read-bulkhead.plugin.js';
import { persistedQueryGuard, requestGuardPlugin } from './plugins/request-guard.plugin.js';
import { countRequest, requestTracePlugin, traceExtensions } from './plugins/trace.plugin.js';
import { buildSchema } from './schema.js';
import type { DocumentLock } from './services/document-lock.js';
import { createServices } from './services/index.js';
import type { SessionInfo } from './services/auth.service.js';
import { addressSubject, createRateLimits } from './services/rate-limits.js';
import { createTrace, mayWrite, runTraced, type RequestTrace } from './trace.js';

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

/** The largest request body accepted, in bytes (queries are also limited in tokens and depth). */
const MAX_BODY_BYTES = 256 * 1024;

/**
 * Builds the Apollo server and the HTTP routes (`/graphql`, `/healthz`, `/readyz`,
 * `/metrics`, `/explorer`) and starts listening on `config.host:config.port`.
 */
export async function createServer(deps: ServerDeps): Promise<AppServer> {
  const { config, logger, metrics, db, redis, stateRedis, cache, documentLock } = deps;
  const app = express();
  const httpServer = createHttpServer(app);
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
  const services = createServices({
    logger,
    sessionTtlSeconds: config.sessionTtlSeconds,
    documentLock,
    writePolicies: config.writePolicies,
    cache,
    fieldCache,
    // Counters in the state Redis (shared by every server), in-process while it is away.
    rateLimits: createRateLimits({ redis: stateRedis, keys: cache.keys, settings: config.rateLimits }),
    uncertainWriteHoldMs: 2 * config.mongodbTimeoutMs,
  });
  const armor = new ApolloArmor({
    maxDepth: { n: config.limits.maxDepth },
    costLimit: { maxCost: config.limits.maxCost },
    maxAliases: { n: config.limits.maxAliases },
    // graphql-js enforces the token limit while parsing (parseOptions below): a clean 400.
    maxTokens: { enabled: false },
    maxDirectives: { n: 50 },
    blockFieldSuggestion: { enabled: config.production },
  }).protect();

  // Response computations under way, shared by the fast path (which leads them) and the plugin (which settles them).
  const flights = new ResponseFlights();
  const apollo = new ApolloServer<GraphQLContext>({
    schema,
    introspection: config.introspection,
    includeStacktraceInErrorResponses: config.nodeEnv === 'development',
    allowBatchedHttpRequests: false,
    // index.ts owns SIGINT/SIGTERM: it stops the server, then the connections, then the services.
    stopOnTerminationSignals: false,
    parseOptions: { maxTokens: config.limits.maxTokens },
    // Automatic persisted queries in the cache's Redis (Apollo's in-memory LRU without Redis).
    ...(cache.store
      ? {
          persistedQueries: {
            cache: createPersistedQueryCache({
              store: cache.store,
              keys: cache.keys,
              defaultTtlMs: config.persistedQueries.ttlSeconds * 1_000,
              maxBytes: config.persistedQueries.maxBytes,
              notStored: (reason) => metrics.persistedQueriesNotStored.inc({ reason }),
            }),
          },
        }
      : {}),
    validationRules: armor.validationRules,
    formatError: createFormatError(logger),
    plugins: [
      // graphql-armor is CommonJS, so its types name Apollo's CJS declarations; same objects at run time.
      ...(armor.plugins as unknown as ApolloServerPlugin<GraphQLContext>[]),
      ApolloServerPluginDrainHttpServer({ httpServer }),
      config.production
        ? ApolloServerPluginLandingPageDisabled()
        : ApolloServerPluginLandingPageLocalDefault({ footer: false, includeCookies: false }),
      // Subscriptions: a 400 with a code (see also persistedQueryGuard below).
      requestGuardPlugin<GraphQLContext>(),
      // A mutation's reads skip the read bulkhead: a write is never refused for a read slot.
      readBulkheadPlugin<GraphQLContext>(),
      requestTracePlugin({ metrics, exposeTrace: !config.production }),
      // The cache policy from the @cacheControl hints: max-age is the smallest of the fields', and a
      // response that touched a PRIVATE field (email, orders, viewer) is private or not cacheable.
      // httpCachePlugin writes the header from it (private ones `private, no-cache`).
      ApolloServerPluginCacheControl({ defaultMaxAge: 0, calculateHttpHeaders: false }),
      httpCachePlugin<GraphQLContext>(),
      // Whole responses, never stale (CACHE_RESPONSES): answered before execution when stored.
      responseCachePlugin<GraphQLContext>({
        cache,
        logger,
        flights,
        trace: (ctx) => ctx.trace,
        // A token is part of the key only when it opens a live session: anyone else is anonymous.
        sessionId: async (ctx) => (ctx.token && (await ctx.session()) ? ctx.token : null),
        sessionExpiresAt: (ctx) => ctx.sessionExpiresAt(),
        clientId: (ctx) => addressSubject(ctx.clientIp),
        onOutcome: (ctx, outcome) => (ctx.trace.response = outcome),
        budget: config.responseStore,
        onNotStored: (reason) => metrics.responsesNotStored.inc({ reason }),
      }),
      // 429 or 503 and Retry-After for a request refused whole (RATE_LIMITED, SERVER_BUSY).
      retryAfterPlugin<GraphQLContext>(),
    ],
  });
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
  // /metrics on a port of its own when METRICS_PORT says so (production's default), and then the
  // public /readyz says only the status.
  const separateMetrics = config.metrics.port !== null;
  app.use(opsRoutes({ db, redis, metrics: separateMetrics ? null : metrics, details: !config.production || !separateMetrics }));
  const metricsServer =
    config.metrics.port === null
      ? null
      : await listenMetrics(opsRoutes({ db, redis, metrics, details: true }), config.metrics.host, config.metrics.port);
  // GraphiQL served from this server (EXPLORER): works offline, unlike Sandbox at GET /graphql.
  if (config.explorer) app.use(explorerRouter());
  app.use(
    '/graphql',
    onlyGraphqlMethods,
    // Every response may depend on the token: no browser cache may answer another token with it.
    varyByAuthorization,
    cors<cors.CorsRequest>(),
    express.json({ limit: MAX_BODY_BYTES }),
    // A persisted query's version or hash wrong: a 400 with a code (Apollo's own answer has none).
    persistedQueryGuard,
    (req, res, next) => {
      const trace = createTrace();
      res.locals.trace = trace;
      // A request that may write runs traced: the MongoDB driver's events land in its trace, so
      // that a failure can tell whether it had written (trace.ts). Apollo runs no mutation over
      // GET; a request with a token may renew its session, which is a write.
      if (config.requestTrace === 'all' || req.headers.authorization !== undefined || (req.method === 'POST' && mayWrite(req.body))) {
        runTraced(trace, (done) => {
          // Ended when Apollo is done with it (the trace plugin), or its response was sent; not
          // when the client goes away, which leaves the request running. (Only if neither ever
          // comes does a timer end it, so that tracing cannot stay on for good.)
          trace.end = done;
          res.once('finish', done);
          res.once('close', () => setTimeout(done, 60_000).unref());
          next();
        });
        return;
      }
      next();
    },
    // A stored response is answered here, before Apollo's per-request work (CACHE_RESPONSES).
    responseFastPath<Request, Response>({
      cache,
      logger,
      schema,
      flights,
      maxTokens: config.limits.maxTokens,
      trace: (_req, res) => res.locals.trace as RequestTrace,
      session: (req, res) => {
        const token = parseBearer(req.headers.authorization);
        if (!token) return null;
        // Kept for the request's context, which does not resolve it again.
        const session = services.auth.resolveSession(token, res.locals.trace as RequestTrace);
        res.locals.session = session;
        return { id: token, live: session.then((live) => live !== null) };
      },
      onHit: (_req, res) => {
        (res.locals.trace as RequestTrace).response = 'HIT';
        countRequest(metrics, res.locals.trace as RequestTrace, 'query', 'ok');
      },
      extensions: (_req, res) => (config.production ? null : traceExtensions(res.locals.trace as RequestTrace)),
      cacheControl: cacheControlHeader,
    }),
    expressMiddleware(apollo, {
      context: async ({ req, res }) =>
        createContext(
          { logger, services, cache, fieldCache, reads },
          {
            authorization: req.headers.authorization,
            clientIp: req.ip,
            trace: (res.locals.trace as RequestTrace | undefined) ?? createTrace(),
            session: res.locals.session as Promise<SessionInfo | null> | undefined,
          },
        ),
    }),
  );
  app.use(bodyErrorHandler);

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(config.port, config.host, resolve);
  });
  const address = httpServer.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
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

/** The methods /graphql answers; anything else (HEAD, DELETE, PUT…) is a 405 naming them, not a CSRF 400. */
const GRAPHQL_METHODS = ['GET', 'POST', 'OPTIONS'];

const onlyGraphqlMethods: RequestHandler = (req, res, next) => {
  if (GRAPHQL_METHODS.includes(req.method)) return next();
  res.setHeader('allow', GRAPHQL_METHODS.join(', '));
  if (req.method === 'HEAD') {
    res.status(405).end();
    return;
  }
  res.status(405).json({
    errors: [
      {
        message: `${req.method} is not allowed on /graphql: use ${GRAPHQL_METHODS.join(', ')}.`,
        extensions: { code: ErrorCode.BadRequest },
      },
    ],
  });
};

/** Malformed or oversized bodies get a GraphQL-shaped 400/413, never an HTML 500. */
const bodyErrorHandler: ErrorRequestHandler = (error: { status?: number; type?: string; message?: string }, _req, res, next) => {
  if (res.headersSent) return next(error);
  const status = error.status && error.status >= 400 && error.status < 500 ? error.status : 500;
  const message =
    error.type === 'entity.too.large'
      ? `The request body is larger than ${MAX_BODY_BYTES} bytes.`
      : status < 500
        ? `The request body could not be read: ${error.message ?? 'malformed'}.`
        : 'Internal server error.';
  res
    .status(status)
    .json({ errors: [{ message, extensions: { code: status < 500 ? ErrorCode.BadUserInput : ErrorCode.InternalServerError } }] });
};
