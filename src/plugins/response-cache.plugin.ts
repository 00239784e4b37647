import { createHash } from 'node:crypto';
import { HeaderMap, type ApolloServerPlugin } from '@apollo/server';
import { TypeInfo, isAbstractType, visit, visitWithTypeInfo, type DocumentNode, type GraphQLSchema } from 'graphql';
import type { Cache, CacheTrace, ResponseLookup, ResponseTicket } from 'graphql-lease-cache';
import type { RequestHandler } from 'express';
import Negotiator from 'negotiator';
import { parseBearer, type GraphQLContext } from '../context.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { SessionInfo } from '../services/auth.service.js';
import { mayWrite, type RequestTrace } from '../trace.js';
import { cacheControlHeader } from './http-cache.plugin.js';
import type { ResponseBudget } from './response-budget.js';
import { responseKey, type OperationShapes } from './response-key.js';

/** The cache policy a stored response was computed with. */
interface StoredPolicy {
  maxAge: number;
  scope: 'PUBLIC' | 'PRIVATE';
}

/**
 * A stored response: its policy as JSON on the first line, then the HTTP body exactly as Apollo
 * sends it in production (`{"data":…}` and a newline), so that a hit before Apollo's pipeline
 * ({@link responseFastPath}) writes it as it is, with neither parsing nor serializing.
 */
function encodeStored(policy: StoredPolicy, data: unknown): string {
  return `${JSON.stringify(policy)}\n${JSON.stringify({ data })}\n`;
}

function decodeStored(stored: Buffer | string): { policy: StoredPolicy; body: string } {
  const text = stored.toString();
  const newline = text.indexOf('\n');
  return { policy: JSON.parse(text.slice(0, newline)) as StoredPolicy, body: text.slice(newline + 1) };
}

/** The name of the response layer in hit metrics and `cacheStats`. */
export const RESPONSE_STATS_NAME = 'Response';

/** The trace of no request: the response cache's own counts are not the request's cache hits and misses. */
const NO_REQUEST: CacheTrace = Object.freeze({});

/** How long a miss waits for the same computation under way before it executes the query itself, in milliseconds. */
const FLIGHT_WAIT_MS = 2_000;

interface Flight {
  ticket: ResponseTicket;
  result: Promise<string | null>;
  settle: (stored: string | null) => void;
}

/**
 * The response computations under way in this process, by response key: single flight for the
 * misses that follow an invalidation. A miss whose lookup returned the same shard incarnation
 * and clock as a computation under way waits for that computation's response instead of
 * executing the query again, and is answered as a hit.
 *
 * Why that is never stale: equal clocks mean that no invalidation reached the shard between the
 * two lookups. A write that returned before the waiter's lookup ran its shard script before it,
 * hence before the first lookup, and after its own invalidation of what it changed: the first
 * computation read what that write left. A write after the waiter's lookup overlaps the
 * waiter's request, which may show it or not. The response is handed over whether or not the
 * store then succeeds (a store refused for a write during the computation is such a write).
 */
export class ResponseFlights {
  readonly #flights = new Map<string, Flight>();

  /** The response of the computation of `hash` under way with this ticket's incarnation and clock, or null (there is none). */
  join(hash: string, ticket: ResponseTicket): Promise<string | null> | null {
    const flight = this.#flights.get(hash);
    if (!flight || flight.ticket.incarnation !== ticket.incarnation || flight.ticket.clock !== ticket.clock) return null;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<null>((resolve) => {
      timer = setTimeout(resolve, FLIGHT_WAIT_MS, null);
    });
    return Promise.race([flight.result, timeout]).finally(() => clearTimeout(timer));
  }

  /** Records the computation of `hash` under `ticket`; whoever calls it must {@link settle} it. */
  lead(hash: string, ticket: ResponseTicket): void {
    let settle!: (stored: string | null) => void;
    const result = new Promise<string | null>((resolve) => {
      settle = resolve;
    });
    this.#flights.set(hash, { ticket, result, settle });
  }

  /** Hands the computation's stored form (null: not storable) to its waiters; a no-op for any other ticket. */
  settle(hash: string, ticket: ResponseTicket, stored: string | null): void {
    const flight = this.#flights.get(hash);
    if (flight?.ticket !== ticket) return;
    this.#flights.delete(hash);
    flight.settle(stored);
  }

  /** Computations under way (for tests). */
  get size(): number {
    return this.#flights.size;
  }
}

/**
 * Whole responses of queries, never stale (packages/graphql-lease-cache/src/response-store.ts has the protocol).
 *
 * - A query whose response is stored is answered from it with one Redis round trip and no
 *   execution (Apollo caches the parsed and validated document by its hash already); the
 *   response carries the same data, `Cache-Control` (the stored policy) and `ETag`.
 * - Otherwise the query runs, and every cache key and tag its reads go through is recorded
 *   (`trace.dependencies`). A response without errors whose policy has `maxAge > 0` is stored
 *   under the ticket its lookup returned, unless something it read was invalidated meanwhile.
 * - The key (response-key.ts) is the document's hash, the operation name, the declared
 *   variables as execution coerces them and, when the request's token opens a live session, the
 *   token: an authenticated request never shares a response with another, and neither undeclared
 *   variables nor a token that opens no session (such a request is anonymous) name another one.
 *   A PRIVATE response is stored only for a request that resolved a live session, and lives no
 *   longer than that session; it depends on the session's key (read through the cache core),
 *   so signing out, or the account's erasure, voids it. An anonymous request never stores one.
 *   The session is resolved on every request that carries a token, hits included.
 * - What one client can make the server store is bounded (response-budget.ts): a response over
 *   a size, or past the client's bytes per minute, is sent but not stored.
 * - Field dependencies (`cache.responseFields`): for each entity type whose fields some writes
 *   name (a product's `viewCount`), a response that selects such a field also records
 *   `<entity key>#<field>` for each entity of the type it read. Those writes void only these.
 *   A response that selects none of them (a catalog page without `viewCount`) survives them.
 * - When Redis fails, or an invalidation waits for delivery in this process, the layer steps
 *   aside (BYPASS) and the query runs as if it did not exist.
 */
export function responseCachePlugin(options: {
  cache: Cache;
  logger: Logger;
  flights: ResponseFlights;
  /** Decides which executed responses may be stored, per client. */
  budget: ResponseBudget;
}): ApolloServerPlugin<GraphQLContext> {
  const { cache, logger, flights, budget } = options;
  const responses = cache.core.responses;
  const count = (hit: boolean): void => {
    // Counted in the stats and the metrics, not in the request's own cache hits and misses.
    cache.events.lookup(RESPONSE_STATS_NAME, hit ? 1 : 0, hit ? 0 : 1, NO_REQUEST);
  };
  return {
    async requestDidStart() {
      let ticket: ResponseTicket | undefined;
      let key: string | undefined;
      return {
        async responseForOperation({ operation, queryHash, request, contextValue, overallCachePolicy, schema }) {
          // `operation` is missing when none could be chosen (several, no or a wrong name): Apollo
          // still asks, then answers OPERATION_RESOLUTION_FAILURE itself.
          const chosen = operation as typeof operation | undefined;
          if (!responses || chosen?.operation !== 'query' || !queryHash) return null;
          const trace = contextValue.trace;
          if (!cache.core.responsesUsable) {
            trace.response = 'BYPASS';
            return null;
          }
          // A token is part of the key only when it opens a live session: anyone else is anonymous.
          let liveToken: string | null = null;
          try {
            liveToken = contextValue.token && (await contextValue.session()) ? contextValue.token : null;
          } catch {
            // The session could not be resolved: the resolvers that need it meet (and report) the failure.
            trace.response = 'BYPASS';
            return null;
          }
          const hash = responseKey(schema, {
            queryHash,
            operationName: request.operationName ?? null,
            operation: chosen,
            variables: request.variables,
            liveToken,
          });
          if (hash === null) {
            trace.response = 'BYPASS';
            return null;
          }
          // The fast path looked this request up already (a miss, or Redis failed): not again.
          const earlier = trace.responseLookup;
          if (earlier === 'failed') {
            trace.response = 'BYPASS';
            return null;
          }
          key = hash;
          if (earlier?.hash === hash) {
            ticket = earlier.ticket;
            trace.dependencies = new Set();
            trace.response = 'MISS';
            count(false);
            return null;
          }
          try {
            const found = await responses.lookup(hash, trace);
            if (found.kind === 'hit') {
              const stored = decodeStored(found.body);
              overallCachePolicy.replace(stored.policy);
              trace.response = 'HIT';
              count(true);
              const { data } = JSON.parse(stored.body) as { data: Record<string, unknown> | null };
              return {
                http: { status: undefined, headers: new HeaderMap() },
                body: { kind: 'single', singleResult: { data } },
              };
            }
            ticket = found.ticket;
            trace.dependencies = new Set();
            trace.response = 'MISS';
            count(false);
          } catch (error) {
            logger.debug({ err: error }, 'response cache lookup failed; executing');
            trace.response = 'BYPASS';
          }
          return null;
        },

        async willSendResponse({ response, contextValue, overallCachePolicy, document, schema, queryHash }) {
          const trace = contextValue.trace;
          const dependencies = trace.dependencies;
          trace.dependencies = undefined;
          if (!responses || !ticket || !key) return;
          const storable =
            dependencies && document && response.body.kind === 'single'
              ? storableResponse(response.body.singleResult, overallCachePolicy.policyIfCacheable(), contextValue)
              : null;
          flights.settle(key, ticket, storable?.stored ?? null);
          // An invalidation this process could not deliver may not have reached the responses.
          if (!storable || !dependencies || !document || !cache.core.responsesUsable) return;
          if (!(await budget.admit(contextValue.clientIp, Buffer.byteLength(storable.stored)))) return;
          addFieldDependencies(cache, dependencies, selectedFields(schema, document, queryHash));
          try {
            await responses.store(ticket, dependencies, storable.stored, storable.ttlMs, trace);
          } catch (error) {
            logger.debug({ err: error }, 'response cache store failed');
          }
        },
      };
    },
  };
}

/** The stored form of an executed response and its time to live, or null when it may not be stored. */
function storableResponse(
  result: { data?: unknown; errors?: readonly unknown[] },
  policy: { maxAge: number; scope?: 'PUBLIC' | 'PRIVATE' } | null,
  context: GraphQLContext,
): { stored: string; ttlMs: number } | null {
  if (result.errors?.length || !policy) return null;
  const scope = policy.scope ?? 'PUBLIC';
  let ttlMs = policy.maxAge * 1_000;
  if (scope === 'PRIVATE') {
    // A hit does not resolve the session: the response must end with it (and an anonymous or
    // signed-out request has none, so never stores a private response).
    const expiresAt = context.sessionExpiresAt();
    if (!context.token || expiresAt === null) return null;
    ttlMs = Math.min(ttlMs, expiresAt - Date.now());
    if (ttlMs <= 0) return null;
  }
  return { stored: encodeStored({ maxAge: policy.maxAge, scope }, result.data ?? null), ttlMs };
}

/** `Type.field` of every field a document selects (for an interface or union, on each of its types), by document hash. */
const selectedFieldsByDocument = new Map<string, ReadonlySet<string>>();
const SELECTED_FIELDS_MEMO = 1_000;

function selectedFields(schema: GraphQLSchema, document: DocumentNode, queryHash: string): ReadonlySet<string> {
  const known = selectedFieldsByDocument.get(queryHash);
  if (known) return known;
  const fields = new Set<string>();
  const typeInfo = new TypeInfo(schema);
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      Field(node) {
        const parent = typeInfo.getParentType();
        if (!parent) return;
        const types = isAbstractType(parent) ? schema.getPossibleTypes(parent) : [parent];
        for (const type of types) fields.add(`${type.name}.${node.name.value}`);
      },
    }),
  );
  if (selectedFieldsByDocument.size >= SELECTED_FIELDS_MEMO) selectedFieldsByDocument.clear();
  selectedFieldsByDocument.set(queryHash, fields);
  return fields;
}

/** Adds `<entity key>#<field>` for each entity read whose type has a field-tracked field the document selects. */
function addFieldDependencies(cache: Cache, dependencies: Set<string>, selected: ReadonlySet<string>): void {
  const wanted = new Map<string, string[]>();
  for (const [type, fields] of cache.responseFields) {
    const chosen = [...fields].filter((field) => selected.has(`${type}.${field}`));
    if (chosen.length > 0) wanted.set(type, chosen);
  }
  if (wanted.size === 0) return;
  for (const dependency of [...dependencies]) {
    const type = cache.keys.entityType(dependency);
    const fields = type === null ? undefined : wanted.get(type);
    if (fields) for (const field of fields) dependencies.add(cache.keys.fieldDependency(dependency, field));
  }
}

/** Options of {@link responseFastPath}. */
export interface ResponseFastPathOptions {
  cache: Cache;
  metrics: Metrics;
  logger: Logger;
  /** The schema the variables are coerced by (as execution would). */
  schema: GraphQLSchema;
  /** The operations of the documents seen, parsed once. */
  shapes: OperationShapes;
  /** The live session of a token (the auth service's, through the session cache); null when none. */
  resolveSession(token: string, trace: RequestTrace): Promise<SessionInfo | null>;
  /** Development: `extensions.cache` on every response, as the trace plugin adds it. */
  exposeTrace: boolean;
  /** Shared with {@link responseCachePlugin}, which settles what this path leads. */
  flights: ResponseFlights;
}

/**
 * Express middleware before Apollo: a JSON POST of a query whose response is stored is answered
 * here, with one Redis round trip and none of Apollo's per-request work (context, DataLoaders,
 * plugins, serializing). Only what is stored can be served, so only documents that Apollo parsed,
 * validated and ran as queries before; anything else (a GET, a persisted query, a mutation, a
 * miss) goes on to Apollo, which then stores it. A miss hands its ticket on
 * (`trace.responseLookup`), so the request is looked up once either way. The hit carries what
 * the executed response carries: the same body, `Cache-Control` from the stored policy, the same
 * counts and metrics; `extensions.cache` in development.
 *
 * A request with a token has its session resolved on every hit: the response stored for the
 * token is looked up at the same time (two calls in flight together, one round trip of waiting)
 * and served only when the session is live now; otherwise the request is anonymous and looks up
 * the anonymous response. The session found is handed to the request's context, not resolved again.
 */
export function responseFastPath(options: ResponseFastPathOptions): RequestHandler {
  const { cache, metrics, logger, schema, shapes, exposeTrace, flights } = options;
  return (req, res, next) => {
    const responses = cache.core.responses;
    const trace = res.locals.trace as RequestTrace | undefined;
    const request = plainQuery(req.method, req.body);
    if (!responses || !trace || !request || !cache.core.responsesUsable) return next();
    // The content type Apollo would choose for this Accept; anything else is Apollo's to answer (406).
    const contentType = negotiatedType(req.headers.accept);
    if (!contentType) return next();
    const queryHash = createHash('sha256').update(request.query).digest('hex');
    const operation = shapes.operation(queryHash, request.query, request.operationName);
    if (operation?.operation !== 'query') return next();
    const keyFor = (liveToken: string | null) =>
      responseKey(schema, { queryHash, operationName: request.operationName, operation, variables: request.variables, liveToken });
    const token = parseBearer(req.headers.authorization);
    /** Answers from a stored form; false when it is unreadable (then the query is executed). */
    const send = (stored: Buffer | string): boolean => {
      let decoded: { policy: StoredPolicy; body: string };
      let sent: string;
      try {
        decoded = decodeStored(stored);
        sent = exposeTrace ? withTrace(decoded.body, trace) : decoded.body;
      } catch (error) {
        // Unreadable (corrupt, or written by an incompatible version): executed instead.
        logger.warn({ err: error }, 'unreadable stored response; executing');
        return false;
      }
      const { policy } = decoded;
      trace.response = 'HIT';
      cache.events.lookup(RESPONSE_STATS_NAME, 1, 0, NO_REQUEST);
      metrics.graphqlOperations.inc({ type: 'query', outcome: 'ok' });
      trace.end?.();
      if (trace.traced) metrics.requestMongoCommands.observe(trace.mongoCommands);
      metrics.requestRedisRoundTrips.observe(trace.redisRoundTrips);
      res.status(200);
      res.setHeader('content-type', contentType);
      res.setHeader('cache-control', cacheControlHeader(policy));
      res.send(sent);
      return true;
    };
    /** The key this request is answered under and what its lookup found; null when it has none. */
    const lookUp = async (): Promise<{ hash: string; found: ResponseLookup } | null> => {
      if (token) {
        const session = options.resolveSession(token, trace);
        res.locals.session = session;
        const tokenHash = keyFor(token);
        if (tokenHash === null) return null;
        const [live, found] = await Promise.all([session, responses.lookup(tokenHash, trace)]);
        if (live) return { hash: tokenHash, found };
      }
      const hash = keyFor(null);
      return hash === null ? null : { hash, found: await responses.lookup(hash, trace) };
    };
    lookUp().then(
      (looked) => {
        if (!looked) return next();
        const { hash, found } = looked;
        if (found.kind === 'hit') {
          if (send(found.body)) return;
          trace.responseLookup = 'failed';
          return next();
        }
        const { ticket } = found;
        const joined = flights.join(hash, ticket);
        if (joined) {
          // The same response is being computed from the same state: its answer is this one's.
          void joined.then((stored) => {
            if (stored !== null && send(stored)) return;
            trace.responseLookup = { hash, ticket };
            next();
          });
          return;
        }
        flights.lead(hash, ticket);
        // Settled by the plugin when the response is known; this only frees the waiters of a
        // request that ended before (an error, a client that went away).
        res.once('close', () => flights.settle(hash, ticket, null));
        trace.responseLookup = { hash, ticket };
        next();
      },
      (error: unknown) => {
        logger.debug({ err: error }, 'response cache lookup failed; executing');
        // A session that failed to resolve fails the request's context the same way: it is not resolved again.
        trace.responseLookup = 'failed';
        next();
      },
    );
  };
}

const APPLICATION_JSON = 'application/json; charset=utf-8';
const GRAPHQL_RESPONSE_JSON = 'application/graphql-response+json; charset=utf-8';
/** Apollo's choices for a single result (runHttpQuery), in its order: the last is not served here. */
const SINGLE_RESULT_TYPES = [APPLICATION_JSON, GRAPHQL_RESPONSE_JSON, 'application/json; callbackSpec=1.0; charset=utf-8'];

/** The content type Apollo answers a single result with for `accept`, when it is one a stored response may be sent as. */
function negotiatedType(accept: string | undefined): string | null {
  if (!accept) return APPLICATION_JSON;
  const preferred = new Negotiator({ headers: { accept } }).mediaType(SINGLE_RESULT_TYPES);
  return preferred === APPLICATION_JSON || preferred === GRAPHQL_RESPONSE_JSON ? preferred : null;
}

/** `query`, `operationName` and `variables` of a JSON POST that may be a stored query; null for anything else. */
function plainQuery(method: string, body: unknown): { query: string; operationName: string | null; variables: unknown } | null {
  if (method !== 'POST' || typeof body !== 'object' || body === null || Array.isArray(body) || mayWrite(body)) return null;
  const { query, operationName, variables, extensions } = body as Record<string, unknown>;
  if (typeof query !== 'string') return null;
  if (operationName !== undefined && operationName !== null && typeof operationName !== 'string') return null;
  if (variables !== undefined && variables !== null && (typeof variables !== 'object' || Array.isArray(variables))) return null;
  // A persisted-query extension is Apollo's to check and count.
  if (extensions !== undefined && extensions !== null) return null;
  return { query, operationName: (operationName as string | null | undefined) ?? null, variables };
}

/** The body with `extensions.cache`, as the trace plugin shapes it (development only). */
function withTrace(body: string, trace: RequestTrace): string {
  const parsed = JSON.parse(body) as Record<string, unknown>;
  const cacheTrace = {
    hits: trace.cacheHits,
    misses: trace.cacheMisses,
    mongoCommands: trace.traced ? trace.mongoCommands : null,
    redisRoundTrips: trace.redisRoundTrips,
    response: 'HIT',
  };
  return `${JSON.stringify({ ...parsed, extensions: { cache: cacheTrace } })}\n`;
}
