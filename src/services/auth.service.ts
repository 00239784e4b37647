import { createHash, randomBytes } from 'node:crypto';
import type { RequestTrace } from '../trace.js';
import type { Types } from 'mongoose';
import type { Cache, KeyedValues } from 'graphql-lease-cache';
import { AppError, ErrorCode } from '../errors.js';
import { SessionModel, UserModel } from '../models/index.js';
import type { UserDoc } from '../models/user.model.js';
import { verifyPassword } from './password.js';
import type { RateLimits } from './rate-limits.js';
import type { RequestScope } from './scope.js';
import { inputs, parseInput } from './validation.js';

/** What `login` returns (the `AuthPayload` type). */
export interface AuthResult {
  token: string;
  user: UserDoc;
  expiresAt: Date;
}

/** A live session. */
export interface SessionInfo {
  userId: Types.ObjectId;
  expiresAt: Date;
}

/** Options of {@link createAuthService}. */
export interface AuthServiceOptions {
  /** Session lifetime in seconds, renewed on use. */
  sessionTtlSeconds: number;
  cache: Cache;
  /** Counts login attempts (per address, per email) and new sessions (per user). */
  rateLimits: RateLimits;
}

/** A session as the cache keeps it (`{session:<tokenHash>}`). */
interface CachedSession {
  userId: Types.ObjectId;
  /** When MongoDB expires it; also its cache version (a renewal never loses to an older one). */
  expiresAt: Date;
}

/** Logins, logouts and session lookups. */
export type AuthService = ReturnType<typeof createAuthService>;

// A dummy hash to verify against for unknown emails, so both failures take the same time.
const DUMMY_HASH = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

/**
 * Sessions: an opaque random token for the client, only its SHA-256 in MongoDB and in Redis.
 * Lookups go through the cache core (`session:{hash}`), and each authenticated request slides
 * the key's expiry (PEXPIRE in the same script call); MongoDB's `expiresAt` is renewed at most
 * once a minute per session, and the cached copy refreshed with it.
 */
export function createAuthService(options: AuthServiceOptions) {
  const ttlMs = options.sessionTtlSeconds * 1_000;
  const deps: SessionDeps = {
    rateLimits: options.rateLimits,
    // Keys `{session:<token hash>}`; tokens themselves never reach Redis.
    sessions: options.cache.values<CachedSession>('session'),
    ttlMs,
    negativeTtlMs: 30_000,
    // Renew a session's expiry at most this often, so an active client costs no write per request.
    renewAfterMs: Math.min(60_000, ttlMs / 10),
  };
  const { sessions } = deps;

  return {
    /**
     * A new session for the credentials of a live (not deleted) account; one BAD_USER_INPUT error
     * (`INVALID_CREDENTIALS`) for any mismatch; RATE_LIMITED past the attempts of the address or
     * the failures of the email (whatever the password), or past the user's new sessions.
     */
    login: (scope: RequestScope, email: string, password: string): Promise<AuthResult> => login(deps, scope, email, password),

    /** Ends every session of a user (account deletion), tombstoning each in the cache. */
    async endAllSessions(userId: Types.ObjectId): Promise<void> {
      const sessions = await SessionModel.find({ user: userId }, { tokenHash: 1 }).lean().exec();
      await endSessions(
        deps,
        sessions.map((s) => s.tokenHash),
      );
    },

    /** Ends the request's session; false when it had none. */
    async logout(scope: RequestScope): Promise<boolean> {
      if (!scope.token) return false;
      const tokenHash = hashToken(scope.token);
      // A tombstone, not a delete: an "absent" value at the highest version outlives the session,
      // so a concurrent request's renewal (a refresh) or fill of this session can never bring it back.
      // Written before MongoDB's delete: if that one goes unanswered (it may still be applied),
      // the token is already refused rather than left working from the cache for its lifetime.
      await sessions.tombstone([tokenHash], ttlMs);
      const result = await SessionModel.deleteOne({ tokenHash }).exec();
      return result.deletedCount > 0;
    },

    /** The live session of a token, its expiry slid forward on use; null when unknown or expired. */
    resolveSession: (token: string, trace?: RequestTrace): Promise<SessionInfo | null> => resolveSession(deps, token, trace),
  };
}

/** What the session operations share. */
interface SessionDeps {
  rateLimits: RateLimits;
  sessions: KeyedValues<CachedSession>;
  /** A session's lifetime (SESSION_TTL_SECONDS), in milliseconds. */
  ttlMs: number;
  /** How long an unknown token is remembered as such, in milliseconds. */
  negativeTtlMs: number;
  /** A session's expiry is renewed in MongoDB at most this often, in milliseconds. */
  renewAfterMs: number;
}

/**
 * Deletes sessions and tombstones them: an "absent" value at the highest version, so that no
 * late refresh (a login's or a renewal's) can bring one back. Tombstones first (see logout): a
 * delete left unanswered cannot leave the tokens working from the cache.
 */
async function endSessions({ sessions, ttlMs }: SessionDeps, tokenHashes: string[]): Promise<void> {
  await sessions.tombstone(tokenHashes, ttlMs);
  await SessionModel.deleteMany({ tokenHash: { $in: tokenHashes } }).exec();
}

/**
 * A new session for the credentials of a live (not deleted) account; one BAD_USER_INPUT error
 * (`INVALID_CREDENTIALS`) for any mismatch; RATE_LIMITED past the attempts of the address or
 * the failures of the email (whatever the password), or past the user's new sessions.
 */
async function login(deps: SessionDeps, scope: RequestScope, email: string, password: string): Promise<AuthResult> {
  const { rateLimits, sessions, ttlMs } = deps;
  const credentials = parseInput(inputs.login, { email, password }, 'login');
  const normalized = credentials.email.trim().toLowerCase();
  // Counted before the password is checked, and a success then given back (see rate-limits.ts).
  const attempt = await rateLimits.loginAttempt(normalized, scope.clientIp);
  const user = await UserModel.findOne({ email: normalized, deletedAt: null }).lean<UserDoc>().exec();
  const ok = await verifyPassword(credentials.password, user?.passwordHash ?? DUMMY_HASH);
  if (!user || !ok) throw invalidCredentials();
  await attempt.succeeded();
  // Every login adds a session that lives for days: a user's new sessions are bounded too.
  await rateLimits.newSession(user._id.toHexString());
  const token = randomBytes(32).toString('base64url');
  const expiresAt = new Date(Date.now() + ttlMs);
  const tokenHash = hashToken(token);
  await SessionModel.create({ tokenHash, user: user._id, expiresAt });
  // The account may have been deleted while the password was checked, after deleteUser ended
  // its sessions (and so missed this one). Read after the session exists: a deletion not seen
  // here comes later and ends this session too; one seen here, the login undoes itself.
  const live = await UserModel.findOne({ _id: user._id, deletedAt: null }).lean<UserDoc>().exec();
  if (!live) {
    await endSessions(deps, [tokenHash]);
    throw invalidCredentials();
  }
  await sessions.set(tokenHash, { userId: live._id, expiresAt }, expiresAt.getTime(), ttlMs);
  scope.signIn(live);
  return { token, user: live, expiresAt };
}

/** The live session of a token, its expiry slid forward on use; null when unknown or expired. */
async function resolveSession(deps: SessionDeps, token: string, trace?: RequestTrace): Promise<SessionInfo | null> {
  const { sessions, ttlMs, negativeTtlMs, renewAfterMs } = deps;
  const tokenHash = hashToken(token);
  const session = await sessions.get(tokenHash, {
    trace,
    load: async () => {
      const doc = await SessionModel.findOne({ tokenHash, expiresAt: { $gt: new Date() } })
        .lean()
        .exec();
      return doc ? { userId: doc.user, expiresAt: doc.expiresAt } : null;
    },
    versionOf: (s) => s.expiresAt.getTime(),
    ttlMs: (s) => (s ? Math.max(1, s.expiresAt.getTime() - Date.now()) : negativeTtlMs),
    touchTtlMs: ttlMs,
  });
  const now = Date.now();
  if (!session || session.expiresAt.getTime() <= now) return null;
  const expiresAt = new Date(now + ttlMs);
  if (expiresAt.getTime() - session.expiresAt.getTime() < renewAfterMs) return session;
  const renewed = await SessionModel.updateOne({ tokenHash, expiresAt: { $gt: new Date(now) } }, { $set: { expiresAt } }).exec();
  if (renewed.matchedCount !== 1) return null; // logged out (or expired) meanwhile
  await sessions.set(tokenHash, { userId: session.userId, expiresAt }, expiresAt.getTime(), ttlMs);
  return { userId: session.userId, expiresAt };
}

/** The one answer to any credentials that do not open a live account. */
function invalidCredentials(): AppError {
  return new AppError(ErrorCode.BadUserInput, 'Wrong email or password.', { reason: 'INVALID_CREDENTIALS' });
}

/** Deletes expired sessions (for servers without TTL indexes); returns how many. */
export async function sweepExpiredSessions(): Promise<number> {
  const result = await SessionModel.deleteMany({ expiresAt: { $lte: new Date() } }).exec();
  return result.deletedCount;
}

/** The stored form of a token: base64url SHA-256. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}
