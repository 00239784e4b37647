import { Types } from 'mongoose';
import { rateLimitPrefix } from '../../src/services/rate-limits.js';
import { describe, expect, it } from 'vitest';
import { SessionModel } from '../../src/models/index.js';
import { usePrivateRedisApp } from '../helpers/private-redis-app.js';
import { USER_PASSWORD, type GqlResponse } from '../helpers/test-app.js';
import { postFrom } from '../helpers/post-from.js';
import { sleep } from '../helpers/wait.js';

// Small limits, so that a test reaches them in a few requests; a short login window, so that one
// can outwait it. A Redis of this file's own, so that the last test can stop it.
const WINDOW_SECONDS = 5;
const FAILURES_PER_EMAIL_AND_IP = 4;
const FAILURES_PER_EMAIL = 7;
const ATTEMPTS_PER_IP = 15;
const SIGNUPS_PER_IP = 3;
const SESSIONS_PER_USER = 3;

// The last test stops the Redis; the fixture's own stop then does nothing more.
const { redis, t } = usePrivateRedisApp({
  seed: { users: 10, products: 2, reviews: 2, orders: 1 },
  env: {
    LOGIN_WINDOW_SECONDS: String(WINDOW_SECONDS),
    LOGIN_MAX_FAILURES_PER_EMAIL_AND_IP: String(FAILURES_PER_EMAIL_AND_IP),
    LOGIN_MAX_FAILURES_PER_EMAIL: String(FAILURES_PER_EMAIL),
    LOGIN_MAX_ATTEMPTS_PER_IP: String(ATTEMPTS_PER_IP),
    SIGNUP_MAX_PER_IP: String(SIGNUPS_PER_IP),
    SESSION_MAX_NEW_PER_USER: String(SESSIONS_PER_USER),
  },
});

const LOGIN = 'mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }';

/** A response with its status and `Retry-After`. */
interface Sent {
  status: number;
  retryAfter: string | undefined;
  body: GqlResponse['body'];
}

/** POSTs an operation from the local address `from`: each test is its own client address. */
const post = (from: string, query: string, variables: Record<string, unknown>, headers: Record<string, string> = {}): Promise<Sent> =>
  postFrom<Sent['body']>(t.url, from, { query, variables }, headers);

const login = (from: string, email: string, password: string, headers?: Record<string, string>) =>
  post(from, LOGIN, { e: email, p: password }, headers);

/** The error's `reason`, or OK when the response has data. */
function outcome(res: Sent): string {
  if (res.body.data) return 'OK';
  const extensions = res.body.errors?.[0]?.extensions;
  return String(extensions?.reason ?? extensions?.code);
}

/** Checks a refusal: RATE_LIMITED with `reason`, HTTP 429, and Retry-After equal to `retryAfterSeconds` (1..max). */
function expectRateLimited(res: Sent, reason: string, maxSeconds: number): number {
  expect(res.body.data).toBeNull();
  const extensions = res.body.errors?.[0]?.extensions;
  expect(extensions).toMatchObject({ code: 'RATE_LIMITED', reason });
  expect(res.status).toBe(429);
  const seconds = Number(extensions?.retryAfterSeconds);
  expect(seconds).toBeGreaterThanOrEqual(1);
  expect(seconds).toBeLessThanOrEqual(maxSeconds);
  expect(res.retryAfter).toBe(String(seconds));
  return seconds;
}

describe('login limits', () => {
  it('a flood of wrong passwords is refused (RATE_LIMITED, 429, Retry-After), then the right one too until the window passes', async () => {
    const email = 'user1@example.com';
    // Ten at once, each claiming another address in X-Forwarded-For (ignored: TRUST_PROXY is off).
    const flood = await Promise.all(
      Array.from({ length: 10 }, (_, i) => login('127.0.0.2', email, `wrong-password-${i}`, { 'x-forwarded-for': `10.9.8.${i}` })),
    );
    const outcomes = flood.map(outcome);
    // Counted before the password is checked: no more guesses verified than the limit, even at once.
    expect(outcomes.filter((o) => o === 'INVALID_CREDENTIALS')).toHaveLength(FAILURES_PER_EMAIL_AND_IP);
    expect(outcomes.filter((o) => o === 'TOO_MANY_FAILURES')).toHaveLength(10 - FAILURES_PER_EMAIL_AND_IP);
    for (const res of flood.filter((r) => outcome(r) === 'INVALID_CREDENTIALS')) expect(res.status).toBe(200);
    for (const res of flood.filter((r) => outcome(r) === 'TOO_MANY_FAILURES')) expectRateLimited(res, 'TOO_MANY_FAILURES', WINDOW_SECONDS);

    const right = await login('127.0.0.2', email, USER_PASSWORD);
    const wait = expectRateLimited(right, 'TOO_MANY_FAILURES', WINDOW_SECONDS);
    expect(right.body.errors?.[0]?.message).toMatch(/retry in \d+ s/);

    // Another address: another email is unaffected, and so is this one (its failures are under
    // the per-email limit): a flood from one address does not lock the owner out elsewhere.
    expect(outcome(await login('127.0.0.3', 'user2@example.com', USER_PASSWORD))).toBe('OK');
    expect(outcome(await login('127.0.0.3', email, USER_PASSWORD))).toBe('OK');

    // The counters are in Redis, under the keyspace's rate-limit prefix; no email in any key.
    expect(await redis.client.exists(`${rateLimitPrefix(t.app.cache.keys, 'login-ip')}:127.0.0.2`)).toBe(1);
    const keys = await redis.client.keys(`${t.app.cache.keys.prefix}:rl:*`);
    expect(keys.some((k) => k.startsWith(rateLimitPrefix(t.app.cache.keys, 'login-email-ip')))).toBe(true);
    expect(keys.some((k) => k.includes('@'))).toBe(false);

    await sleep(wait * 1_000 + 300);
    const later = await login('127.0.0.2', email, USER_PASSWORD);
    expect(later.status).toBe(200);
    expect(outcome(later)).toBe('OK');
  });

  it('failures spread over addresses are limited per email, whatever the password', async () => {
    const email = 'user4@example.com';
    const from = ['127.0.0.4', '127.0.0.4', '127.0.0.4', '127.0.0.5', '127.0.0.5', '127.0.0.5', '127.0.0.6'];
    expect(from).toHaveLength(FAILURES_PER_EMAIL);
    for (const address of from) expect(outcome(await login(address, email, 'wrong-password'))).toBe('INVALID_CREDENTIALS');
    expectRateLimited(await login('127.0.0.7', email, USER_PASSWORD), 'TOO_MANY_FAILURES', WINDOW_SECONDS);
    expect(outcome(await login('127.0.0.7', 'user5@example.com', USER_PASSWORD))).toBe('OK');
  });

  it('failures from addresses the owner never used do not lock the owner out where it logged in; guessing stays bounded', async () => {
    const email = 'user9@example.com';
    // The owner logs in from its usual address: known to the account from now on.
    expect(outcome(await login('127.0.0.20', email, USER_PASSWORD))).toBe('OK');
    // An attacker spreads guesses over 20 addresses, two each: only FAILURES_PER_EMAIL of them are
    // checked in the window; every other one is refused before the password is looked at.
    const guesses: Sent[] = [];
    for (let i = 0; i < 20; i += 1) for (let j = 0; j < 2; j += 1) guesses.push(await login(`127.0.1.${i + 1}`, email, `guess-${i}-${j}`));
    const outcomes = guesses.map(outcome);
    expect(outcomes.filter((o) => o === 'INVALID_CREDENTIALS')).toHaveLength(FAILURES_PER_EMAIL);
    expect(outcomes.filter((o) => o === 'TOO_MANY_FAILURES')).toHaveLength(40 - FAILURES_PER_EMAIL);
    // The owner, at its known address, is let in; at an address it never used, it waits like the attacker.
    expect(outcome(await login('127.0.0.20', email, USER_PASSWORD))).toBe('OK');
    expectRateLimited(await login('127.0.0.21', email, USER_PASSWORD), 'TOO_MANY_FAILURES', WINDOW_SECONDS);
    // A known address still has its own limit: the owner's typos (or someone behind the same address).
    for (let i = 0; i < FAILURES_PER_EMAIL_AND_IP; i += 1)
      expect(outcome(await login('127.0.0.20', email, `typo-${i}`))).toBe('INVALID_CREDENTIALS');
    expectRateLimited(await login('127.0.0.20', email, USER_PASSWORD), 'TOO_MANY_FAILURES', WINDOW_SECONDS);
  });

  it('each address has a budget of attempts, whichever emails they name', async () => {
    for (let i = 0; i < ATTEMPTS_PER_IP; i += 5) {
      const batch = await Promise.all([0, 1, 2, 3, 4].map((j) => login('127.0.0.8', `nobody${i + j}@example.com`, 'wrong-password')));
      expect(batch.map(outcome)).toEqual(Array(5).fill('INVALID_CREDENTIALS'));
    }
    expectRateLimited(await login('127.0.0.8', 'user5@example.com', USER_PASSWORD), 'TOO_MANY_ATTEMPTS', WINDOW_SECONDS);
    expect(outcome(await login('127.0.0.9', 'user5@example.com', USER_PASSWORD))).toBe('OK');
  });

  it('a user gets a bounded number of new sessions per window', async () => {
    const id = '5eed00000000000000000006';
    for (let i = 0; i < SESSIONS_PER_USER; i += 1)
      expect(outcome(await login('127.0.0.10', 'user6@example.com', USER_PASSWORD))).toBe('OK');
    expectRateLimited(await login('127.0.0.11', 'user6@example.com', USER_PASSWORD), 'TOO_MANY_SESSIONS', 86_400);
    expect(outcome(await login('127.0.0.11', 'user6@example.com', 'wrong-password'))).toBe('INVALID_CREDENTIALS');
    expect(await SessionModel.countDocuments({ user: new Types.ObjectId(id) })).toBe(SESSIONS_PER_USER);
  });
});

describe('sign-up limits', () => {
  it('an address gets a bounded number of sign-ups per window; other addresses are unaffected', async () => {
    const signUp = (from: string, n: number) =>
      post(from, 'mutation($input: CreateUserInput!) { createUser(input: $input) { id } }', {
        input: { name: `Signup ${n}`, email: `signup${n}@example.com`, password: 'long-enough-1' },
      });
    for (let n = 0; n < SIGNUPS_PER_IP; n += 1) expect(outcome(await signUp('127.0.0.12', n))).toBe('OK');
    expectRateLimited(await signUp('127.0.0.12', 100), 'TOO_MANY_SIGN_UPS', 3_600);
    expect(outcome(await signUp('127.0.0.13', 101))).toBe('OK');
  });
});

describe('with Redis down', () => {
  it('the in-process counters still limit', async () => {
    await redis.stop();
    const email = 'user7@example.com';
    const outcomes: string[] = [];
    for (let i = 0; i < FAILURES_PER_EMAIL_AND_IP + 2; i += 1) outcomes.push(outcome(await login('127.0.0.14', email, 'wrong-password')));
    expect(outcomes).toEqual([...Array(FAILURES_PER_EMAIL_AND_IP).fill('INVALID_CREDENTIALS'), 'TOO_MANY_FAILURES', 'TOO_MANY_FAILURES']);
    expectRateLimited(await login('127.0.0.14', email, USER_PASSWORD), 'TOO_MANY_FAILURES', WINDOW_SECONDS);
    expect(outcome(await login('127.0.0.15', 'user8@example.com', USER_PASSWORD))).toBe('OK');
  });
});
