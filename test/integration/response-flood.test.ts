import { rateLimitPrefix } from '../../src/services/rate-limits.js';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricValue } from '../helpers/metrics.js';
import { postFrom } from '../helpers/post-from.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/redis.js';
import { startTestApp, USER_PASSWORD, type TestApp } from '../helpers/test-app.js';
import { until } from '../helpers/wait.js';

// The first hostile review's flood: an anonymous client sends the catalog query thousands of
// times, each with a junk variable (or a made-up token, or another query text), to fill Redis
// until it evicts the login counters and so lifts a victim's lockout.

const CATALOG = 'query Catalog($first: Int = 20) { products(first: $first) { edges { node { id name description priceCents } } } }';
const LOGIN = 'mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }';

interface Sent {
  status: number;
  body: { data?: Record<string, unknown> | null; errors?: { extensions?: Record<string, unknown> }[] };
  cache: string | undefined;
}

/** POSTs an operation from the local address `from`, as a client of its own would; `cache` is what the response cache did. */
async function post(url: string, from: string, body: unknown, headers: Record<string, string> = {}): Promise<Sent> {
  const sent = await postFrom<Sent['body'] & { extensions?: { cache?: { response?: string } } }>(url, from, body, headers);
  return { status: sent.status, body: sent.body, cache: sent.body.extensions?.cache?.response };
}

/** Runs `count` calls of `fn`, `concurrency` at a time. */
async function inParallel(count: number, concurrency: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await fn(next++);
    }),
  );
}

/** The error's `reason`, or OK when the response has data. */
function outcome(res: Sent): string {
  if (res.body.data) return 'OK';
  const extensions = res.body.errors?.[0]?.extensions;
  return String(extensions?.reason ?? extensions?.code);
}

describe('what one client can make the server store', () => {
  let cacheRedis: PrivateRedis;
  let t: TestApp;
  const CLIENT_BYTES_PER_MINUTE = 64 * 1024;
  const MAX_BYTES = 4 * 1024;

  beforeAll(async () => {
    cacheRedis = await startPrivateRedis();
    t = await startTestApp({
      redisUrl: cacheRedis.url,
      seed: { users: 5, products: 30, reviews: 10, orders: 0 },
      env: { CACHE_RESPONSE_CLIENT_BYTES_PER_MINUTE: String(CLIENT_BYTES_PER_MINUTE), CACHE_RESPONSE_MAX_BYTES: String(MAX_BYTES) },
    });
  });
  afterAll(async () => {
    await t.stop();
    await cacheRedis.stop();
  });

  const storedResponses = async (): Promise<number> => (await cacheRedis.client.keys(`${t.app.cache.keys.prefix}:{resp:*}:r:*`)).length;

  it('undeclared variables and tokens that open no session name the response already stored', async () => {
    const first = await post(t.url, '127.0.0.2', { query: CATALOG, variables: { first: 5 } });
    expect(first.cache).toBe('MISS');
    expect(await storedResponses()).toBe(1);
    const junk = [];
    for (let i = 0; i < 60; i += 1) {
      junk.push(await post(t.url, '127.0.0.2', { query: CATALOG, variables: { first: 5, junk: randomBytes(8).toString('hex') } }));
      junk.push(
        await post(
          t.url,
          '127.0.0.2',
          { query: CATALOG, variables: { first: 5 } },
          { authorization: `Bearer ${randomBytes(24).toString('base64url')}` },
        ),
      );
    }
    // Each one a hit of the one stored response: the same data, nothing new stored.
    expect(junk.map((r) => r.cache)).toEqual(junk.map(() => 'HIT'));
    for (const res of junk) expect(res.body.data).toEqual(first.body.data);
    expect(await storedResponses()).toBe(1);
  });

  it('the declared variables count as execution coerces them: a default and the same value given are one response', async () => {
    const byDefault = await post(t.url, '127.0.0.2', { query: CATALOG });
    const explicit = await post(t.url, '127.0.0.2', { query: CATALOG, variables: { first: 20 } });
    expect([byDefault.cache, explicit.cache]).toEqual(['MISS', 'HIT']);
    expect(explicit.body.data).toEqual(byDefault.body.data);
    // Variables that do not coerce are executed and answered with an error, and never stored.
    const wrong = await post(t.url, '127.0.0.2', { query: CATALOG, variables: { first: 'twenty' } });
    expect(wrong.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('a client past its bytes per minute is answered but stores nothing more, and a response over the size is never stored', async () => {
    const before = await storedResponses();
    const budgetBefore = await metricValue(t, 'graphql_responses_not_stored_total', { reason: 'client_budget' });
    // Each text another response (an alias): 200 of them from one client, about 1.5 KB each.
    await inParallel(200, 4, (i) =>
      post(t.url, '127.0.0.3', { query: `query { p${i}: products(first: 8) { edges { node { id name description } } } }` }),
    );
    const stored = (await storedResponses()) - before;
    expect(stored).toBeGreaterThan(0);
    expect(stored).toBeLessThan(200);
    expect(await metricValue(t, 'graphql_responses_not_stored_total', { reason: 'client_budget' })).toBeGreaterThan(budgetBefore);
    // Another client still has its own budget.
    const other = await post(t.url, '127.0.0.4', { query: 'query { other: products(first: 3) { edges { node { id } } } }' });
    expect(other.cache).toBe('MISS');
    expect((await post(t.url, '127.0.0.4', { query: 'query { other: products(first: 3) { edges { node { id } } } }' })).cache).toBe('HIT');
    // Over CACHE_RESPONSE_MAX_BYTES: run, answered, not stored.
    const tooLargeBefore = await metricValue(t, 'graphql_responses_not_stored_total', { reason: 'too_large' });
    const large = 'query { products(first: 30) { edges { node { id name description priceCents category createdAt updatedAt } } } }';
    expect((await post(t.url, '127.0.0.5', { query: large })).cache).toBe('MISS');
    expect((await post(t.url, '127.0.0.5', { query: large })).cache).toBe('MISS');
    expect(await metricValue(t, 'graphql_responses_not_stored_total', { reason: 'too_large' })).toBe(tooLargeBefore + 2);
  });
});

describe('a flood that makes the cache Redis evict', () => {
  let cacheRedis: PrivateRedis;
  let stateRedis: PrivateRedis;
  let t: TestApp;
  const VICTIM = 'user3@example.com';
  const ATTACKER = '127.0.0.6';

  beforeAll(async () => {
    cacheRedis = await startPrivateRedis();
    stateRedis = await startPrivateRedis();
    t = await startTestApp({
      redisUrl: cacheRedis.url,
      seed: { users: 5, products: 40, reviews: 10, orders: 0 },
      env: {
        REDIS_STATE_URL: stateRedis.url,
        LOGIN_MAX_FAILURES_PER_EMAIL_AND_IP: '3',
        // No per-client bound here: the flood must reach eviction, to show it cannot lift a lockout.
        CACHE_RESPONSE_CLIENT_BYTES_PER_MINUTE: '0',
      },
    });
  });
  afterAll(async () => {
    await t.stop();
    await cacheRedis.stop();
    await stateRedis.stop();
  });

  it('keeps the victim locked: the counters live in the state Redis, which the flood does not reach', async () => {
    for (let i = 0; i < 3; i += 1)
      expect(outcome(await post(t.url, ATTACKER, { query: LOGIN, variables: { e: VICTIM, p: `guess-${i}` } }))).toBe('INVALID_CREDENTIALS');
    expect(outcome(await post(t.url, ATTACKER, { query: LOGIN, variables: { e: VICTIM, p: 'guess-3' } }))).toBe('TOO_MANY_FAILURES');

    // The cache Redis gets a little room above what it holds now, with the documented policy.
    const used = Number(/^used_memory:(\d+)/m.exec(await cacheRedis.client.info('memory'))?.[1]);
    await cacheRedis.client.config('SET', 'maxmemory', String(used + 1024 * 1024));
    await cacheRedis.client.config('SET', 'maxmemory-policy', 'volatile-lru');
    const evicted = async () => Number(/^evicted_keys:(\d+)/m.exec(await cacheRedis.client.info('stats'))?.[1]);
    let sent = 0;
    await until(
      async () => {
        await inParallel(50, 5, async () => {
          sent += 1;
          await post(t.url, '127.0.0.7', {
            query: `query { f${sent}: products(first: 40) { edges { node { id name description priceCents category } } } }`,
          });
        });
        return (await evicted()) >= 200 || sent >= 5_000;
      },
      { timeoutMs: 120_000, intervalMs: 1, what: 'the flood to make the cache Redis evict' },
    );
    expect(await evicted()).toBeGreaterThanOrEqual(200);

    // Still locked, and still counted where nothing is evicted.
    expect(outcome(await post(t.url, ATTACKER, { query: LOGIN, variables: { e: VICTIM, p: USER_PASSWORD } }))).toBe('TOO_MANY_FAILURES');
    expect((await stateRedis.client.keys(`${rateLimitPrefix(t.app.cache.keys, 'login-email-ip')}:*`)).length).toBe(1);
    expect(await cacheRedis.client.keys(`${t.app.cache.keys.prefix}:rl:*`)).toEqual([]);
  });
});
