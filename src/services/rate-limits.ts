import { createHash } from 'node:crypto';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Keyspace, RedisClient } from 'graphql-lease-cache';
import { AppError, ErrorCode } from '../errors.js';

/** The limits of the configuration (see docs/api.md, Rate limits); every window is fixed, in seconds. */
export interface RateLimitSettings {
  /** The window of the three login limits, in seconds. */
  loginWindowSeconds: number;
  /** Failed logins per email from one client address per window; a successful login resets it. */
  loginFailuresPerEmailAndIp: number;
  /**
   * Failed logins per email per window from the addresses it has not logged in from lately (a
   * guess spread over many addresses); past it those addresses are refused, never a known one.
   */
  loginFailuresPerEmail: number;
  /** How long an address the account logged in from stays known to it, in seconds. */
  loginKnownAddressSeconds: number;
  /** Login attempts, failed or not, per client address per window. */
  loginAttemptsPerIp: number;
  /** The window of the sign-up limit, in seconds. */
  signUpWindowSeconds: number;
  /** `createUser` calls per client address per window. */
  signUpsPerIp: number;
  /** The window of the new-session limit, in seconds. */
  sessionWindowSeconds: number;
  /** New sessions (successful logins) per user per window: bounds what login floods add to Redis and MongoDB. */
  sessionsPerUser: number;
  /** `recordProductView` calls per client address per minute. */
  viewsPerClientPerMinute: number;
  /** A client address's views of one product count once per this window, in seconds; 0: every view counts. */
  viewDedupWindowSeconds: number;
  /** POST /cache/invalidate calls per client address per minute, authorised or not. */
  invalidationsPerClientPerMinute: number;
}

/** Options of {@link createRateLimits}. */
export interface RateLimitsOptions {
  /**
   * The counters' Redis, shared by every server (REDIS_STATE_URL, else the cache's); null:
   * in-process counters only. A Redis that evicts them under memory pressure lifts limits.
   */
  redis: RedisClient | null;
  keys: Keyspace;
  settings: RateLimitSettings;
}

/** A login let through the limits, to be told whether its password matched. */
export interface LoginAttempt {
  /** The password matched: the email+address failures are reset and this attempt is not a failure of the email. */
  succeeded(): Promise<void>;
}

/** Counters of logins, sign-ups and new sessions; each refusal a RATE_LIMITED error. */
export type RateLimits = ReturnType<typeof createRateLimits>;

/**
 * Rate limits on rate-limiter-flexible: fixed-window counters in Redis (one key per subject,
 * under {@link rateLimitPrefix}, expiring with its window), so every server shares them; when
 * Redis fails or is not connected, each limiter falls back to in-process counters with the
 * same limits (its `insuranceLimiter`), so a Redis outage never lifts them.
 *
 * A login is counted before its password is checked: a flood of concurrent guesses cannot get
 * past the limit while the first ones are still being verified. The email counters' points are
 * given back when the password matches, so only failures stay counted against an email.
 *
 * Failures from elsewhere never lock the owner out (OWASP's advice against account lockout by
 * anyone): an address the account logged in from within `loginKnownAddressSeconds` is known to
 * it, and the per-email limit counts and refuses only the others. A known address has its own
 * per-email-and-address limit. So an attacker off the owner's addresses gets at most
 * `loginFailuresPerEmail` guesses per window in all, however many addresses it uses, and each
 * known address `loginFailuresPerEmailAndIp`. A known address that was lost (evicted, Redis
 * down) is unknown again: counted, never exempt.
 */
export function createRateLimits(options: RateLimitsOptions) {
  const limiters = createLimiters(options);
  const { signUpIp, sessionsUser, viewsClient, viewCounted, invalidationsClient } = limiters;

  return {
    /**
     * Counts a login attempt of `email` (normalized) from `clientIp`; RATE_LIMITED when the
     * address, the email from this address, or (for an address the account has not logged in
     * from lately) the email from such addresses is over its limit. The address is counted
     * first, so that an address already refused does not use up the email's failures.
     */
    loginAttempt: (email: string, clientIp: string | null): Promise<LoginAttempt> =>
      loginAttempt(limiters, options.settings, email, clientIp),

    /** Counts a sign-up from `clientIp`; RATE_LIMITED over the limit. */
    async signUp(clientIp: string | null): Promise<void> {
      await consume(signUpIp, addressSubject(clientIp), 'TOO_MANY_SIGN_UPS', 'Too many sign-ups from this address');
    },

    /**
     * Counts a `recordProductView` of `productId` (hex) from `clientIp`: RATE_LIMITED past the
     * address's views per minute; false when this address's view of the product was counted
     * already in the window (the view is not counted again), true when it counts.
     */
    async productView(clientIp: string | null, productId: string): Promise<boolean> {
      const ip = addressSubject(clientIp);
      await consume(viewsClient, ip, 'TOO_MANY_VIEWS', 'Too many product views from this address');
      if (!viewCounted) return true;
      try {
        await viewCounted.consume(`${ip}:${productId}`);
        return true;
      } catch (error) {
        if (!(error instanceof RateLimiterRes)) throw error;
        return false;
      }
    },

    /** Counts a POST /cache/invalidate from `clientIp` (before its key or session is checked); RATE_LIMITED over the limit. */
    async cacheInvalidation(clientIp: string | null): Promise<void> {
      await consume(
        invalidationsClient,
        addressSubject(clientIp),
        'TOO_MANY_INVALIDATIONS',
        'Too many cache invalidations from this address',
      );
    },

    /** Counts a new session of the user `userId` (hex); RATE_LIMITED over the limit. */
    async newSession(userId: string): Promise<void> {
      await consume(sessionsUser, userId, 'TOO_MANY_SESSIONS', 'Too many new sessions for this account');
    },
  };
}

/** The counters of {@link createRateLimits}, one per limit: in Redis, or in process without it (or while it is away). */
function createLimiters(options: RateLimitsOptions) {
  const { settings } = options;
  const limiter = (name: string, points: number, durationSeconds: number): RateLimiterAbstract => {
    const common = { keyPrefix: rateLimitPrefix(options.keys, name), points, duration: durationSeconds };
    const local = new RateLimiterMemory(common);
    if (!options.redis) return local;
    // Not ready (reconnecting): straight to the local counters, without waiting for a timeout.
    return new RateLimiterRedis({ ...common, storeClient: options.redis, rejectIfRedisNotReady: true, insuranceLimiter: local });
  };
  return {
    loginIp: limiter('login-ip', settings.loginAttemptsPerIp, settings.loginWindowSeconds),
    loginEmailIp: limiter('login-email-ip', settings.loginFailuresPerEmailAndIp, settings.loginWindowSeconds),
    loginEmail: limiter('login-email', settings.loginFailuresPerEmail, settings.loginWindowSeconds),
    // One point per (email, address) that logged in: present means known.
    loginKnown: limiter('login-known', 1, settings.loginKnownAddressSeconds),
    signUpIp: limiter('signup-ip', settings.signUpsPerIp, settings.signUpWindowSeconds),
    sessionsUser: limiter('sessions-user', settings.sessionsPerUser, settings.sessionWindowSeconds),
    viewsClient: limiter('views-ip', settings.viewsPerClientPerMinute, 60),
    invalidationsClient: limiter('invalidations-ip', settings.invalidationsPerClientPerMinute, 60),
    // One point per (address, product) and window: present means this client's view is counted already.
    viewCounted: settings.viewDedupWindowSeconds > 0 ? limiter('view-ip-product', 1, settings.viewDedupWindowSeconds) : null,
  };
}

/** {@link createRateLimits}' `loginAttempt`. */
async function loginAttempt(
  limiters: ReturnType<typeof createLimiters>,
  settings: RateLimitsOptions['settings'],
  email: string,
  clientIp: string | null,
): Promise<LoginAttempt> {
  const { loginIp, loginEmailIp, loginEmail, loginKnown } = limiters;
  const ip = addressSubject(clientIp);
  const subject = digest(email);
  const pair = `${subject}:${ip}`;
  await consume(loginIp, ip, 'TOO_MANY_ATTEMPTS', 'Too many login attempts from this address');
  await consume(loginEmailIp, pair, 'TOO_MANY_FAILURES', 'Too many failed logins for this email');
  const known = (await loginKnown.get(pair)) !== null;
  if (!known) await consume(loginEmail, subject, 'TOO_MANY_FAILURES', 'Too many failed logins for this email');
  return {
    async succeeded() {
      await Promise.all([
        loginEmailIp.delete(pair),
        known ? undefined : loginEmail.reward(subject, 1),
        loginKnown.set(pair, 1, settings.loginKnownAddressSeconds),
      ]);
    },
  };
}

/** Takes one point; an over-limit answer becomes RATE_LIMITED with `retryAfterSeconds` (1 or more). */
async function consume(limiter: RateLimiterAbstract, subject: string, reason: string, message: string): Promise<void> {
  try {
    await limiter.consume(subject);
  } catch (error) {
    if (!(error instanceof RateLimiterRes)) throw error; // both stores failed: a bug, not a refusal
    const retryAfterSeconds = Math.max(1, Math.ceil(error.msBeforeNext / 1_000));
    throw new AppError(ErrorCode.RateLimited, `${message}; retry in ${retryAfterSeconds} s.`, { reason, details: { retryAfterSeconds } });
  }
}

/** An email as a key part: its SHA-256, so no address is kept in Redis (nor any character unsafe in a key). */
function digest(email: string): string {
  return createHash('sha256').update(email).digest('base64url');
}

/**
 * What a client address is counted as: an IPv4 address as it is (also when IPv4-mapped), an IPv6
 * address by its /64 prefix, since one host commonly holds a whole /64 and could otherwise
 * take a fresh budget with every address; `unknown` when Express knows none.
 */
export function addressSubject(ip: string | null): string {
  if (!ip) return 'unknown';
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  if (mapped?.[1]) return mapped[1];
  if (!ip.includes(':')) return ip;
  const [head = '', tail] = (ip.split('%')[0] ?? '').split('::');
  const groups = (part: string | undefined) => (part ? part.split(':') : []);
  const left = groups(head);
  const right = groups(tail);
  const full = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${full
    .slice(0, 4)
    .map((group) => Number.parseInt(group || '0', 16).toString(16))
    .join(':')}::/64`;
}

/**
 * Where the counters of limit `name` live: `<cache prefix>:rl:<name>`, then `:<subject>` as
 * rate-limiter-flexible appends it. The one place these keys are named (the tests read them).
 */
export function rateLimitPrefix(keys: Keyspace, name: string): string {
  if (!/^[a-z-]+$/.test(name)) throw new TypeError(`a rate limit name is lower-case letters and dashes, got ${JSON.stringify(name)}`);
  return `${keys.prefix}:rl:${name}`;
}
