import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

// The response fast path (responseFastPath, before Apollo) answers exactly what Apollo would,
// and bad input is never a 500 (cases a hostile review found).

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({
    env: { CACHE_RESPONSES: 'true', WRITE_BEHIND_WORKER: 'false' },
    seed: { users: 4, products: 8, reviews: 10, orders: 0 },
  });
});
afterAll(async () => {
  await t.stop();
});

const product = (i: number): string => `5eed0001${i.toString(16).padStart(16, '0')}`;

interface Raw {
  status: number;
  contentType: string | null;
  text: string;
}
async function post(body: unknown, headers: Record<string, string> = {}): Promise<Raw> {
  const res = await fetch(`${t.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, contentType: res.headers.get('content-type'), text: await res.text() };
}
const responseOf = (raw: Raw): unknown =>
  (JSON.parse(raw.text) as { extensions?: { cache?: { response?: string } } }).extensions?.cache?.response;

/** Sends `body` until its response is stored (a HIT), with plain JSON Accept. */
async function warm(body: unknown): Promise<void> {
  for (let i = 0; i < 3; i += 1) if (responseOf(await post(body)) === 'HIT') return;
  throw new Error('never a hit');
}

describe('fast path vs Apollo: Accept negotiation', () => {
  it('Accept: application/graphql-response+json gets the same Content-Type from a hit as from an execution', async () => {
    const query = `{ product(id: "${product(1)}") { name } }`;
    const accept = { accept: 'application/graphql-response+json' };
    // Executed by Apollo (a miss: nothing stored yet).
    const executed = await post({ query }, accept);
    expect(responseOf(executed)).toBe('MISS');
    expect(executed.contentType).toBe('application/graphql-response+json; charset=utf-8');
    // The same request again: now answered by the fast path.
    const hit = await post({ query }, accept);
    expect(responseOf(hit)).toBe('HIT');
    expect({ status: hit.status, contentType: hit.contentType }).toEqual({
      status: executed.status,
      contentType: executed.contentType,
    });
  });

  it('Accept that allows no JSON type: Apollo refuses with 406, so must a hit', async () => {
    const query = `{ product(id: "${product(2)}") { name } }`;
    const accept = { accept: 'text/html' };
    // What Apollo answers for this request when it runs it (a miss).
    const executed = await post({ query }, accept);
    expect(executed.status).toBe(406);
    // Stored by a plain request, then asked again with the same Accept.
    await warm({ query });
    const hit = await post({ query }, accept);
    expect({ status: hit.status }).toEqual({ status: 406 });
  });
});

describe('fast path: bad input is never a 500', () => {
  it('deeply nested (unused) variables get a clean answer, not an Internal server error', async () => {
    const query = `{ product(id: "${product(3)}") { name } }`;
    const depth = 20_000;
    const nested = `${'['.repeat(depth)}${']'.repeat(depth)}`; // 40 kB, well under the body limit
    const res = await post(`{"query":${JSON.stringify(query)},"variables":{"x":${nested}}}`);
    expect(res.status).not.toBe(500);
    expect(res.text).not.toMatch(/Internal server error/);
  });
});

describe('fast path: an unreadable stored response', () => {
  it('is executed instead (no 500, no hung request)', async () => {
    const query = `{ product(id: "${product(4)}") { name priceCents } }`;
    await warm({ query });
    const redis = t.app.redis;
    if (!redis) throw new Error('the test app has no Redis');
    const keys = await redis.keys(`${t.app.cache.keys.prefix}:{resp:*}:r:*`);
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) {
      const value = (await redis.get(key)) ?? '';
      const head = value.split('|').slice(0, 3).join('|');
      await redis.set(key, `${head}|not a stored response`, 'KEEPTTL');
    }
    const res = await post({ query });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toMatchObject({
      data: { product: { name: expect.any(String) } },
      extensions: { cache: { response: 'BYPASS' } },
    });
  });
});
