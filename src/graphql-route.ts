import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { expressMiddleware } from '@as-integrations/express5';
import type { ApolloServer } from '@apollo/server';
import cors from 'cors';
import express, { type ErrorRequestHandler, type Request, type RequestHandler, type Response } from 'express';
import type { GraphQLSchema } from 'graphql';
import type { Cache, FieldCache } from 'graphql-lease-cache';
import { type FrontRequest, type ResponseFlights, replayedBody, responseFastPath, responseFront } from 'graphql-lease-cache/apollo';
import type { Config } from './config.js';
import { createContext, parseBearer, type GraphQLContext } from './context.js';
import { ErrorCode } from './errors.js';
import type { Loaders } from './loaders/index.js';
import type { ReadBulkhead } from './loaders/read-bulkhead.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import { cacheControlHeader, revalidateByETag, varyByAuthorization } from './plugins/http-cache.plugin.js';
import { SURROGATE_NO_STORE } from './caching/surrogate-keys.js';
import { persistedQueryGuard } from './plugins/request-guard.plugin.js';
import { countRequest, traceExtensions } from './plugins/trace.plugin.js';
import type { SessionInfo } from './services/auth.service.js';
import type { Services } from './services/index.js';
import { createTrace, mayWrite, runTraced, type RequestTrace } from './trace.js';

/** What {@link graphqlRoute} is built from (server.ts passes its own). */
export interface GraphqlRouteOptions {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  cache: Cache;
  fieldCache: FieldCache<Loaders>;
  reads: ReadBulkhead;
  services: Services;
  schema: GraphQLSchema;
  /** Started already (expressMiddleware needs a started server). */
  apollo: ApolloServer<GraphQLContext>;
  /** Response computations under way, shared with the response cache plugin (apollo.ts). */
  flights: ResponseFlights;
}

/** The largest request body accepted, in bytes (queries are also limited in tokens and depth). */
const MAX_BODY_BYTES = 256 * 1024;

/** What {@link graphqlRoute} builds: the Express handlers of `/graphql`, and the listener in front of the app. */
export interface GraphqlRoute {
  /** Mounted at `/graphql`. */
  handlers: RequestHandler[];
  /**
   * The `node:http` listener of the server: a JSON POST to `/graphql` is read, and a stored
   * response answered, before Express; everything else goes to `app` as it came, or with its
   * body read (see responseFront).
   */
  front(app: RequestListener): RequestListener;
}

/** What a /graphql request keeps between the front, the route's middleware and Apollo's context (`res.locals`). */
interface GraphqlLocals {
  trace?: RequestTrace;
  session?: Promise<SessionInfo | null>;
  /** True once the front ran the fast path for the request: the route does not look it up again. */
  fastPathTried?: boolean;
}

/** The request's locals: Express's `res.locals`, created here for a request the front serves before Express (which keeps them). */
function localsOf(res: ServerResponse): GraphqlLocals {
  const withLocals = res as ServerResponse & { locals?: GraphqlLocals };
  withLocals.locals ??= Object.create(null) as GraphqlLocals;
  return withLocals.locals;
}

/**
 * The handlers of `/graphql`, in order: methods, Vary, revalidation, CORS, the JSON body, the persisted
 * query guard, the request trace, the response cache's fast path, then Apollo; and the front that
 * runs the same fast path before Express, with the same headers and trace.
 */
export function graphqlRoute(options: GraphqlRouteOptions): GraphqlRoute {
  const { config } = options;
  const fastPath = createFastPath(options);
  const setHeaders = graphqlHeaders(config);
  const handlers = routeHandlers(options, (req, res, next) => (localsOf(res).fastPathTried ? next() : fastPath(req, res, next)));
  const front = (app: RequestListener): RequestListener =>
    responseFront<FrontRequest, ServerResponse>({
      path: '/graphql',
      maxBodyBytes: MAX_BODY_BYTES,
      fastPath,
      prepare: (req, res, serve) => {
        // What the route's middleware sets before its fast path (Express sets them again, alike, on what it is handed).
        setHeaders(res);
        localsOf(res).fastPathTried = true;
        beginTrace(config, req, res, serve);
      },
      next: app,
    });
  return { handlers, front };
}

/** The Express handlers of `/graphql` (see {@link graphqlRoute}), with `fastPath` in its place. */
function routeHandlers(options: GraphqlRouteOptions, fastPath: RequestHandler): RequestHandler[] {
  const { logger, services, cache, fieldCache, reads } = options;
  return [
    onlyGraphqlMethods,
    // Every response may depend on the token: no browser cache may answer another token with it.
    varyByAuthorization,
    // fetch's revalidations (If-None-Match with Cache-Control: no-cache) are answered 304 too.
    revalidateByETag,
    // A shared cache in front keeps only a stored GET whose surrogate keys it is purged by.
    ...(options.config.sharedCache.surrogateKeyHeader === 'off' ? [] : [surrogateNoStore]),
    cors<cors.CorsRequest>(),
    replayingJson(express.json({ limit: MAX_BODY_BYTES })),
    // A persisted query's version or hash wrong: a 400 with a code (Apollo's own answer has none).
    persistedQueryGuard,
    traceRequests(options.config),
    // A stored response is answered here, before Apollo's per-request work (CACHE_RESPONSES),
    // unless the front already looked it up.
    fastPath,
    expressMiddleware(options.apollo, {
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
  ];
}

/** Gives each request its trace (`res.locals.trace`), and runs a request that may write traced; the front's requests have theirs. */
function traceRequests(config: Config): RequestHandler {
  return (req, res, next) => (localsOf(res).trace ? next() : beginTrace(config, req, res, () => next()));
}

/** Gives the request its trace, and calls `next` traced when the request may write (or REQUEST_TRACE=all). */
function beginTrace(config: Config, req: IncomingMessage & { body?: unknown }, res: ServerResponse, next: () => void): void {
  const trace = createTrace();
  localsOf(res).trace = trace;
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
}

/** The response cache's fast path: a stored response answered before Apollo's per-request work (the route's, and the front's). */
function createFastPath({ config, logger, metrics, cache, services, schema, flights }: GraphqlRouteOptions) {
  const traceOf = (res: ServerResponse): RequestTrace => localsOf(res).trace as RequestTrace;
  return responseFastPath<IncomingMessage & { body?: unknown }, ServerResponse>({
    cache,
    logger,
    schema,
    flights,
    maxTokens: config.limits.maxTokens,
    trace: (_req, res) => traceOf(res),
    session: (req, res) => {
      const token = parseBearer(req.headers.authorization);
      if (!token) return null;
      // Kept for the request's context, which does not resolve it again.
      const session = services.auth.resolveSession(token, traceOf(res));
      localsOf(res).session = session;
      return { id: token, live: session.then((live) => live !== null) };
    },
    onHit: (_req, res, hit) => {
      traceOf(res).response = hit.l1 ? 'HIT_L1' : 'HIT';
      countRequest(metrics, traceOf(res), 'query', 'ok');
    },
    // None in production, where a hit is then written as stored, unparsed.
    ...(config.production ? {} : { extensions: (_req: IncomingMessage, res: ServerResponse) => traceExtensions(traceOf(res)) }),
    cacheControl: (policy) => cacheControlHeader(policy, { maxAge: config.httpCacheMaxAge }),
  });
}

/**
 * The headers the route's middleware sets before its fast path, for a hit of the front: Vary
 * ({@link varyByAuthorization}), Surrogate-Control ({@link surrogateNoStore}) and CORS's
 * (`cors()`: any origin), with the names those set them with.
 */
function graphqlHeaders(config: Config): (res: ServerResponse) => void {
  const surrogate = config.sharedCache.surrogateKeyHeader !== 'off';
  return (res) => {
    res.setHeader('Vary', 'Authorization');
    if (surrogate) res.setHeader('surrogate-control', SURROGATE_NO_STORE['surrogate-control']);
    res.setHeader('Access-Control-Allow-Origin', '*');
  };
}

/**
 * `parser` (express.json), which also answers a body the front read but could not parse (empty,
 * malformed: `rawBody`), from a replay of its bytes: the same 400s, with the same messages.
 */
function replayingJson(parser: RequestHandler): RequestHandler {
  return (req, res, next) => {
    const replay = replayedBody(req as FrontRequest);
    if (!replay) return parser(req, res, next);
    const replayed = replay as unknown as Request;
    parser(replayed, res, (error?: unknown) => {
      req.body = replayed.body;
      next(error);
    });
  };
}
/**
 * `Surrogate-Control: no-store` on every /graphql response (errors, 405s and fast-path hits
 * included), for a shared cache in front (SURROGATE_KEY_HEADER): only a GET of a response stored
 * with surrogate keys (computed, or a hit) replaces it with a max-age and those keys (`storedHeaders`, apollo.ts),
 * so that whatever such a cache keeps is purged when something it read changes.
 */
const surrogateNoStore: RequestHandler = (_req, res, next) => {
  res.setHeader('surrogate-control', SURROGATE_NO_STORE['surrogate-control']);
  next();
};

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
export const bodyErrorHandler: ErrorRequestHandler = (error: { status?: number; type?: string; message?: string }, _req, res, next) => {
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
