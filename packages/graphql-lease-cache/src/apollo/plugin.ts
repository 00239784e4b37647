import { HeaderMap, type ApolloServerPlugin, type BaseContext } from '@apollo/server';
import { ResponseRequests, type ResponseCacheOptions } from '../response/cached-response.js';
import type { CachePolicy } from '../response/stored.js';

/** What {@link ResponseCachePluginOptions.storedHeaders} is told of a stored response, just stored or a hit. */
export interface StoredResponse {
  /** The surrogate keys stored with it (the `surrogateKeys` option's; empty without it, or for a response stored without any). */
  surrogateKeys: readonly string[];
  /** The response's cache policy. */
  policy: CachePolicy;
  /** The HTTP method of the request (GET, POST). */
  method: string | undefined;
  /** True when the request was answered from the stored response (a HIT), false when it computed and stored it. */
  hit: boolean;
}

/** Options of {@link responseCachePlugin}: the hooks of {@link ResponseCacheOptions}, as Apollo's response-cache plugin takes them. */
export interface ResponseCachePluginOptions<C extends BaseContext> extends ResponseCacheOptions<C> {
  /**
   * Headers for a stored response: one this request computed and stored, or a hit of one
   * (surrogate keys for a shared HTTP cache, purged when one of its dependencies is invalidated);
   * default none. Not called for a response not stored, or one invalidated while it was computed.
   */
  storedHeaders?(ctx: C, stored: StoredResponse): Record<string, string> | null;
}

/**
 * Whole responses of queries in Apollo Server, never stale (response-store.ts has the protocol).
 * Needs Apollo's cache-control plugin (built in): a response is stored when its policy has
 * `maxAge > 0` and it has no errors.
 *
 * - A query whose response is stored is answered from it with one Redis round trip and no
 *   execution; the response carries the same data and the stored policy (so the same
 *   `Cache-Control`).
 * - Otherwise the query runs, and every cache key and tag its reads go through is recorded
 *   (the `trace` hook's `dependencies`). The response is stored under the ticket its lookup
 *   returned, unless something it read was invalidated meanwhile.
 * - The key is the document's hash, the operation name, the declared variables as execution
 *   coerces them and the `sessionId` of a live session (see the options).
 * - A PRIVATE response is stored only with a live session, and lives no longer than it.
 * - What one client can make the server store is bounded (`budget`, `clientId`).
 * - When Redis fails, or an invalidation waits for delivery in this process, the layer steps
 *   aside (BYPASS) and the query runs as if it did not exist.
 *
 * A no-op plugin when the cache has no response store (`settings.responses` false).
 */
export function responseCachePlugin<C extends BaseContext>(options: ResponseCachePluginOptions<C>): ApolloServerPlugin<C> {
  const requests = new ResponseRequests<C>(options);
  if (!requests.enabled) return {};
  return {
    async requestDidStart() {
      // The stored response this request was answered from (a HIT), for its headers.
      let hit: { policy: CachePolicy; surrogateKeys: readonly string[] } | null = null;
      return {
        async responseForOperation({ operation, queryHash, request, contextValue, overallCachePolicy, schema }) {
          // `operation` is missing when none could be chosen (several, no or a wrong name): Apollo
          // still asks, then answers OPERATION_RESOLUTION_FAILURE itself.
          const chosen = operation as typeof operation | undefined;
          if (chosen?.operation !== 'query' || !queryHash) return null;
          const found = await requests.begin(contextValue, {
            schema,
            queryHash,
            operationName: request.operationName ?? null,
            operation: chosen,
            variables: request.variables,
          });
          if (!found) return null;
          hit = found;
          overallCachePolicy.replace(found.policy);
          return {
            http: { status: undefined, headers: new HeaderMap() },
            body: { kind: 'single', singleResult: { data: found.data } },
          };
        },

        async willSendResponse({ request, response, contextValue, overallCachePolicy, document, schema, queryHash }) {
          const method = request.http?.method;
          if (hit) {
            const headers = options.storedHeaders?.(contextValue, { ...hit, method, hit: true });
            for (const [name, value] of Object.entries(headers ?? {})) response.http.headers.set(name, value);
            return;
          }
          const single = response.body.kind === 'single' ? response.body.singleResult : null;
          const policy = single ? overallCachePolicy.policyIfCacheable() : null;
          const surrogateKeys = await requests.finish(contextValue, {
            schema,
            document,
            queryHash: queryHash ?? '',
            result: single ?? { errors: ['not a single result'] },
            policy,
          });
          if (!surrogateKeys || !policy || !options.storedHeaders) return;
          const headers = options.storedHeaders(contextValue, { surrogateKeys, policy, method, hit: false });
          for (const [name, value] of Object.entries(headers ?? {})) response.http.headers.set(name, value);
        },
      };
    },
  };
}
