import { createHash } from 'node:crypto';
import type { ApolloServerPlugin } from '@apollo/server';

/**
 * HTTP caching beyond Apollo's Cache-Control plugin:
 *
 * - Mutations are `no-store`. Apollo would otherwise derive a policy from the returned type's
 *   hints (a mutation returning a Product would say `max-age=60, public`).
 * - GET queries get a strong `ETag`, a hash of the response's `data`, and Express answers a
 *   matching `If-None-Match` with 304 and no body. A hash of the data rather than of entity
 *   versions: lists and aggregates (`averageRating`) have no version, and an ETag that missed
 *   them would keep a client on a stale average after `createReview`. (`extensions`, which carry
 *   the per-request trace in development, are left out of the hash.)
 */
export function httpCachePlugin<C extends object>(): ApolloServerPlugin<C> {
  return {
    async requestDidStart({ request }) {
      const isGet = request.http?.method === 'GET';
      return {
        async executionDidStart({ operation, overallCachePolicy }) {
          // No operation: several in the document and no (or an unknown) operationName; execution
          // then answers OPERATION_RESOLUTION_FAILURE.
          if (operation?.operation !== 'query') overallCachePolicy.restrict({ maxAge: 0 });
        },
        async willSendResponse({ response }) {
          if (!isGet || response.body.kind !== 'single' || response.body.singleResult.errors) return;
          const digest = createHash('sha256').update(JSON.stringify(response.body.singleResult.data)).digest('base64url');
          response.http.headers.set('etag', `"${digest.slice(0, 32)}"`);
        },
      };
    },
  };
}
