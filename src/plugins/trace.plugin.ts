import type { ApolloServerPlugin } from '@apollo/server';
import type { GraphQLContext } from '../context.js';
import { ErrorCode } from '../errors.js';
import type { Metrics } from '../metrics.js';
import type { RequestTrace } from '../trace.js';

/** Options of {@link requestTracePlugin}. */
export interface RequestTracePluginOptions {
  metrics: Metrics;
  /** Add `extensions.cache` (this request's hits, misses, MongoDB commands, Redis round trips); development only. */
  exposeTrace: boolean;
}

/** Counts operations by type and outcome, and in development shows each request's cost in Sandbox. */
export function requestTracePlugin(options: RequestTracePluginOptions): ApolloServerPlugin<GraphQLContext> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ contextValue, response, operation, errors }) {
          countRequest(options.metrics, contextValue.trace, operation?.operation ?? 'unknown', outcomeOf(errors));
          if (!options.exposeTrace || response.body.kind !== 'single') return;
          response.body.singleResult.extensions = {
            ...response.body.singleResult.extensions,
            ...traceExtensions(contextValue.trace),
          };
        },
      };
    },
  };
}

/**
 * Counts a request that is done (an operation of `type` with `outcome`, its MongoDB commands and
 * Redis round trips) and ends its tracing: Apollo is done with it (also when its client went
 * away), or the response fast path answered it.
 */
export function countRequest(metrics: Metrics, trace: RequestTrace, type: string, outcome: string): void {
  metrics.graphqlOperations.inc({ type, outcome });
  trace.end?.();
  // Only a traced request counted its MongoDB commands (REQUEST_TRACE, trace.ts).
  if (trace.traced) metrics.requestMongoCommands.observe(trace.mongoCommands);
  metrics.requestRedisRoundTrips.observe(trace.redisRoundTrips);
}

/** `extensions.cache` of a request (development): its hits, misses, MongoDB commands, Redis round trips, what the response cache did, and whether grace served it. */
export function traceExtensions(trace: RequestTrace): { cache: Record<string, unknown> } {
  return {
    cache: {
      hits: trace.cacheHits,
      misses: trace.cacheMisses,
      mongoCommands: trace.traced ? trace.mongoCommands : null,
      redisRoundTrips: trace.redisRoundTrips,
      // Entity and field values served from the in-process L1 (no round trip), when there were any.
      ...(trace.l1Hits ? { l1Hits: trace.l1Hits } : {}),
      ...(trace.response ? { response: trace.response } : {}),
      // Values or the whole response served past their TTL, in their grace, because MongoDB could not answer.
      ...(trace.graceServed ? { grace: true } : {}),
    },
  };
}

/**
 * The `outcome` label of an operation: `ok`, `error`, or `persisted_query_not_found` for the
 * first request of an automatic persisted query (its hash alone, which the client then sends
 * again with the query): every Apollo Client begins that way, so it is normal traffic, not an
 * error to put in the dashboard's error ratio.
 */
export function outcomeOf(errors: readonly { extensions?: Record<string, unknown> }[] | undefined): string {
  if (!errors?.length) return 'ok';
  return errors.every((error) => error.extensions?.code === ErrorCode.PersistedQueryNotFound) ? 'persisted_query_not_found' : 'error';
}
