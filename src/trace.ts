import { AsyncLocalStorage } from 'node:async_hooks';

/** What one request cost, shown in development as `extensions.cache` on the response. */
export interface RequestTrace {
  mongoCommands: number;
  /**
   * Write commands sent that MongoDB did not answer with an error: applied, or their outcome
   * unknown. Above 0, a request that then fails for MongoDB cannot say "nothing was changed".
   */
  mongoWrites: number;
  redisRoundTrips: number;
  cacheHits: number;
  cacheMisses: number;
}

/** A zeroed trace. */
export function createTrace(): RequestTrace {
  return { mongoCommands: 0, mongoWrites: 0, redisRoundTrips: 0, cacheHits: 0, cacheMisses: 0 };
}

/**
 * The trace of the request being served. Driver events (MongoDB command monitoring, ioredis
 * round trips) fire far from the resolver that caused them; AsyncLocalStorage carries the
 * request's trace to them without threading it through every call.
 */
export const traceStorage = new AsyncLocalStorage<RequestTrace>();

/** The current request's trace, if any. */
export function currentTrace(): RequestTrace | undefined {
  return traceStorage.getStore();
}
