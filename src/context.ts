import type { Cache, FieldCache } from 'graphql-lease-cache';
import { createLoaders, type Loaders } from './loaders/index.js';
import type { ReadBulkhead, ReadGate } from './loaders/read-bulkhead.js';
import type { Logger } from './logger.js';
import type { UserDoc } from './models/user.model.js';
import type { SessionInfo } from './services/auth.service.js';
import type { Services } from './services/index.js';
import type { RequestScope } from './services/scope.js';
import type { RequestTrace } from './trace.js';

/** The context every resolver receives; one per request. */
export interface GraphQLContext extends RequestScope {
  logger: Logger;
  services: Services;
  cache: Cache;
  /** What this request cost (MongoDB commands, Redis round trips, cache hits). */
  trace: RequestTrace;
  /**
   * When the session this request resolved expires (ms since the epoch), or null when it
   * resolved none (no token, a dead one, or the viewer was never asked for). A whole PRIVATE
   * response must not outlive it.
   */
  sessionExpiresAt(): number | null;
  /** The live session of the request's token, resolved at most once per request; null without one. */
  session(): Promise<SessionInfo | null>;
  /**
   * From now on the request's MongoDB reads skip the read bulkhead: called for a mutation, whose
   * reads (the viewer, the entity it changes, its answer) are part of a write, which is never
   * refused for want of a read slot (plugins/read-bulkhead.plugin.ts).
   */
  exemptFromReadBulkhead(): void;
}

/** What {@link createContext} needs from the process. */
export interface ContextDeps {
  logger: Logger;
  cache: Cache;
  fieldCache: FieldCache<Loaders>;
  services: Services;
  /** The process's read bulkhead, which the request's loaders read MongoDB through. */
  reads: ReadBulkhead;
}

/** Options of {@link createContext}: the parts of the HTTP request it reads. */
export interface ContextRequest {
  /** The `Authorization` header, if any. */
  authorization: string | undefined;
  /** The client's address as Express sees it (`req.ip`: the socket's, or per `trust proxy` the forwarded one). */
  clientIp: string | undefined;
  trace: RequestTrace;
  /** The session of the token, when the response fast path resolved it already (not again). */
  session?: Promise<SessionInfo | null>;
}

/**
 * A fresh context: new DataLoaders (never shared between requests, so between users), and a
 * viewer looked up lazily, at most once, only when a resolver asks for it.
 */
export function createContext(deps: ContextDeps, request: ContextRequest): GraphQLContext {
  let exempt = false;
  const reads: ReadGate = { run: (read) => (exempt ? read() : deps.reads.run(read)) };
  const loaders: Loaders = createLoaders({ cache: deps.cache, trace: request.trace, reads });
  const token = parseBearer(request.authorization);
  let viewer: Promise<UserDoc | null> | undefined;
  let session = request.session;
  let sessionExpiresAt: number | null = null;
  const sessionOnce = (): Promise<SessionInfo | null> => {
    session ??= token ? deps.services.auth.resolveSession(token, request.trace) : Promise.resolve(null);
    return session;
  };
  const viewerOnce = (): Promise<UserDoc | null> => {
    viewer ??= (async () => {
      const session = await sessionOnce();
      const user = session ? await loaders.user.load(session.userId.toHexString()) : null;
      if (!user || user.deletedAt) return null;
      sessionExpiresAt = session?.expiresAt.getTime() ?? null;
      return user;
    })();
    return viewer;
  };
  return {
    logger: deps.logger,
    services: deps.services,
    cache: deps.cache,
    trace: request.trace,
    loaders,
    fields: deps.fieldCache.createLoader(loaders, async () => (await viewerOnce())?._id.toHexString(), request.trace),
    token,
    clientIp: request.clientIp ?? null,
    viewer: viewerOnce,
    sessionExpiresAt: () => sessionExpiresAt,
    session: sessionOnce,
    signIn(user) {
      viewer = Promise.resolve(user);
    },
    exemptFromReadBulkhead() {
      exempt = true;
    },
  };
}

/** The token of `Authorization: Bearer <token>`, or null for anything else. */
export function parseBearer(header: string | undefined): string | null {
  const match = /^Bearer\s+([A-Za-z0-9_-]{16,200})\s*$/i.exec(header ?? '');
  return match?.[1] ?? null;
}
