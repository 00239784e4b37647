import { createHash } from 'node:crypto';
import { HeaderMap, type ApolloServerPlugin } from '@apollo/server';
import { TypeInfo, isAbstractType, visit, visitWithTypeInfo, type DocumentNode, type GraphQLSchema } from 'graphql';
import type { Cache } from '../cache/index.js';
import { stableStringify } from '../cache/field-cache.js';
import type { ResponseTicket } from '../cache/response-store.js';
import type { GraphQLContext } from '../context.js';
import type { Logger } from '../logger.js';

/** What a stored response holds: its data and the cache policy it was computed with. */
interface StoredResponse {
  policy: { maxAge: number; scope: 'PUBLIC' | 'PRIVATE' };
  data: Record<string, unknown> | null;
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
          const hash = createHash('sha256')
            .update(stableStringify([queryHash, request.operationName ?? null, request.variables ?? {}, contextValue.token]))
            .digest('base64url');
          try {
            const found = await responses.lookup(hash, trace);
            if (found.kind === 'hit') {
              const stored = JSON.parse(found.body.toString()) as StoredResponse;
              overallCachePolicy.replace(stored.policy);
              trace.response = 'HIT';
              count(true);
              return {
                http: { status: undefined, headers: new HeaderMap() },
                body: { kind: 'single', singleResult: { data: stored.data } },
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
          const stored: StoredResponse = {
            policy: { maxAge: policy.maxAge, scope: policy.scope },
            data: (result.data ?? null) as Record<string, unknown> | null,
          };
          try {
            await responses.store(ticket, dependencies, JSON.stringify(stored), ttlMs, trace);
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
