import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProductModel } from '../../src/models/index.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { postFrom } from '../helpers/post-from.js';
import { until } from '../helpers/wait.js';

// recordProductView is anonymous: one client sent 16,000 views, each voiding the stored
// responses that show viewCount. Now an address's views of one product count once per window,
// and an address has a number of views per minute.
const VIEWS_PER_MINUTE = 30;
const product = (i: number): string => `5eed0001${i.toString(16).padStart(16, '0')}`;
const VIEW = 'mutation($id: ID!) { recordProductView(id: $id) { viewCount } }';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({
    seed: { users: 2, products: 14, reviews: 0, orders: 0 },
    env: { VIEW_DEDUP_WINDOW_SECONDS: '60', VIEWS_PER_CLIENT_PER_MINUTE: String(VIEWS_PER_MINUTE) },
  });
});
afterAll(() => t.stop());

interface Sent {
  status: number;
  retryAfter: string | undefined;
  body: { data?: { recordProductView: { viewCount: number } } | null; errors?: { extensions?: Record<string, unknown> }[] };
}

/** Views product `id` from the local address `from` (each test its own client address). */
const view = (from: string, id: string): Promise<Sent> => postFrom<Sent['body']>(t.url, from, { query: VIEW, variables: { id } });

const stored = async (id: string): Promise<number> => (await ProductModel.findById(id).lean().exec())?.viewCount ?? -1;

describe('recordProductView limits', () => {
  it('counts one view per client and product per window, answers the repeats unchanged, and refuses past the views per minute', async () => {
    const base = await stored(product(1));
    const repeats = [];
    for (let i = 0; i < 20; i += 1) repeats.push(await view('127.0.0.31', product(1)));
    expect(repeats.map((r) => r.body.data?.recordProductView.viewCount)).toEqual(repeats.map(() => base + 1));
    // Other products count, each once, until the address's views per minute are spent.
    for (let p = 2; p <= 11; p += 1) expect((await view('127.0.0.31', product(p))).body.data?.recordProductView.viewCount).toBe(1);
    const refused = await view('127.0.0.31', product(12));
    expect(refused.body.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', reason: 'TOO_MANY_VIEWS' });
    expect(refused.status).toBe(429);
    expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
    // Another client's view of the same product counts.
    expect((await view('127.0.0.32', product(1))).body.data?.recordProductView.viewCount).toBe(base + 2);
    // And what reaches MongoDB is exactly the views counted.
    await until(async () => (await stored(product(1))) === base + 2 && (await stored(product(11))) === 1, {
      what: 'the views to reach MongoDB',
    });
    expect(await stored(product(12))).toBe(0);
  });
});
