import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { surrogateKey } from '../../src/caching/surrogate-keys.js';
import { SurrogatePurger, type PurgeTarget } from '../../src/caching/surrogate-purge.js';
import { createLogger } from '../../src/logger.js';
import { metricValue } from '../helpers/metrics.js';
import { ADMIN, startTestApp, type TestApp } from '../helpers/test-app.js';
import { until } from '../helpers/wait.js';

// The Fastly and Cloudflare purge adapters (issue 22), against a local HTTP server standing in
// for each API: the request's form, the batch limits, and retries of a 5xx.

/** A request the stand-in API received, with the status it answered. */
interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  status: number;
}

/**
 * A local HTTP server that records every request; it answers 503 to the next `failing.count`
 * requests that name `failing.key`.
 */
async function startRecorder(
  adapter: 'fastly' | 'cloudflare',
): Promise<{ server: Server; url: string; received: Received[]; failing: { key: string; count: number } }> {
  const received: Received[] = [];
  const failing = { key: '', count: 0 };
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const request = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, status: 200 };
      if (failing.count > 0 && keysOf(adapter, request).includes(failing.key)) {
        failing.count -= 1;
        request.status = 503;
      }
      const { status } = request;
      received.push(request);
      res.statusCode = status;
      res.end(status === 200 ? '{"success":true}' : 'unavailable');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received, failing };
}

/** The keys one purge request names, in either API's form. */
function keysOf(adapter: 'fastly' | 'cloudflare', request: Omit<Received, 'status'>): string[] {
  if (adapter === 'fastly') return String(request.headers['surrogate-key'] ?? '').split(' ');
  return request.body ? (JSON.parse(request.body) as { tags: string[] }).tags : [];
}

const ADAPTERS = [
  {
    adapter: 'fastly',
    limit: 256,
    env: (url: string) => ({ FASTLY_SERVICE_ID: 'svc1', FASTLY_API_TOKEN: 'fastly-token', FASTLY_API_URL: url }),
    path: '/service/svc1/purge',
    authorised: (headers: IncomingHttpHeaders) => headers['fastly-key'] === 'fastly-token',
  },
  {
    adapter: 'cloudflare',
    limit: 100,
    env: (url: string) => ({ CLOUDFLARE_ZONE_ID: 'zone1', CLOUDFLARE_API_TOKEN: 'cf-token', CLOUDFLARE_API_URL: `${url}/client/v4` }),
    path: '/client/v4/zones/zone1/purge_cache',
    authorised: (headers: IncomingHttpHeaders) => headers.authorization === 'Bearer cf-token',
  },
] as const;

describe.each(ADAPTERS)('PURGE_ADAPTER=$adapter', ({ adapter, limit, env, path, authorised }) => {
  let t: TestApp;
  let api: Awaited<ReturnType<typeof startRecorder>>;

  beforeAll(async () => {
    api = await startRecorder(adapter);
    t = await startTestApp({ env: { CACHE_RESPONSES: 'true', PURGE_ADAPTER: adapter, PURGE_REPEAT_MS: '0', ...env(api.url) } });
  });
  afterAll(async () => {
    await t?.stop();
    await new Promise((resolve) => api?.server.close(resolve));
  });

  it("a write purges the product's key in the API's form, retrying a 5xx until it is delivered", async () => {
    const id = (await t.gql('{ products(first: 1) { edges { node { id } } } }')).body.data?.products.edges[0].node.id as string;
    const entityKey = surrogateKey(t.app.cache.keys.entity('Product', id));
    const failedBefore = await metricValue(t, 'http_cache_purges_total', { outcome: 'failed' });
    const start = api.received.length;
    api.failing.key = entityKey;
    api.failing.count = 2;

    const token = await t.login(ADMIN.email, ADMIN.password);
    const updated = await t.gql(`mutation { updateProduct(id: "${id}", input: { priceCents: 4321 }) { priceCents } }`, {}, token);
    expect(updated.body.errors).toBeUndefined();
    const naming = () => api.received.slice(start).filter((request) => keysOf(adapter, request).includes(entityKey));
    await until(() => naming().some((request) => request.status === 200), {
      what: `the ${adapter} API to accept a purge of the product's key`,
    });

    const requests = naming();
    // The two 503s were for this key, then it was sent again: retried until delivered.
    expect(requests.map((request) => request.status).slice(0, 3)).toEqual([503, 503, 200]);
    for (const request of requests) {
      expect(request.method).toBe('POST');
      expect(request.url).toBe(path);
      expect(authorised(request.headers)).toBe(true);
    }
    if (adapter === 'cloudflare') expect(requests[0]?.headers['content-type']).toBe('application/json');
    expect(await metricValue(t, 'http_cache_purges_total', { outcome: 'failed' })).toBeGreaterThanOrEqual(failedBefore + 2);
  });

  it(`purges many keys in batches of at most ${limit}`, async () => {
    const recorder = await startRecorder(adapter);
    const target: PurgeTarget =
      adapter === 'fastly'
        ? { adapter, url: `${recorder.url}${path}`, token: 'fastly-token' }
        : { adapter, url: `${recorder.url}${path}`, token: 'cf-token' };
    const purger = new SurrogatePurger({
      target,
      repeatMs: 0,
      registry: new Registry(),
      logger: createLogger({ level: 'silent' }),
      durable: null,
    });
    try {
      const dependencies = Array.from({ length: limit * 2 + 7 }, (_, i) => `bench:entity:Product:${i}`);
      purger.add(dependencies);
      const delivered = () => new Set(recorder.received.flatMap((request) => keysOf(adapter, request)));
      await until(() => delivered().size === dependencies.length && purger.pending === 0, { what: 'every key to be purged' });
      const sizes = recorder.received.map((request) => keysOf(adapter, request).length);
      expect(sizes).toEqual([limit, limit, 7]);
      expect([...delivered()].sort()).toEqual(dependencies.map(surrogateKey).sort());
    } finally {
      purger.close();
      await new Promise((resolve) => recorder.server.close(resolve));
    }
  });
});
