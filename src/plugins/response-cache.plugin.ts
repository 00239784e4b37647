import { createHash } from 'node:crypto';
import { HeaderMap, type ApolloServerPlugin } from '@apollo/server';
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
 *   Only PUBLIC responses are stored so far: a PRIVATE one would outlive its session's expiry.
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
          if (!responses || operation.operation !== 'query') return null;
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

        async willSendResponse({ response, contextValue, overallCachePolicy }) {
          const trace = contextValue.trace;
          const dependencies = trace.dependencies;
          trace.dependencies = undefined;
          if (!responses || !ticket || !dependencies || response.body.kind !== 'single') return;
          const result = response.body.singleResult;
          if (result.errors?.length) return;
          const policy = overallCachePolicy.policyIfCacheable();
          if (!policy) return;
          // Not PRIVATE ones yet: a stored one would outlive its session's expiry (a hit does not
          // resolve the session), so its TTL must first be tied to the session's (issue 11).
          if (policy.scope === 'PRIVATE') return;
          const scope = 'PUBLIC';
          // An invalidation this process could not deliver may not have reached the responses.
          if (!cache.core.responsesUsable) return;
          const stored: StoredResponse = {
            policy: { maxAge: policy.maxAge, scope },
            data: (result.data ?? null) as Record<string, unknown> | null,
          };
          try {
            await responses.store(ticket, dependencies, JSON.stringify(stored), policy.maxAge * 1_000, trace);
          } catch (error) {
            logger.debug({ err: error }, 'response cache store failed');
          }
        },
      };
    },
  };
}
