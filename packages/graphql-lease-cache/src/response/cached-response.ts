import type { DocumentNode, GraphQLSchema, OperationDefinitionNode } from 'graphql';
import type { Cache } from '../create-cache.js';
import { SILENT_LOGGER, type CacheLogger } from '../logger.js';
import type { ResponseTicket } from '../response-store.js';
import type { CacheTrace } from '../trace.js';
import { createResponseBudget, type NotStoredReason, type ResponseBudget, type ResponseBudgetSettings } from './budget.js';
import { addFieldDependencies, SelectedFields } from './field-dependencies.js';
import { ResponseFlights } from './flights.js';
import { responseKey } from './key.js';
import { decodeStored, storedForm, type CachePolicy, type StoredPolicy } from './stored.js';

/** The name of the response layer in lookup events and `cache.stats`. */
export const RESPONSE_STATS_NAME = 'Response';

/**
 * What the response cache did for one query: answered from a stored response (`HIT_L1`: held in
 * this process's L1, with no round trip), executed it to store it, or stepped aside.
 */
export type ResponseOutcome = 'HIT' | 'HIT_L1' | 'MISS' | 'BYPASS';

/** An executed result, as a storability hook sees it. */
export interface ExecutedResult {
  data?: unknown;
  errors?: readonly unknown[];
}

/**
 * How the response cache learns about a request, for any server (the Apollo and Envelop
 * adapters take these). `C` is the server's request context.
 */
export interface ResponseCacheOptions<C> {
  /** The cache whose response store (`settings.responses`) holds the responses. */
  cache: Cache;
  /**
   * The CacheTrace the request's loaders pass to the cache: while a response is computed its
   * `dependencies` collect what the reads went through, which the stored response depends on.
   */
  trace(ctx: C): CacheTrace;
  /**
   * The id of the request's session when it is LIVE (a token that opens a session now), else
   * null: anonymous. Part of the key, so that an authenticated request never shares a response
   * with another. Called for every query, hits included. A throw makes the request BYPASS the
   * cache. Default: every request is anonymous.
   */
  sessionId?(ctx: C): string | null | Promise<string | null>;
  /**
   * When the request's session ends, in ms since the epoch (null: none): a PRIVATE response is
   * stored only with a live session, and lives no longer than it. Default: null (never stored).
   */
  sessionExpiresAt?(ctx: C): number | null;
  /** Whom the store budget counts the request against (an address); default null: all requests as one client. */
  clientId?(ctx: C): string | null;
  /** A further say on whether an executed, cacheable response without errors is stored; default yes. */
  isStorable?(ctx: C, result: ExecutedResult): boolean;
  /**
   * The surrogate keys of a response about to be stored, from every key and tag it read (its
   * entities, field values and tags): an opaque list kept with the response and returned on each
   * hit, so that a shared HTTP cache keeps a hit by the same keys as the executed response, and
   * is purged when one of them is. Default: none.
   */
  surrogateKeys?(dependencies: ReadonlySet<string>): readonly string[];
  /** Told what the cache did for each query (not for mutations, or what it never looked at). */
  onOutcome?(ctx: C, outcome: ResponseOutcome): void;
  /** What one client may make the server store; default 1 MiB a response, no per-client bound. */
  budget?: ResponseBudgetSettings;
  /** Told why an executed response was not stored by the budget. */
  onNotStored?(reason: NotStoredReason): void;
  /** Computations under way: share one with `responseFastPath`; default one of this plugin's own. */
  flights?: ResponseFlights;
  /** Default: silent. Lookups and stores that fail are logged at debug (the query is executed instead). */
  logger?: CacheLogger;
}

/** What a query is, as the adapters give it to {@link ResponseRequests.begin}. */
export interface QueryToLookUp {
  schema: GraphQLSchema;
  /** The document's SHA-256 in hex. */
  queryHash: string;
  operationName: string | null;
  operation: OperationDefinitionNode;
  /** The request's raw variables. */
  variables: unknown;
}

/** An executed response, as the adapters give it to {@link ResponseRequests.finish}. */
export interface ExecutedQuery {
  schema: GraphQLSchema;
  /** The executed document; undefined: none (nothing is stored). */
  document: DocumentNode | undefined;
  queryHash: string;
  result: ExecutedResult;
  /** The response's policy (null: not cacheable). */
  policy: CachePolicy | null;
}

/** The per-request state of a query being computed to be stored. */
interface Computing {
  hash: string;
  ticket: ResponseTicket;
  sessionId: string | null;
  dependencies: Set<string>;
}

/** The default largest stored response, in bytes. */
const DEFAULT_MAX_BYTES = 1024 * 1024;
/** The trace of no request: the response cache's own counts are not the request's cache hits and misses. */
const NO_REQUEST: CacheTrace = Object.freeze({});

/**
 * The response cache's work for one server, shared by the adapters: the lookup before execution
 * and the store after it, with the per-request state in a WeakMap keyed by the request's
 * context (nothing in module globals or in the caller's objects).
 */
export class ResponseRequests<C extends object> {
  readonly flights: ResponseFlights;
  readonly #options: ResponseCacheOptions<C>;
  readonly #logger: CacheLogger;
  readonly #budget: ResponseBudget;
  readonly #computing = new WeakMap<C, Computing>();
  readonly #selected = new SelectedFields();
  /** Set once the fleet's first registration was tried (lookups before wait for it). */
  #fleetStarted = false;

  constructor(options: ResponseCacheOptions<C>) {
    this.#options = options;
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.flights = options.flights ?? new ResponseFlights();
    this.#budget = createResponseBudget(options.budget ?? { maxBytes: DEFAULT_MAX_BYTES, clientBytesPerMinute: 0 }, options.onNotStored);
  }

  /** True when the cache has a response store at all (`settings.responses`). */
  get enabled(): boolean {
    return this.#options.cache.core.responses !== undefined;
  }

  /**
   * Looks the query up: its stored response (a HIT) or null, the query then being executed
   * (a MISS, stored by {@link finish}, or a BYPASS when Redis fails or an invalidation waits).
   */
  async begin(
    ctx: C,
    query: QueryToLookUp,
  ): Promise<{ policy: StoredPolicy; surrogateKeys: readonly string[]; data: Record<string, unknown> | null } | null> {
    const { cache } = this.#options;
    const responses = cache.core.responses;
    if (!responses) return null;
    // Once, at start: the fleet's first registration (until then nothing is served from the cache).
    if (cache.fleet && !this.#fleetStarted) {
      await cache.fleet.ready;
      this.#fleetStarted = true;
    }
    if (!cache.core.responsesUsable) return this.#outcome(ctx, 'BYPASS');
    const trace = this.#options.trace(ctx);
    let sessionId: string | null;
    try {
      sessionId = (await this.#options.sessionId?.(ctx)) ?? null;
    } catch {
      // The session could not be resolved: the resolvers that need it meet (and report) the failure.
      return this.#outcome(ctx, 'BYPASS');
    }
    const hash = responseKey(query.schema, { ...query, sessionId });
    // The fast path looked this request up already (a miss, or Redis failed): not again.
    const earlier = this.flights.takeEarlier(trace);
    if (hash === null || earlier === 'failed') return this.#outcome(ctx, 'BYPASS');
    if (earlier?.hash === hash) {
      this.#compute(ctx, trace, { hash, ticket: earlier.ticket, sessionId });
      return null;
    }
    try {
      const found = await responses.lookup(hash, trace);
      if (found.kind === 'hit') {
        const stored = decodeStored(found.body);
        const { data } = JSON.parse(stored.body) as { data: Record<string, unknown> | null };
        this.#outcome(ctx, found.l1 ? 'HIT_L1' : 'HIT');
        cache.events.lookup(RESPONSE_STATS_NAME, 1, 0, NO_REQUEST);
        // A response served in its grace (past its TTL, the source down) is kept by no HTTP cache.
        const policy = found.grace ? { ...stored.policy, maxAge: 0 } : stored.policy;
        return { policy, surrogateKeys: stored.surrogateKeys, data };
      }
      this.#compute(ctx, trace, { hash, ticket: found.ticket, sessionId });
    } catch (error) {
      this.#logger.debug({ err: error }, 'response cache lookup failed; executing');
      this.#outcome(ctx, 'BYPASS');
    }
    return null;
  }

  /**
   * Stores the executed response of a MISS when it may be (and hands it to the requests waiting
   * for it); a no-op otherwise. Returns the surrogate keys stored with it when it was stored
   * (nothing it read was invalidated while it was computed), else null: what a shared HTTP cache
   * may key it by, to be purged when one of them is invalidated.
   */
  async finish(ctx: C, executed: ExecutedQuery): Promise<readonly string[] | null> {
    const computing = this.#computing.get(ctx);
    if (!computing) return null;
    this.#computing.delete(ctx);
    const { cache } = this.#options;
    const trace = this.#options.trace(ctx);
    if (trace.dependencies === computing.dependencies) trace.dependencies = undefined;
    const { hash, ticket, dependencies } = computing;
    const session = { id: computing.sessionId, expiresAt: this.#options.sessionExpiresAt?.(ctx) ?? null };
    const storable =
      this.#options.isStorable && !this.#options.isStorable(ctx, executed.result)
        ? null
        : storedForm(executed.result, executed.policy, session, () => {
            // The field values it selected are dependencies too: added before the keys are computed from them.
            const { document } = executed;
            if (document) this.#addFields(executed, document, dependencies);
            return this.#options.surrogateKeys?.(dependencies) ?? [];
          });
    // Computed from values served past their TTL (the source was down): neither handed on nor
    // stored anywhere, so that nothing of it outlives the outage.
    const grace = (trace.graceServed ?? 0) > 0;
    this.flights.settle(hash, ticket, grace ? null : (storable?.stored ?? null));
    const responses = cache.core.responses;
    // An invalidation this process could not deliver may not have reached the responses.
    if (grace || !storable || !executed.document || !responses || !cache.core.responsesUsable) return null;
    if (!this.#budget.admit(this.#options.clientId?.(ctx) ?? null, Buffer.byteLength(storable.stored))) return null;
    try {
      // Computed from values this process's L1 served: held here only (see ResponseStore.store).
      const localOnly = (trace.l1Hits ?? 0) > 0;
      return (await responses.store(ticket, dependencies, storable.stored, storable.ttlMs, trace, { localOnly }))
        ? storable.surrogateKeys
        : null;
    } catch (error) {
      this.#logger.debug({ err: error }, 'response cache store failed');
      return null;
    }
  }

  /** Adds the field values `executed` selected of the entities it read to its dependencies. */
  #addFields(executed: ExecutedQuery, document: DocumentNode, dependencies: Set<string>): void {
    addFieldDependencies(this.#options.cache, dependencies, this.#selected.of(executed.schema, document, executed.queryHash));
  }

  /** A MISS: the query is executed with its reads recorded, to be stored under `ticket`. */
  #compute(ctx: C, trace: CacheTrace, state: Omit<Computing, 'dependencies'>): void {
    const dependencies = new Set<string>();
    trace.dependencies = dependencies;
    this.#computing.set(ctx, { ...state, dependencies });
    this.#outcome(ctx, 'MISS');
    this.#options.cache.events.lookup(RESPONSE_STATS_NAME, 0, 1, NO_REQUEST);
  }

  #outcome(ctx: C, outcome: ResponseOutcome): null {
    this.#options.onOutcome?.(ctx, outcome);
    return null;
  }
}
