import type { FieldLoader } from 'graphql-lease-cache';
import { AppError, ErrorCode } from '../errors.js';
import type { Loaders } from '../loaders/index.js';
import type { UserDoc } from '../models/user.model.js';

/** What a domain operation needs from the request it serves. */
export interface RequestScope {
  /** The request's loaders (services prime them with what they write). */
  loaders: Loaders;
  /** The request's cached-field loader (`@cached` fields). */
  fields: FieldLoader;
  /** The bearer token of the request, or null. */
  token: string | null;
  /** The client's address (Express `req.ip`, so `X-Forwarded-For` only with TRUST_PROXY), or null when unknown; what rate limits count. */
  clientIp: string | null;
  /** The session's user, looked up once per request; null without a valid session. */
  viewer(): Promise<UserDoc | null>;
  /** Makes `user` the viewer for the rest of the request (after login, it sees its own fields). */
  signIn(user: UserDoc): void;
}

/** The viewer, or an UNAUTHENTICATED error. */
export async function requireViewer(scope: RequestScope): Promise<UserDoc> {
  const viewer = await scope.viewer();
  if (!viewer)
    throw new AppError(ErrorCode.Unauthenticated, 'This operation needs a session: log in and send Authorization: Bearer <token>.');
  return viewer;
}

/** The viewer if an ADMIN; UNAUTHENTICATED without a session, FORBIDDEN for anyone else. */
export async function requireAdmin(scope: RequestScope): Promise<UserDoc> {
  const viewer = await requireViewer(scope);
  if (viewer.role !== 'ADMIN') throw new AppError(ErrorCode.Forbidden, 'Only an ADMIN may do this.');
  return viewer;
}
