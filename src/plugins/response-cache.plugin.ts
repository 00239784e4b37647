import { createHash } from 'node:crypto';
import { HeaderMap, type ApolloServerPlugin } from '@apollo/server';
import { TypeInfo, isAbstractType, visit, visitWithTypeInfo, type DocumentNode, type GraphQLSchema } from 'graphql';
import type { Cache } from '../cache/index.js';
import { stableStringify } from '../cache/field-cache.js';
import type { RequestHandler } from 'express';
import Negotiator from 'negotiator';
import type { ResponseTicket } from '../cache/response-store.js';
import { parseBearer, type GraphQLContext } from '../context.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { mayWrite, type RequestTrace } from '../trace.js';

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

function decodeStored(stored: Buffer): { policy: StoredPolicy; body: string } {
  const text = stored.toString();
  const newline = text.indexOf('\n');
  return { policy: JSON.parse(text.slice(0, newline)) as StoredPolicy, body: text.slice(newline + 1) };
}

/** The key of a response: the document's hash, the operation, the variables and the token (any viewer's own). */
function responseKey(queryHash: string | undefined, operationName: unknown, variables: unknown, token: string | null): string {
  return createHash('sha256')
    .update(stableStringify([queryHash, operationName ?? null, variables ?? {}, token]))
    .digest('base64url');
}

/** The name of the response layer in hit metrics and `cacheStats`. */
export const RESPONSE_STATS_NAME = 'Response';

/**
 * Whole responses of queries, never stale (src/cache/response-store.ts has the protocol).
 *
 * - A query whose response is stored is answered from it with one Redis round trip and no
 *   execution (Apollo caches the parsed and validated document by its hash already); the
 *   response carries the same data, `Cache-Control` (the stored policy) and `ETag`.
 * - Otherwise the query runs, and every cache key and tag its reads go through is recorded
 *   (`trace.dependencies`). A response without errors whose policy has `maxAge > 0` is stored
 *   under the ticket its lookup returned, unless something it read was invalidated meanwhile.
 * - The key is the document's hash, the operation name, the variables and, when the request
 *   carries a token, the token: an authenticated request never shares a response with another.
 *   A PRIVATE response is stored only for a request that resolved a live session, and lives no
 *   longer than that session; it depends on the session's key (read through the cache core),
 *   so signing out, or the account's erasure, voids it. An anonymous request never stores one.
 * - Field dependencies (`cache.responseFields`): for each entity type whose fields some writes
 *   name (a product's `viewCount`), a response that selects such a field also records
 *   `<entity key>#<field>` for each entity of the type it read. Those writes void only these.
 *   A response that selects none of them (a catalog page without `viewCount`) survives them.
 * - When Redis fails, or an invalidation waits for delivery in this process, the layer steps
 *   aside (BYPASS) and the query runs as if it did not exist.
 */
export function responseCachePlugin(options: { cache: Cache; logger: Logger }): ApolloServerPlugin<GraphQLContext> {
  const { cache, logger } = options;
  const responses = cache.core.responses;
  const count = (hit: boolean): void => {
    (hit ? cache.metrics.hits : cache.metrics.misses).inc({ name: RESPONSE_STATS_NAME });
    cache.stats.record(RESPONSE_STATS_NAME, hit ? 1 : 0, hit ? 0 : 1);
  };
  return {
    async requestDidStart() {
      let ticket: ResponseTicket | undefined;
      return {
        async responseForOperation({ operation, queryHash, request, contextValue, overallCachePolicy }) {
          // `operation` is missing when none could be chosen (several, no or a wrong name): Apollo
          // still asks, then answers OPERATION_RESOLUTION_FAILURE itself.
          const kind = (operation as typeof operation | undefined)?.operation;
          if (!responses || kind !== 'query') return null;
          const trace = contextValue.trace;
          if (!cache.core.responsesUsable) {
            trace.response = 'BYPASS';
            return null;
          }
          const hash = keyOf(queryHash, request, contextValue.token);
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
          if (!responses || !ticket || !dependencies || !document || response.body.kind !== 'single') return;
          const result = response.body.singleResult;
          if (result.errors?.length) return;
          const policy = overallCachePolicy.policyIfCacheable();
          if (!policy) return;
          let ttlMs = policy.maxAge * 1_000;
          if (policy.scope === 'PRIVATE') {
            // A hit does not resolve the session: the response must end with it (and an
            // anonymous or signed-out request has none, so never stores a private response).
            const expiresAt = contextValue.sessionExpiresAt();
            if (!contextValue.token || expiresAt === null) return;
            ttlMs = Math.min(ttlMs, expiresAt - Date.now());
            if (ttlMs <= 0) return;
          }
          // An invalidation this process could not deliver may not have reached the responses.
          if (!cache.core.responsesUsable) return;
          addFieldDependencies(cache, dependencies, selectedFields(schema, document, queryHash));
          const stored = encodeStored({ maxAge: policy.maxAge, scope: policy.scope }, result.data ?? null);
          try {
            await responses.store(ticket, dependencies, stored, ttlMs, trace);
          } catch (error) {
            logger.debug({ err: error }, 'response cache store failed');
          }
        },
      };
    },
  };
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
  /** Development: `extensions.cache` on every response, as the trace plugin adds it. */
  exposeTrace: boolean;
}

/**
 * Express middleware before Apollo: a JSON POST of a query whose response is stored is answered
 * here, with one Redis round trip and none of Apollo's per-request work (context, DataLoaders,
 * plugins, serializing). Only what is stored can be served, so only documents that Apollo parsed,
 * validated and ran as queries before; anything else (a GET, a persisted query, a document that
 * may hold a mutation, a miss) goes on to Apollo, which then stores it. A miss hands its ticket
 * on (`trace.responseLookup`), so the request is looked up once either way. The hit carries
 * what the executed response carries: the same body, `Cache-Control` from the stored policy,
 * the same counts and metrics; `extensions.cache` in development.
 */
export function responseFastPath(options: ResponseFastPathOptions): RequestHandler {
  const { cache, metrics, logger, exposeTrace } = options;
  return (req, res, next) => {
    const responses = cache.core.responses;
    const trace = res.locals.trace as RequestTrace | undefined;
    const request = plainQuery(req.method, req.body);
    if (!responses || !trace || !request || !cache.core.responsesUsable) return next();
    // The content type Apollo would choose for this Accept; anything else is Apollo's to answer (406).
    const contentType = negotiatedType(req.headers.accept);
    if (!contentType) return next();
    const hash = keyOf(createHash('sha256').update(request.query).digest('hex'), request, parseBearer(req.headers.authorization));
    if (hash === null) return next();
    responses.lookup(hash, trace).then(
      (found) => {
        if (found.kind === 'miss') {
          trace.responseLookup = { hash, ticket: found.ticket };
          return next();
        }
        let stored: { policy: StoredPolicy; body: string };
        let sent: string;
        try {
          stored = decodeStored(found.body);
          sent = exposeTrace ? withTrace(stored.body, trace) : stored.body;
        } catch (error) {
          // Unreadable (corrupt, or written by an incompatible version): executed instead.
          logger.warn({ err: error }, 'unreadable stored response; executing');
          trace.responseLookup = 'failed';
          return next();
        }
        const { policy } = stored;
        trace.response = 'HIT';
        cache.metrics.hits.inc({ name: RESPONSE_STATS_NAME });
        cache.stats.record(RESPONSE_STATS_NAME, 1, 0);
        metrics.graphqlOperations.inc({ type: 'query', outcome: 'ok' });
        trace.end?.();
        if (trace.traced) metrics.requestMongoCommands.observe(trace.mongoCommands);
        metrics.requestRedisRoundTrips.observe(trace.redisRoundTrips);
        res.status(200);
        res.setHeader('content-type', contentType);
        res.setHeader('cache-control', `max-age=${policy.maxAge}, ${policy.scope.toLowerCase()}`);
        res.send(sent);
      },
      (error: unknown) => {
        logger.debug({ err: error }, 'response cache lookup failed; executing');
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

/**
 * {@link responseKey}, or null when the variables cannot be made a key (nested deeper than the
 * stack allows): such a request is executed as if the layer did not exist.
 */
function keyOf(
  queryHash: string | undefined,
  request: { operationName?: unknown; variables?: unknown },
  token: string | null,
): string | null {
  try {
    return responseKey(queryHash, request.operationName, request.variables, token);
  } catch {
    return null;
  }
}

/** `query`, `operationName` and `variables` of a JSON POST that may be a stored query; null for anything else. */
function plainQuery(method: string, body: unknown): { query: string; operationName: unknown; variables: unknown } | null {
  if (method !== 'POST' || typeof body !== 'object' || body === null || Array.isArray(body) || mayWrite(body)) return null;
  const { query, operationName, variables, extensions } = body as Record<string, unknown>;
  if (typeof query !== 'string') return null;
  if (operationName !== undefined && operationName !== null && typeof operationName !== 'string') return null;
  if (variables !== undefined && variables !== null && (typeof variables !== 'object' || Array.isArray(variables))) return null;
  // A persisted-query extension is Apollo's to check and count.
  if (extensions !== undefined && extensions !== null) return null;
  return { query, operationName, variables };
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
