import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { metricValue } from '../helpers/metrics.js';
import { until } from '../helpers/wait.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ seed: false });
});
afterAll(() => t.stop());

/** Registers `query` as an automatic persisted query (POST with its hash); resolves to the response body. */
async function register(query: string): Promise<{ hash: string; body: { data?: unknown; errors?: unknown[] } }> {
  const hash = createHash('sha256').update(query).digest('hex');
  const res = await fetch(`${t.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, extensions: { persistedQuery: { version: 1, sha256Hash: hash } } }),
  });
  expect(res.status).toBe(200);
  return { hash, body: (await res.json()) as { data?: unknown; errors?: unknown[] } };
}

const keyOf = (hash: string): string => t.app.cache.keys.persistedQuery(`apq:${hash}`);

describe('automatic persisted queries are bounded', () => {
  it('a document over PERSISTED_QUERY_MAX_BYTES runs but is not stored (and is counted); a normal one is stored, for an hour', async () => {
    const redis = t.app.redis;
    if (!redis) throw new Error('the test app has no Redis');
    // A 240 KB comment: few tokens, many bytes.
    const oversized = await register(`# ${'x'.repeat(240_000)}\n{ viewer { id } }`);
    expect(oversized.body.errors).toBeUndefined();
    expect(oversized.body.data).toEqual({ viewer: null });
    const normal = await register('{ viewer { id name } }');
    expect(normal.body.data).toEqual({ viewer: null });

    // Apollo stores without waiting; the normal one, sent second, shows the writes are done.
    await until(async () => (await redis.exists(keyOf(normal.hash))) === 1, { what: 'the normal query to be stored', timeoutMs: 5_000 });
    expect(await redis.exists(keyOf(oversized.hash))).toBe(0);
    expect(await metricValue(t, 'graphql_persisted_queries_not_stored_total', { reason: 'too_large' })).toBe(1);
    const ttlMs = await redis.pttl(keyOf(normal.hash));
    expect(ttlMs).toBeGreaterThan(3_500_000);
    expect(ttlMs).toBeLessThanOrEqual(3_600_000);
  });
});

describe('the persisted-query handshake in the metrics', () => {
  it('a hash-only first request (PERSISTED_QUERY_NOT_FOUND) is counted under its own outcome, not as an error', async () => {
    const query = '{ viewer { id email } }';
    const hash = createHash('sha256').update(query).digest('hex');
    const errorsBefore = await metricValue(t, 'graphql_operations_total', { outcome: 'error' });
    const handshake = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ extensions: { persistedQuery: { version: 1, sha256Hash: hash } } }),
    });
    const body = (await handshake.json()) as { errors?: { extensions?: { code?: string } }[] };
    expect(body.errors?.[0]?.extensions?.code).toBe('PERSISTED_QUERY_NOT_FOUND');
    expect(await metricValue(t, 'graphql_operations_total', { outcome: 'persisted_query_not_found' })).toBe(1);
    expect(await metricValue(t, 'graphql_operations_total', { outcome: 'error' })).toBe(errorsBefore);
    // A real error still is one.
    await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ nope }' }),
    });
    expect(await metricValue(t, 'graphql_operations_total', { outcome: 'error' })).toBe(errorsBefore + 1);
  });
});
