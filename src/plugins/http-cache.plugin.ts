import { createHash } from 'node:crypto';
import type { ApolloServerPlugin } from '@apollo/server';
import type { RequestHandler } from 'express';

/** A response's cache policy as Apollo computes it (`policyIfCacheable()`); scope PUBLIC when missing. */
export interface HttpCachePolicy {
  /** In seconds; 0 is not cacheable. */
  maxAge: number;
  scope?: 'PUBLIC' | 'PRIVATE';
}

/** Options of {@link cacheControlHeader} and {@link httpCachePlugin}. */
export interface HttpCacheOptions {
  /** Send a public response's `max-age` (HTTP_CACHE_MAX_AGE): reused unasked, so possibly stale; default false. */
  maxAge?: boolean;
}

/**
 * The `Cache-Control` of a response with this policy (null: not cacheable, `no-store`). The one
 * place it is written, for executed responses ({@link httpCachePlugin}) and stored ones sent
 * before Apollo (the response fast path) alike:
 *
 * - PUBLIC: `no-cache, public`. A cache may keep it but revalidates every reuse (If-None-Match,
 *   a 304 while the data is the same): with `max-age=60` a browser showed a price for 60 s
 *   after a mutation had replaced it. `max-age=<maxAge>, public` only with `maxAge: true`.
 * - PRIVATE: `private, no-cache`. A browser's cache is shared by whoever uses the browser next;
 *   with a max-age it would answer the next user's request for the same URL from the previous
 *   user's response without asking. `no-cache` makes it revalidate (If-None-Match: a 304 only
 *   when the data, computed for the new request's token, is the same).
 * - Not cacheable (maxAge 0): `no-store`.
 */
export function cacheControlHeader(policy: HttpCachePolicy | null, options: HttpCacheOptions = {}): string {
  if (!policy || policy.maxAge <= 0) return 'no-store';
  if (policy.scope === 'PRIVATE') return 'private, no-cache';
  return options.maxAge ? `max-age=${policy.maxAge}, public` : 'no-cache, public';
}

/**
 * Express middleware before Apollo: a GET whose `If-None-Match` names an ETag is answered by that
 * ETag whatever its `Cache-Control` says. fetch (the Fetch standard) sends `Cache-Control:
 * no-cache` with every conditional request it makes, and Express's freshness check (`req.fresh`,
 * in `res.send`) then answers 200 with the body. `no-cache` asks caches on the way not to answer
 * unasked; this server is the origin, and RFC 9110 (13.1.2) lets it answer 304 when the
 * validator matches. (Only the freshness check reads the request's Cache-Control.)
 */
export const revalidateByETag: RequestHandler = (req, _res, next) => {
  if (req.method === 'GET' && req.headers['if-none-match'] !== undefined) delete req.headers['cache-control'];
  next();
};

/**
 * Express middleware for every /graphql response (errors, 304s and stored responses sent before
 * Apollo included): `Vary: Authorization`, since any of them may depend on the caller's token.
 * Without it a browser may answer a GET with another token from the response to the first.
 */
export const varyByAuthorization: RequestHandler = (_req, res, next) => {
  res.vary('Authorization');
  next();
};

/**
 * HTTP caching beyond Apollo's Cache-Control plugin (which computes the policy from the hints
 * but leaves the header to this plugin, `calculateHttpHeaders: false`):
 *
 * - `Cache-Control` by {@link cacheControlHeader}; `no-store` for a response with errors.
 * - Mutations are `no-store`. Apollo would otherwise derive a policy from the returned type's
 *   hints (a mutation returning a Product would say `no-cache, public`).
 * - GET queries get a strong `ETag`, a hash of the response's `data`, and Express answers a
 *   matching `If-None-Match` with 304 and no body ({@link revalidateByETag} for fetch's). A hash of the data rather than of entity
 *   versions: lists and aggregates (`averageRating`) have no version, and an ETag that missed
 *   them would keep a client on a stale average after `createReview`. (`extensions`, which carry
 *   the per-request trace in development, are left out of the hash.)
 */
export function httpCachePlugin<C extends object>(options: HttpCacheOptions = {}): ApolloServerPlugin<C> {
  return {
    async requestDidStart({ request }) {
      const isGet = request.http?.method === 'GET';
      return {
        async executionDidStart({ operation, overallCachePolicy }) {
          // No operation: several in the document and no (or an unknown) operationName; execution
          // then answers OPERATION_RESOLUTION_FAILURE.
          if (operation?.operation !== 'query') overallCachePolicy.restrict({ maxAge: 0 });
        },
        async willSendResponse({ response, overallCachePolicy }) {
          const clean = response.body.kind === 'single' && !response.body.singleResult.errors;
          response.http.headers.set('cache-control', cacheControlHeader(clean ? overallCachePolicy.policyIfCacheable() : null, options));
          if (!isGet || !clean || response.body.kind !== 'single') return;
          const digest = createHash('sha256').update(JSON.stringify(response.body.singleResult.data)).digest('base64url');
          response.http.headers.set('etag', `"${digest.slice(0, 32)}"`);
        },
      };
    },
  };
}
