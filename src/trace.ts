import { AsyncLocalStorage } from 'node:async_hooks';
import type { CacheTrace } from 'graphql-lease-cache';

/** What one request cost, shown in development as `extensions.cache` on the response. */
export interface RequestTrace extends CacheTrace {
  /**
   * True when the request ran inside {@link traceStorage}, so that the MongoDB driver's events
   * were counted in it (`mongoCommands`, `mongoWrites`); false for a request that could not write
   * under `REQUEST_TRACE=writes` (see {@link runTraced}).
   */
  traced: boolean;
  mongoCommands: number;
  /**
   * Write commands sent that MongoDB did not answer with an error: applied, or their outcome
   * unknown. Above 0, a request that then fails for MongoDB cannot say "nothing was changed".
   */
  mongoWrites: number;
  redisRoundTrips: number;
  cacheHits: number;
  cacheMisses: number;
  /** Ends a traced request's tracing (see {@link runTraced}); set while it runs traced. */
  end?: () => void;
  /** What the response cache did for this request (query operations only; its `onOutcome` hook, or the fast path's hit). */
  response?: 'HIT' | 'HIT_L1' | 'MISS' | 'BYPASS';
}

/** A zeroed trace. */
export function createTrace(): RequestTrace {
  return { traced: false, mongoCommands: 0, mongoWrites: 0, redisRoundTrips: 0, cacheHits: 0, cacheMisses: 0 };
}

/**
 * The trace of the request being served, for the MongoDB driver's command events: they fire far
 * from the resolver that caused them, and AsyncLocalStorage carries the request's trace to them.
 * The cache's reads, which carry their request's trace explicitly, and writes fall back to it.
 *
 * AsyncLocalStorage costs on every promise the process creates while it is enabled (Node 20
 * runs a hook per promise): on the warm catalog, about a fifth of the throughput. So it is
 * enabled only while a request that may write runs ({@link runTraced}), which is the one that
 * needs it: a failed mutation must know whether it had sent a write.
 */
export const traceStorage = new AsyncLocalStorage<RequestTrace>();

/** The current request's trace, if it runs traced. */
export function currentTrace(): RequestTrace | undefined {
  return traceStorage.getStore();
}

let tracedInFlight = 0;

/**
 * Runs `fn` (a request) inside {@link traceStorage} with `trace`; `fn` gets `done`, to call once
 * when the request has ended (more calls do nothing). While no traced request is in flight, the
 * storage is disabled, and other requests create promises at no extra cost.
 */
export function runTraced(trace: RequestTrace, fn: (done: () => void) => void): void {
  trace.traced = true;
  tracedInFlight += 1;
  let ended = false;
  const done = (): void => {
    if (ended) return;
    ended = true;
    tracedInFlight -= 1;
    // Exits the contexts of the requests that ended; the next run() enables it again.
    if (tracedInFlight === 0) traceStorage.disable();
  };
  traceStorage.run(trace, fn, done);
}

/**
 * Whether a POSTed GraphQL request may write, by its text: a mutation is written with the
 * `mutation` keyword, so a document without that word cannot be one. The word in a comment, a
 * string or a field name only makes the test say yes, which costs speed, never correctness. A
 * request without a query text (a persisted query sent by hash) may be anything: yes.
 */
export function mayWrite(body: unknown): boolean {
  if (Array.isArray(body)) return true;
  const query = (body as { query?: unknown } | null | undefined)?.query;
  return typeof query !== 'string' || /\bmutation\b/.test(query);
}
