import { createHash, randomBytes } from 'node:crypto';
import type { Types } from 'mongoose';
import { AppError, ErrorCode } from '../errors.js';
import { SessionModel, UserModel } from '../models/index.js';
import type { UserDoc } from '../models/user.model.js';
import { verifyPassword } from './password.js';
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
}

/** Logins, logouts and session lookups. */
export type AuthService = ReturnType<typeof createAuthService>;

// A dummy hash to verify against for unknown emails, so both failures take the same time.
const DUMMY_HASH = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

/** Sessions: an opaque random token for the client, only its SHA-256 in MongoDB. */
export function createAuthService(options: AuthServiceOptions) {
  const ttlMs = options.sessionTtlSeconds * 1_000;
  // Renew a session's expiry at most this often, so an active client costs no write per request.
  const renewAfterMs = Math.min(60_000, ttlMs / 10);

  return {
    /** A new session for matching credentials; one BAD_USER_INPUT error for any mismatch. */
    async login(scope: RequestScope, email: string, password: string): Promise<AuthResult> {
      const credentials = parseInput(inputs.login, { email, password }, 'login');
      const user = await UserModel.findOne({ email: credentials.email.trim().toLowerCase() }).lean<UserDoc>().exec();
      const ok = await verifyPassword(credentials.password, user?.passwordHash ?? DUMMY_HASH);
      if (!user || !ok) throw new AppError(ErrorCode.BadUserInput, 'Wrong email or password.', { reason: 'INVALID_CREDENTIALS' });
      const token = randomBytes(32).toString('base64url');
      const expiresAt = new Date(Date.now() + ttlMs);
      await SessionModel.create({ tokenHash: hashToken(token), user: user._id, expiresAt });
      scope.signIn(user);
      return { token, user, expiresAt };
    },

    /** Ends the request's session; false when it had none. */
    async logout(scope: RequestScope): Promise<boolean> {
      if (!scope.token) return false;
      const result = await SessionModel.deleteOne({ tokenHash: hashToken(scope.token) }).exec();
      return result.deletedCount > 0;
    },

    /** The live session of a token, its expiry slid forward on use; null when unknown or expired. */
    async resolveSession(token: string): Promise<SessionInfo | null> {
      const now = Date.now();
      const session = await SessionModel.findOne({ tokenHash: hashToken(token), expiresAt: { $gt: new Date(now) } })
        .lean()
        .exec();
      if (!session) return null;
      const expiresAt = new Date(now + ttlMs);
      if (expiresAt.getTime() - session.expiresAt.getTime() < renewAfterMs) return { userId: session.user, expiresAt: session.expiresAt };
      await SessionModel.updateOne({ _id: session._id }, { $set: { expiresAt } }).exec();
      return { userId: session.user, expiresAt };
    },

    /** Deletes expired sessions (for servers without TTL indexes); returns how many. */
    async sweepExpired(): Promise<number> {
      const result = await SessionModel.deleteMany({ expiresAt: { $lte: new Date() } }).exec();
      return result.deletedCount;
    },
  };
}

/** The stored form of a token: base64url SHA-256. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}
