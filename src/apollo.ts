import type { Server } from 'node:http';
import { ApolloServer, type ApolloServerOptions, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginCacheControl } from '@apollo/server/plugin/cacheControl';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import type { GraphQLSchema } from 'graphql';
import { type Cache, createPersistedQueryCache } from 'graphql-lease-cache';
import { type ResponseFlights, responseCachePlugin } from 'graphql-lease-cache/apollo';
import type { Config } from './config.js';
import type { GraphQLContext } from './context.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import { createFormatError } from './plugins/errors.plugin.js';
import { surrogateHeaders, surrogateKeysOf } from './caching/surrogate-keys.js';
import { httpCachePlugin } from './plugins/http-cache.plugin.js';
import { readBulkheadPlugin } from './plugins/read-bulkhead.plugin.js';
import { requestGuardPlugin } from './plugins/request-guard.plugin.js';
import { retryAfterPlugin } from './plugins/retry-after.plugin.js';
import { requestTracePlugin } from './plugins/trace.plugin.js';
import { addressSubject } from './services/rate-limits.js';

/** What {@link createApollo} is built from (server.ts passes its own). */
export interface ApolloOptions {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  cache: Cache;
  schema: GraphQLSchema;
  /** Drained by Apollo when it stops. */
  httpServer: Server;
  /** Response computations under way, shared with the fast path (graphql-route.ts). */
  flights: ResponseFlights;
}

/**
 * The Apollo server of /graphql, not started: query limits (graphql-armor, tokens), persisted
 * queries, error masking and the plugins ({@link apolloPlugins}).
 */
export function createApollo(options: ApolloOptions): ApolloServer<GraphQLContext> {
  const { config, logger } = options;
  const armor = new ApolloArmor({
    maxDepth: { n: config.limits.maxDepth },
    costLimit: { maxCost: config.limits.maxCost },
    maxAliases: { n: config.limits.maxAliases },
    // graphql-js enforces the token limit while parsing (parseOptions below): a clean 400.
    maxTokens: { enabled: false },
    maxDirectives: { n: 50 },
    blockFieldSuggestion: { enabled: config.production },
  }).protect();
  return new ApolloServer<GraphQLContext>({
    schema: options.schema,
    introspection: config.introspection,
    includeStacktraceInErrorResponses: config.nodeEnv === 'development',
    allowBatchedHttpRequests: false,
    // index.ts owns SIGINT/SIGTERM: it stops the server, then the connections, then the services.
    stopOnTerminationSignals: false,
    parseOptions: { maxTokens: config.limits.maxTokens },
    ...persistedQueries(options),
    validationRules: armor.validationRules,
    formatError: createFormatError(logger),
    plugins: [
      // graphql-armor is CommonJS, so its types name Apollo's CJS declarations; same objects at run time.
      ...(armor.plugins as unknown as ApolloServerPlugin<GraphQLContext>[]),
      ...apolloPlugins(options),
    ],
  });
}

/** Automatic persisted queries in the cache's Redis; none (Apollo's in-memory LRU) without Redis. */
function persistedQueries({ config, metrics, cache }: ApolloOptions): Pick<ApolloServerOptions<GraphQLContext>, 'persistedQueries'> {
  if (!cache.store) return {};
  return {
    persistedQueries: {
      cache: createPersistedQueryCache({
        store: cache.store,
        keys: cache.keys,
        defaultTtlMs: config.persistedQueries.ttlSeconds * 1_000,
        maxBytes: config.persistedQueries.maxBytes,
        notStored: (reason) => metrics.persistedQueriesNotStored.inc({ reason }),
      }),
    },
  };
}

/** The app's Apollo plugins, in the order they run (graphql-armor's come before them). */
function apolloPlugins({ config, logger, metrics, cache, httpServer, flights }: ApolloOptions): ApolloServerPlugin<GraphQLContext>[] {
  return [
    ApolloServerPluginDrainHttpServer({ httpServer }),
    config.production
      ? ApolloServerPluginLandingPageDisabled()
      : ApolloServerPluginLandingPageLocalDefault({ footer: false, includeCookies: false }),
    // Subscriptions: a 400 with a code (see also persistedQueryGuard in graphql-route.ts).
    requestGuardPlugin<GraphQLContext>(),
    // A mutation's reads skip the read bulkhead: a write is never refused for a read slot.
    readBulkheadPlugin<GraphQLContext>(),
    requestTracePlugin({ metrics, exposeTrace: !config.production }),
    // The cache policy from the @cacheControl hints: max-age is the smallest of the fields', and a
    // response that touched a PRIVATE field (email, orders, viewer) is private or not cacheable.
    // httpCachePlugin writes the header from it (`no-cache` unless HTTP_CACHE_MAX_AGE).
    ApolloServerPluginCacheControl({ defaultMaxAge: 0, calculateHttpHeaders: false }),
    httpCachePlugin<GraphQLContext>({ maxAge: config.httpCacheMaxAge }),
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
      // A shared cache in front keeps a stored GET, executed or a hit, by its dependencies' keys,
      // stored with it (surrogate-purge.ts purges them).
      ...(config.sharedCache.surrogateKeyHeader === 'off' ? {} : { surrogateKeys: surrogateKeysOf }),
      storedHeaders: (_ctx, stored) => surrogateHeaders(config.sharedCache.surrogateKeyHeader, stored),
    }),
    // 429 or 503 and Retry-After for a request refused whole (RATE_LIMITED, SERVER_BUSY).
    retryAfterPlugin<GraphQLContext>(),
  ];
}
