import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { surrogateKey } from '../../src/caching/surrogate-keys.js';
import { metricValue } from '../helpers/metrics.js';
import { ADMIN, startTestApp, type TestApp } from '../helpers/test-app.js';
import { until } from '../helpers/wait.js';

// The surrogate keys a server sends in the Cloudflare form, and the webhook purge adapter
// (issue 22): what a CDN in front is told, and what it is asked to purge.

describe('surrogate keys (cache-tag) and webhook purges', () => {
  let t: TestApp;
  let hook: Server;
  const purged: string[][] = [];

  beforeAll(async () => {
    hook = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        purged.push((JSON.parse(body) as { keys: string[] }).keys);
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    t = await startTestApp({
      env: {
        CACHE_RESPONSES: 'true',
        SURROGATE_KEY_HEADER: 'cache-tag',
        PURGE_ADAPTER: 'webhook',
        PURGE_WEBHOOK_URL: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/purge`,
      },
    });
  });
  afterAll(async () => {
    await t?.stop();
    await new Promise((resolve) => hook?.close(resolve));
  });

  const get = (query: string) =>
    fetch(`${t.url}/graphql?query=${encodeURIComponent(query)}`, { headers: { 'apollo-require-preflight': 'true' } });

  it('a stored GET names its dependencies, and so does its hit; a POST and a mutation say no-store; a write purges the keys it invalidated', async () => {
    const id = (await t.gql('{ products(first: 1) { edges { node { id } } } }')).body.data?.products.edges[0].node.id as string;
    const query = `{ product(id: "${id}") { id priceCents } }`;
    const entityKey = surrogateKey(t.app.cache.keys.entity('Product', id));

    const computed = await get(query);
    expect(computed.headers.get('surrogate-control')).toBe('max-age=60');
    const tags = computed.headers.get('cache-tag')?.split(',') ?? [];
    expect(tags).toContain(entityKey);
    // A hit of the response cache names the keys stored with the response: a shared cache may keep it too.
    const responseHitsBefore = await metricValue(t, 'cache_hits_total', { name: 'Response' });
    const hit = await get(query);
    expect(await metricValue(t, 'cache_hits_total', { name: 'Response' })).toBe(responseHitsBefore + 1);
    expect(hit.headers.get('surrogate-control')).toBe('max-age=60');
    expect(hit.headers.get('cache-tag')?.split(',').sort()).toEqual([...tags].sort());
    const posted = await t.gql(query);
    expect(posted.headers.get('surrogate-control')).toBe('no-store');

    const token = await t.login(ADMIN.email, ADMIN.password);
    const updated = await t.gql(`mutation { updateProduct(id: "${id}", input: { priceCents: 4321 }) { priceCents } }`, {}, token);
    expect(updated.headers.get('surrogate-control')).toBe('no-store');
    await until(() => purged.some((keys) => keys.includes(entityKey)), { what: 'the webhook to be asked to purge the product' });
  });
});
