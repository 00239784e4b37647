import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProductModel } from '../../src/models/index.js';
import { ADMIN, startTestApp, type TestApp } from '../helpers/test-app.js';
import { gate, until } from '../helpers/wait.js';

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

describe('fast path: single flight for the same response', () => {
  /** Holds the first load of `id` from MongoDB, after it has read, until `release` is called. */
  function holdLoadOf(id: string): { loading: Promise<void>; release: () => void; loads: () => number; restore: () => void } {
    const original = ProductModel.find.bind(ProductModel);
    let loads = 0;
    const held = gate();
    ProductModel.find = ((...args: Parameters<typeof ProductModel.find>) => {
      const query = original(...args);
      if (!JSON.stringify(args[0] ?? {}).includes(id)) return query;
      loads += 1;
      if (loads > 1) return query;
      const exec = query.exec.bind(query);
      query.exec = async () => {
        const loaded = await exec();
        await held.pass(); // read, and held before it is used
        return loaded;
      };
      return query;
    }) as typeof ProductModel.find;
    return {
      loading: held.reached,
      release: () => held.open(),
      loads: () => loads,
      restore: () => (ProductModel.find = original as typeof ProductModel.find),
    };
  }

  it('a miss while the same response is computed from the same state waits for it: one execution, two answers', async () => {
    const id = product(5);
    const query = `{ product(id: "${id}") { name priceCents } }`;
    const held = holdLoadOf(id);
    const flights = t.app.server.__testing__responseFlights;
    const joins = flights.__testing__joins;
    try {
      const first = post({ query });
      await held.loading; // the first computation is under way, holding its load
      const second = post({ query });
      // The second has looked up and joined the first (not: found the first's stored response later).
      await until(() => flights.__testing__joins === joins + 1, { what: 'the second request to join the first' });
      held.release();
      const [a, b] = await Promise.all([first, second]);
      expect(responseOf(a)).toBe('MISS');
      expect(responseOf(b)).toBe('HIT');
      expect((JSON.parse(b.text) as { data: unknown }).data).toEqual((JSON.parse(a.text) as { data: unknown }).data);
      expect(held.loads()).toBe(1);
    } finally {
      held.restore();
    }
  });

  it('a miss after a write that returned does not take the answer of a computation that began before it', async () => {
    const admin = await t.login(ADMIN.email, ADMIN.password);
    const id = product(6);
    const query = `{ product(id: "${id}") { name priceCents } }`;
    const held = holdLoadOf(id);
    const flights = t.app.server.__testing__responseFlights;
    const joins = flights.__testing__joins;
    try {
      const first = post({ query });
      await held.loading; // it read the old price
      const updated = await t.gql(`mutation { updateProduct(id: "${id}", input: { priceCents: 4242 }) { priceCents } }`, {}, admin);
      expect(updated.body.data?.updateProduct.priceCents).toBe(4242);
      // Not held (only the first load of the product is): answered while the first still computes.
      const fresh = await post({ query });
      expect(JSON.parse(fresh.text)).toMatchObject({ data: { product: { priceCents: 4242 } } });
      expect(responseOf(fresh)).toBe('MISS');
      expect(flights.__testing__joins).toBe(joins); // it executed, not waited for the first's answer
      held.release(); // the first answers what it read: the old price
      const old = await first;
      expect(JSON.parse(old.text)).not.toMatchObject({ data: { product: { priceCents: 4242 } } });
    } finally {
      held.restore();
    }
  });
});
