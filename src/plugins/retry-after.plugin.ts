import type { ApolloServerPlugin } from '@apollo/server';
import type { GraphQLFormattedError } from 'graphql';
import { ErrorCode } from '../errors.js';

/** The HTTP status of a refusal to be retried later, by its error code. */
const RETRY_STATUS: ReadonlyMap<string, number> = new Map([
  [ErrorCode.RateLimited, 429],
  [ErrorCode.ServerBusy, 503],
]);

/**
 * HTTP 429 (RATE_LIMITED) or 503 (SERVER_BUSY) and `Retry-After` (in seconds) for a request that
 * was refused and answered nothing, so that clients and proxies that look only at the status
 * back off too: when every error has the same one of those codes, and the response has no data,
 * or every top-level field of it is null with an error under it (a query whose reads were
 * refused). `Retry-After` is the longest `extensions.retryAfterSeconds` of the errors. Any other
 * response, a partial answer included, keeps the status Apollo gives it.
 */
export function retryAfterPlugin<C extends object>(): ApolloServerPlugin<C> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ response }) {
          if (response.body.kind !== 'single') return;
          const { data, errors } = response.body.singleResult;
          const code = errors?.[0]?.extensions?.code;
          const status = typeof code === 'string' ? RETRY_STATUS.get(code) : undefined;
          if (!errors || status === undefined || !errors.every((e) => e.extensions?.code === code) || !answeredNothing(data, errors))
            return;
          const seconds = Math.max(...errors.map((e) => Number(e.extensions?.retryAfterSeconds) || 1));
          response.http.status = status;
          response.http.headers.set('retry-after', String(Math.ceil(seconds)));
        },
      };
    },
  };
}

/** No data, or only top-level nulls each of which an error explains (its path starts there). */
function answeredNothing(data: Record<string, unknown> | null | undefined, errors: readonly GraphQLFormattedError[]): boolean {
  if (data == null) return true;
  return Object.entries(data).every(([field, value]) => value === null && errors.some((e) => e.path?.[0] === field));
}
