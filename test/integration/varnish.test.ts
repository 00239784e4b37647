import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/dev/processes.js';
import { metricValue } from '../helpers/metrics.js';
import { ADMIN, startTestApp, type TestApp } from '../helpers/test-app.js';
import { HAVE_VARNISH, startVarnish, type TestVarnish } from '../helpers/varnish.js';
import { until } from '../helpers/wait.js';

// A shared cache in front, kept exact by purges (issue 22): a real varnishd with its xkey module,
// running the VCL the project ships (deploy/varnish/default.vcl), in front of a test app that
// sends xkey surrogate keys and purges them through Varnish on every invalidation.

/** The settings of a server behind the Varnish on `port`. */
function varnishEnv(port: number): Record<string, string> {
  return {
    CACHE_RESPONSES: 'true',
    SURROGATE_KEY_HEADER: 'xkey',
    PURGE_ADAPTER: 'varnish',
    VARNISH_PURGE_URL: `http://127.0.0.1:${port}/`,
  };
}

describe.skipIf(!HAVE_VARNISH)('Varnish in front (deploy/varnish/default.vcl, xkey purges)', () => {
  let t: TestApp;
  let varnish: TestVarnish;
  let product: string;
  let port: number;

  beforeAll(async () => {
    port = await freePort();
    t = await startTestApp({ env: varnishEnv(port) });
    varnish = await startVarnish({ backendPort: Number(new URL(t.url).port), port });
    product = (await t.gql('{ products(first: 1) { edges { node { id } } } }')).body.data?.products.edges[0].node.id as string;
  }, 60_000);
  afterAll(async () => {
    await varnish?.stop();
    await t?.stop();
  });

  /** A GET query through Varnish. */
  async function get(query: string): Promise<{ status: number; headers: Headers; body: { data?: any; errors?: unknown[] } }> {
    const response = await fetch(`${varnish.url}/graphql?query=${encodeURIComponent(query)}`, {
      headers: { 'apollo-require-preflight': 'true' },
    });
    const text = await response.text();
    if (!text.startsWith('{')) throw new Error(`${response.status} ${text.slice(0, 600)}`);
    return { status: response.status, headers: response.headers, body: JSON.parse(text) as { data?: any } };
  }

  /** A POST operation through Varnish (passed to the server). */
  async function post(query: string, token?: string): Promise<{ data?: any; errors?: unknown[] }> {
    const response = await fetch(`${varnish.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query }),
    });
    return (await response.json()) as { data?: any };
  }

  it('a repeated GET is a Varnish hit; after a mutation the GET shows the new value (purged by xkey)', async () => {
    const query = `{ product(id: "${product}") { id name priceCents } }`;
    const first = await get(query);
    expect(first.status).toBe(200);
    expect(first.headers.get('x-cache')).toBe('MISS');
    const before = first.body.data.product.priceCents as number;
    // The surrogate headers are Varnish's, not the client's.
    expect(first.headers.get('xkey')).toBeNull();
    expect(first.headers.get('surrogate-control')).toBeNull();

    const second = await get(query);
    expect(second.headers.get('x-cache')).toBe('HIT');
    // A hit names two transactions: this request's and the one that fetched the object.
    expect(second.headers.get('x-varnish')?.split(' ')).toHaveLength(2);
    expect(second.body).toEqual(first.body);

    const login = await post(`mutation { login(email: "${ADMIN.email}", password: "${ADMIN.password}") { token } }`);
    const token = login.data.login.token as string;
    const purgesBefore = await metricValue(t, 'http_cache_purges_total', { outcome: 'ok' });
    const updated = await post(
      `mutation { updateProduct(id: "${product}", input: { priceCents: ${before + 100} }) { priceCents } }`,
      token,
    );
    expect(updated.data.updateProduct.priceCents).toBe(before + 100);

    // The purge is sent in the background after the mutation's invalidation: wait on Varnish's state.
    const mutated = Date.now();
    let after: Awaited<ReturnType<typeof get>> | undefined;
    await until(
      async () => {
        after = await get(query);
        return after.body.data?.product.priceCents === before + 100;
      },
      { what: 'Varnish to answer the new price', timeoutMs: 5_000, intervalMs: 5 },
    );
    const latencyMs = Date.now() - mutated;
    console.info(`purge latency through Varnish: ${latencyMs} ms after the mutation returned`);
    expect(after?.headers.get('x-cache')).toBe('MISS');
    expect(await metricValue(t, 'http_cache_purges_total', { outcome: 'ok' })).toBeGreaterThan(purgesBefore);
    expect(await metricValue(t, 'http_cache_purges_total', { outcome: 'failed' })).toBe(0);

    // Cached again, with the new value.
    const again = await get(query);
    expect(again.headers.get('x-cache')).toBe('HIT');
    expect(again.body.data.product.priceCents).toBe(before + 100);
  });

  it('a response stored in Redis by a POST is kept by Varnish when a GET hits it, and purged by a mutation', async () => {
    const query = `{ product(id: "${product}") { id priceCents stock } }`;
    const stored = await post(query);
    const price = stored.data.product.priceCents as number;
    const responseHits = () => metricValue(t, 'cache_hits_total', { name: 'Response' });

    // Varnish has not seen it; the server answers from the response stored by the POST.
    const hitsBefore = await responseHits();
    const first = await get(query);
    expect(first.headers.get('x-cache')).toBe('MISS');
    expect(await responseHits()).toBe(hitsBefore + 1);
    expect(first.body.data).toEqual(stored.data);
    // Kept by Varnish: the Redis hit carried the stored response's surrogate keys.
    const second = await get(query);
    expect(second.headers.get('x-cache')).toBe('HIT');
    expect(second.body.data).toEqual(stored.data);

    const login = await post(`mutation { login(email: "${ADMIN.email}", password: "${ADMIN.password}") { token } }`);
    const token = login.data.login.token as string;
    await post(`mutation { updateProduct(id: "${product}", input: { priceCents: ${price + 1} }) { priceCents } }`, token);
    let after: Awaited<ReturnType<typeof get>> | undefined;
    await until(
      async () => {
        after = await get(query);
        return after.body.data?.product.priceCents === price + 1;
      },
      { what: 'Varnish to answer the new price', timeoutMs: 5_000, intervalMs: 5 },
    );
    expect(after?.headers.get('x-cache')).toBe('MISS');
  });

  it('a request with a token, and a mutation, are never cached by Varnish', async () => {
    const token = (await post(`mutation { login(email: "${ADMIN.email}", password: "${ADMIN.password}") { token } }`)).data.login
      .token as string;
    for (let i = 0; i < 2; i++) {
      const response = await fetch(`${varnish.url}/graphql?query=${encodeURIComponent(`{ viewer { email } }`)}`, {
        headers: { 'apollo-require-preflight': 'true', authorization: `Bearer ${token}` },
      });
      await response.body?.cancel();
      expect(response.headers.get('x-cache')).toBe('PASS');
    }
  });

  it('a purge Varnish does not take is kept, counted and retried with backoff until it is delivered', async () => {
    const token = (await post(`mutation { login(email: "${ADMIN.email}", password: "${ADMIN.password}") { token } }`)).data.login
      .token as string;
    const failedBefore = await metricValue(t, 'http_cache_purges_total', { outcome: 'failed' });
    await varnish.stop();
    const updated = await t.gql(`mutation { updateProduct(id: "${product}", input: { stock: 7 }) { stock } }`, {}, token);
    expect(updated.body.data?.updateProduct.stock).toBe(7);
    await until(async () => (await metricValue(t, 'http_cache_purges_total', { outcome: 'failed' })) > failedBefore, {
      what: 'a failed purge to be counted',
    });
    expect(await metricValue(t, 'http_cache_purges_pending')).toBeGreaterThan(0);

    const okBefore = await metricValue(t, 'http_cache_purges_total', { outcome: 'ok' });
    varnish = await startVarnish({ backendPort: Number(new URL(t.url).port), port });
    await until(async () => (await metricValue(t, 'http_cache_purges_pending')) === 0, { what: 'the pending purges to be delivered' });
    expect(await metricValue(t, 'http_cache_purges_total', { outcome: 'ok' })).toBeGreaterThan(okBefore);
  });

  it('purges a stopped server left undelivered are taken over from Redis by the next server to start', async () => {
    const token = (await post(`mutation { login(email: "${ADMIN.email}", password: "${ADMIN.password}") { token } }`)).data.login
      .token as string;
    const failedBefore = await metricValue(t, 'http_cache_purges_total', { outcome: 'failed' });
    await varnish.stop();
    const updated = await t.gql(`mutation { updateProduct(id: "${product}", input: { stock: 9 }) { stock } }`, {}, token);
    expect(updated.body.data?.updateProduct.stock).toBe(9);
    await until(async () => (await metricValue(t, 'http_cache_purges_total', { outcome: 'failed' })) > failedBefore, {
      what: 'a failed purge to be counted',
    });
    const namespace = t.config.cache.namespace;
    const redis = new Redis(t.config.redisUrl ?? '');
    try {
      const undelivered = await redis.scard(`${namespace}:purges:pending`);
      expect(undelivered).toBeGreaterThan(0);
      await t.stop();

      // The next server over the same Redis and namespace, with nothing of its own to purge.
      t = await startTestApp({ seed: false, env: { ...varnishEnv(port), CACHE_NAMESPACE: namespace } });
      varnish = await startVarnish({ backendPort: Number(new URL(t.url).port), port });
      await until(async () => (await redis.scard(`${namespace}:purges:pending`)) === 0, { what: 'the left purges to be delivered' });
      expect(await metricValue(t, 'http_cache_purges_total', { outcome: 'ok' })).toBeGreaterThan(0);
      expect(await metricValue(t, 'http_cache_purges_pending')).toBe(0);
    } finally {
      redis.disconnect();
    }
  });
});
