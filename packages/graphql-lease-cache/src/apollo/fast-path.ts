import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GraphQLSchema } from 'graphql';
import Negotiator from 'negotiator';
import type { Cache } from '../create-cache.js';
import { SILENT_LOGGER, type CacheLogger } from '../logger.js';
import type { ResponseLookup, ResponseStore } from '../response-store.js';
import type { CacheTrace } from '../trace.js';
import { RESPONSE_STATS_NAME } from '../response/cached-response.js';
import type { ResponseFlights } from '../response/flights.js';
import { OperationShapes, responseKey } from '../response/key.js';
import { cacheControlHeader, decodeStored, decodeStoredBody, type CachePolicy } from '../response/stored.js';

/** A request as the fast path reads it: node's, with the JSON body parsed (`express.json()` and the like). */
export type FastPathRequest = IncomingMessage & { body?: unknown };

/** The session a request claims, as the fast path resolves it. */
export interface ClaimedSession {
  /** The id the response is keyed by when the session is live (the plugin's `sessionId` for the same request). */
  id: string;
  /** True when the session is live now; a rejection makes the request go on to the server (BYPASS). */
  live: Promise<boolean>;
}

/** Options of {@link responseFastPath}. */
export interface ResponseFastPathOptions<Req extends FastPathRequest = FastPathRequest, Res extends ServerResponse = ServerResponse> {
  cache: Cache;
  /** The schema the variables are coerced by (as execution would). */
  schema: GraphQLSchema;
  /** Shared with `responseCachePlugin` (its `flights`), which settles what this path leads. */
  flights: ResponseFlights;
  /**
   * The CacheTrace of the request: the same object the plugin's `trace(ctx)` returns for this
   * request's context (a miss here is handed on through it, so the request is looked up once).
   */
  trace(req: Req, res: Res): CacheTrace;
  /**
   * The session the request claims (its bearer token), resolved now; null: anonymous. Keep what
   * it resolves for the request's context, so that it is not resolved again. Default: anonymous.
   */
  session?(req: Req, res: Res): ClaimedSession | null;
  /** Told of a hit before it is sent (metrics); `hit.l1`: served from this process's L1, with no round trip. */
  onHit?(req: Req, res: Res, hit: { l1: boolean }): void;
  /**
   * Extensions added to a hit's body (a development trace); default none. Leave it out when it
   * adds none (production): with it, every hit's stored body is parsed and serialized again.
   */
  extensions?(req: Req, res: Res): Record<string, unknown> | null;
  /** The `Cache-Control` of a hit with its stored policy; default `cacheControlHeader`. */
  cacheControl?(policy: CachePolicy): string;
  /** graphql-js's token limit when parsing, as the server parses; default none. */
  maxTokens?: number;
  /** Default: silent. An unreadable stored response is a warning. */
  logger?: CacheLogger;
}

/**
 * Node/Express middleware before Apollo: a JSON POST of a query whose response is stored is
 * answered here, with one Redis round trip and none of Apollo's per-request work (context,
 * DataLoaders, plugins, serializing). Only what is stored can be served, so only documents that
 * Apollo parsed, validated and ran as queries before; anything else (a GET, a persisted query,
 * a mutation, a miss) goes on to Apollo, which then stores it. A miss hands its ticket on, so
 * the request is looked up once either way. The hit carries what the executed response
 * carries: the same body, Content-Type and `Cache-Control` from the stored policy.
 *
 * A request that claims a session has it resolved on every hit: the response stored for the
 * session is looked up at the same time (two calls in flight together, one round trip of
 * waiting) and served only when the session is live; otherwise the request is anonymous and
 * looks up the anonymous response. A no-op when the cache has no response store.
 */
export function responseFastPath<Req extends FastPathRequest = FastPathRequest, Res extends ServerResponse = ServerResponse>(
  options: ResponseFastPathOptions<Req, Res>,
): (req: Req, res: Res, next: (error?: unknown) => void) => void {
  const { cache, schema } = options;
  const shapes = new OperationShapes({ ...(options.maxTokens === undefined ? {} : { maxTokens: options.maxTokens }) });
  const queryHashes = new Memo<string>();
  const anonymousKeys = new Memo<string | null>();
  const contentTypes = new Memo<string | null>();
  return (req, res, next) => {
    const responses = cache.core.responses;
    const request = plainQuery(req.method, req.body);
    if (!responses || !request || !cache.core.responsesUsable) return next();
    // The content type Apollo would choose for this Accept; anything else is Apollo's to answer (406).
    const accept = req.headers.accept;
    const contentType = accept === undefined ? APPLICATION_JSON : contentTypes.get(accept, negotiatedType);
    if (!contentType) return next();
    const queryHash = queryHashes.get(request.query, sha256Hex);
    const operation = shapes.operation(queryHash, request.query, request.operationName);
    if (operation?.operation !== 'query') return next();
    const { operationName, variables } = request;
    const keyOf = (sessionId: string | null) => responseKey(schema, { queryHash, operationName, operation, variables, sessionId });
    // An anonymous key depends only on the document, the operation and the raw variables: remembered by them.
    const keyFor = (sessionId: string | null) =>
      sessionId === null ? anonymousKeys.get(anonymousKeyText(queryHash, operationName, variables), () => keyOf(null)) : keyOf(sessionId);
    const served: Served<Req, Res> = { options, req, res, next, trace: options.trace(req, res), contentType };
    lookUp(served, responses, keyFor).then(
      (looked) => answer(served, looked),
      (error: unknown) => {
        (options.logger ?? SILENT_LOGGER).debug({ err: error }, 'response cache lookup failed; executing');
        // A session that failed to resolve fails the request's context the same way: it is not resolved again.
        options.flights.handOn(served.trace, 'failed');
        next();
      },
    );
  };
}

/** One request the fast path looks up. */
interface Served<Req extends FastPathRequest, Res extends ServerResponse> {
  options: ResponseFastPathOptions<Req, Res>;
  req: Req;
  res: Res;
  next: (error?: unknown) => void;
  trace: CacheTrace;
  /** The negotiated content type of a hit. */
  contentType: string;
}

/** The key the request is answered under and what its lookup found; null when it has none. */
async function lookUp<Req extends FastPathRequest, Res extends ServerResponse>(
  served: Served<Req, Res>,
  responses: ResponseStore,
  keyFor: (sessionId: string | null) => string | null,
): Promise<{ hash: string; found: ResponseLookup } | null> {
  const session = served.options.session?.(served.req, served.res) ?? null;
  if (session) {
    const sessionHash = keyFor(session.id);
    if (sessionHash === null) return null;
    const [live, found] = await Promise.all([session.live, responses.lookup(sessionHash, served.trace)]);
    if (live) return { hash: sessionHash, found };
  }
  const hash = keyFor(null);
  return hash === null ? null : { hash, found: await responses.lookup(hash, served.trace) };
}

/** Answers a hit, waits for the same computation under way, or leads one (then the server executes the query). */
function answer<Req extends FastPathRequest, Res extends ServerResponse>(
  served: Served<Req, Res>,
  looked: { hash: string; found: ResponseLookup } | null,
): void {
  const { flights } = served.options;
  if (!looked) return served.next();
  const { hash, found } = looked;
  if (found.kind === 'hit') {
    if (send(served, found.body, found.l1, found.grace)) return;
    flights.handOn(served.trace, 'failed');
    return served.next();
  }
  const { ticket } = found;
  const joined = flights.join(hash, ticket);
  if (joined) {
    // The same response is being computed from the same state: its answer is this one's.
    void joined.then((stored) => {
      if (stored !== null && send(served, stored)) return;
      flights.handOn(served.trace, { hash, ticket });
      served.next();
    });
    return;
  }
  flights.lead(hash, ticket);
  // Settled by the plugin when the response is known; this only frees the waiters of a
  // request that ended before (an error, a client that went away).
  served.res.once('close', () => flights.settle(hash, ticket, null));
  flights.handOn(served.trace, { hash, ticket });
  served.next();
}

/** Answers from a stored form; false when it is unreadable (then the query is executed). */
function send<Req extends FastPathRequest, Res extends ServerResponse>(
  served: Served<Req, Res>,
  stored: Buffer | string,
  l1 = false,
  grace = false,
): boolean {
  const { options, req, res } = served;
  let decoded: { policy: CachePolicy; body: Buffer | string };
  let parsed: Record<string, unknown> | null = null;
  try {
    decoded = Buffer.isBuffer(stored) ? decodeStoredBody(stored) : decodeStored(stored);
    // Parsed only when extensions may be added: otherwise the stored bytes are the body, as they are.
    if (options.extensions) parsed = JSON.parse(decoded.body.toString()) as Record<string, unknown>;
  } catch (error) {
    // Unreadable (corrupt, or written by an incompatible version): executed instead.
    (options.logger ?? SILENT_LOGGER).warn({ err: error }, 'unreadable stored response; executing');
    return false;
  }
  options.cache.events.lookup(RESPONSE_STATS_NAME, 1, 0, NO_REQUEST);
  options.onHit?.(req, res, { l1 });
  const extensions = parsed && options.extensions?.(req, res);
  const sent = parsed && extensions ? `${JSON.stringify({ ...parsed, extensions })}\n` : decoded.body;
  res.statusCode = 200;
  res.setHeader('content-type', served.contentType);
  // A response served in its grace (past its TTL, the source down) is kept by no HTTP cache.
  const policy = grace ? { ...decoded.policy, maxAge: 0 } : decoded.policy;
  res.setHeader('cache-control', (options.cacheControl ?? cacheControlHeader)(policy));
  res.setHeader('content-length', typeof sent === 'string' ? Buffer.byteLength(sent) : sent.length);
  res.end(sent);
  return true;
}

/** How many entries a {@link Memo} keeps before it starts afresh. */
const MEMO_ENTRIES = 1_000;
/** Longer texts are computed each time rather than remembered (the memos stay small). */
const MEMO_MAX_TEXT_LENGTH = 16_384;

/** A bounded memo of a pure function of a text: cleared when full, texts longer than MEMO_MAX_TEXT_LENGTH not kept. */
class Memo<V> {
  readonly #values = new Map<string, V>();

  get(text: string, compute: (text: string) => V): V {
    const known = this.#values.get(text);
    if (known !== undefined || this.#values.has(text)) return known as V;
    const value = compute(text);
    if (text.length <= MEMO_MAX_TEXT_LENGTH) {
      if (this.#values.size >= MEMO_ENTRIES) this.#values.clear();
      this.#values.set(text, value);
    }
    return value;
  }
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** What an anonymous response key is a function of, as text (the variables as parsed from JSON, so JSON is lossless). */
function anonymousKeyText(queryHash: string, operationName: string | null, variables: unknown): string {
  return `${queryHash}\u0000${operationName ?? ''}\u0000${variables === undefined || variables === null ? '' : JSON.stringify(variables)}`;
}

/** The trace of no request: the response cache's own counts are not the request's cache hits and misses. */
const NO_REQUEST: CacheTrace = Object.freeze({});

const APPLICATION_JSON = 'application/json; charset=utf-8';
const GRAPHQL_RESPONSE_JSON = 'application/graphql-response+json; charset=utf-8';
/** Apollo's choices for a single result (runHttpQuery), in its order: the last is not served here. */
const SINGLE_RESULT_TYPES = [APPLICATION_JSON, GRAPHQL_RESPONSE_JSON, 'application/json; callbackSpec=1.0; charset=utf-8'];

/** The content type Apollo answers a single result with for `accept`, when it is one a stored response may be sent as. */
function negotiatedType(accept: string): string | null {
  if (!accept) return APPLICATION_JSON;
  const preferred = new Negotiator({ headers: { accept } }).mediaType(SINGLE_RESULT_TYPES);
  return preferred === APPLICATION_JSON || preferred === GRAPHQL_RESPONSE_JSON ? preferred : null;
}

/**
 * Whether a request may be a mutation, by its text: a mutation is written with the `mutation`
 * keyword. The word in a comment, a string or a field name only sends the request on to Apollo.
 */
const MAY_WRITE = /\bmutation\b/;

/** `query`, `operationName` and `variables` of a JSON POST that may be a stored query; null for anything else. */
function plainQuery(method: string | undefined, body: unknown): { query: string; operationName: string | null; variables: unknown } | null {
  if (method !== 'POST' || typeof body !== 'object' || body === null || Array.isArray(body)) return null;
  const { query, operationName, variables, extensions } = body as Record<string, unknown>;
  if (typeof query !== 'string' || MAY_WRITE.test(query)) return null;
  if (operationName !== undefined && operationName !== null && typeof operationName !== 'string') return null;
  if (variables !== undefined && variables !== null && (typeof variables !== 'object' || Array.isArray(variables))) return null;
  // A persisted-query extension is Apollo's to check and count.
  if (extensions !== undefined && extensions !== null) return null;
  return { query, operationName: (operationName as string | null | undefined) ?? null, variables };
}
