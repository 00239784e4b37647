import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

let t: TestApp;
beforeAll(async () => {
  // Counts the entity path (response-cache.test.ts has the whole-response layer's extensions).
  t = await startTestApp({ seed: false, env: { CACHE_RESPONSES: 'false' } });
});
afterAll(() => t.stop());

describe('HTTP endpoints', () => {
  it('GET /healthz is alive', async () => {
    const res = await fetch(`${t.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('GET /readyz reports MongoDB and Redis', async () => {
    const res = await fetch(`${t.url}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ready', mongodb: 'up', redis: 'up' });
  });

  it('GET /metrics is Prometheus text with default and own metrics', async () => {
    await t.gql('{ viewer { id } }');
    const res = await fetch(`${t.url}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(text).toMatch(/^graphql_operations_total\{type="query",outcome="ok"\} [1-9]/m);
    expect(text).toMatch(/^mongodb_commands_total\{command="\w+"\} [1-9]/m);
  });

  it('other methods on /graphql are 405 with Allow (not a CSRF 400)', async () => {
    for (const method of ['HEAD', 'DELETE', 'PUT', 'PATCH']) {
      const res = await fetch(`${t.url}/graphql`, { method, headers: { 'content-type': 'application/json' } });
      expect({ method, status: res.status, allow: res.headers.get('allow') }).toEqual({ method, status: 405, allow: 'GET, POST, OPTIONS' });
      if (method !== 'HEAD')
        expect(((await res.json()) as { errors: { extensions: { code: string } }[] }).errors[0]?.extensions.code).toBe('BAD_REQUEST');
    }
  });

  it('GET /graphql from a browser shows the Sandbox landing page outside production', async () => {
    const res = await fetch(`${t.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/sandbox/i);
  });

  it('development responses carry the request cost in extensions.cache', async () => {
    const cold = await t.gql('{ users(ids: ["5eed00000000000000000000"]) { id } }');
    // a miss: get-or-lease, one MongoDB find, set-if-leased (a cached absence: nothing seeded)
    expect(cold.body.extensions?.cache).toEqual({ hits: 0, misses: 1, mongoCommands: 1, redisRoundTrips: 2 });
    const warm = await t.gql('{ users(ids: ["5eed00000000000000000000"]) { id } }');
    expect(warm.body.extensions?.cache).toEqual({ hits: 1, misses: 0, mongoCommands: 0, redisRoundTrips: 1 });
  });
});
