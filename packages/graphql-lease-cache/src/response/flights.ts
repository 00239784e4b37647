import type { CacheTrace } from '../trace.js';
import type { ResponseTicket } from '../response-store.js';

/** How long a miss waits for the same computation under way before it executes the query itself, in milliseconds. */
const FLIGHT_WAIT_MS = 2_000;

interface Flight {
  ticket: ResponseTicket;
  result: Promise<string | null>;
  settle: (stored: string | null) => void;
}

/** What a lookup made before the server's pipeline (the fast path) hands on to the plugin: the key and ticket of its miss, or `failed`. */
export type EarlierLookup = { hash: string; ticket: ResponseTicket } | 'failed';

/**
 * The response computations under way in this process, by response key: single flight for the
 * misses that follow an invalidation. Share one between `responseFastPath` (which leads
 * computations) and `responseCachePlugin` (which settles them). A miss whose lookup returned the
 * same shard incarnation and clock as a computation under way waits for that computation's
 * response instead of executing the query again, and is answered as a hit.
 *
 * Why that is never stale: equal clocks mean that no invalidation reached the shard between the
 * two lookups. A write that returned before the waiter's lookup ran its shard script before it,
 * hence before the first lookup, and after its own invalidation of what it changed: the first
 * computation read what that write left. A write after the waiter's lookup overlaps the
 * waiter's request, which may show it or not. The response is handed over whether or not the
 * store then succeeds (a store refused for a write during the computation is such a write).
 */
export class ResponseFlights {
  readonly #flights = new Map<string, Flight>();
  /** The fast path's lookups, by the request's trace, for the plugin (so a request is looked up once). */
  readonly #earlier = new WeakMap<CacheTrace, EarlierLookup>();

  /** The response of the computation of `hash` under way with this ticket's incarnation and clock, or null (there is none). */
  join(hash: string, ticket: ResponseTicket): Promise<string | null> | null {
    const flight = this.#flights.get(hash);
    if (!flight || flight.ticket.incarnation !== ticket.incarnation || flight.ticket.clock !== ticket.clock) return null;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<null>((resolve) => {
      timer = setTimeout(resolve, FLIGHT_WAIT_MS, null);
    });
    this.#joins += 1;
    return Promise.race([flight.result, timeout]).finally(() => clearTimeout(timer));
  }

  /** Records the computation of `hash` under `ticket`; whoever calls it must {@link settle} it. */
  lead(hash: string, ticket: ResponseTicket): void {
    let settle!: (stored: string | null) => void;
    const result = new Promise<string | null>((resolve) => {
      settle = resolve;
    });
    this.#flights.set(hash, { ticket, result, settle });
  }

  /** Hands the computation's stored form (null: not storable) to its waiters; a no-op for any other ticket. */
  settle(hash: string, ticket: ResponseTicket, stored: string | null): void {
    const flight = this.#flights.get(hash);
    if (flight?.ticket !== ticket) return;
    this.#flights.delete(hash);
    flight.settle(stored);
  }

  /** Hands a lookup made before the server's pipeline to the plugin, by the request's trace. */
  handOn(trace: CacheTrace, lookup: EarlierLookup): void {
    this.#earlier.set(trace, lookup);
  }

  /** The lookup the fast path made for the request of `trace`, taken (once), or undefined. */
  takeEarlier(trace: CacheTrace): EarlierLookup | undefined {
    const lookup = this.#earlier.get(trace);
    this.#earlier.delete(trace);
    return lookup;
  }

  #joins = 0;

  /** Computations under way (for tests: not an API). */
  get __testing__size(): number {
    return this.#flights.size;
  }

  /** Requests that have joined a computation under way since start (for tests, which wait on a join, not on time). */
  get __testing__joins(): number {
    return this.#joins;
  }
}
