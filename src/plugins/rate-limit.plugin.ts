import type { ApolloServerPlugin } from '@apollo/server';
import { ErrorCode } from '../errors.js';

/**
 * HTTP 429 and `Retry-After` (in seconds) for a request a rate limit refused: when the response
 * has no data and every error is RATE_LIMITED, so that clients and proxies that look only at the
 * status back off too. `Retry-After` is the longest `extensions.retryAfterSeconds` of the errors.
 * Any other response keeps the status Apollo gives it.
 */
export function rateLimitPlugin<C extends object>(): ApolloServerPlugin<C> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ response }) {
          if (response.body.kind !== 'single') return;
          const { data, errors } = response.body.singleResult;
          if (data != null || !errors?.length || !errors.every((e) => e.extensions?.code === ErrorCode.RateLimited)) return;
          const seconds = Math.max(...errors.map((e) => Number(e.extensions?.retryAfterSeconds) || 1));
          response.http.status = 429;
          response.http.headers.set('retry-after', String(Math.ceil(seconds)));
        },
      };
    },
  };
}
