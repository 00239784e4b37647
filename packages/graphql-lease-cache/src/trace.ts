/**
 * What the cache counts for one request, when it is given one: its Redis round trips, its hits
 * and misses, and (while a whole response is computed) every key and tag its reads went
 * through. The app's request trace is one (src/trace.ts); the cache only adds to it.
 */
export interface CacheTrace {
  redisRoundTrips: number;
  cacheHits: number;
  cacheMisses: number;
  /** Set while a response is computed for the response cache: the dependencies of what it read. */
  dependencies?: Set<string>;
}

/** Where the cache finds the trace of the request being served when a call passes none (the app's AsyncLocalStorage, say). */
export type CurrentTrace = () => CacheTrace | undefined;

/** No current trace: calls that pass none are counted nowhere. */
export const NO_TRACE: CurrentTrace = () => undefined;
