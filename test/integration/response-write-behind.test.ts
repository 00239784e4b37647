import { describe, expect, it } from 'vitest';
import { ProductModel } from '../../src/models/index.js';
import { usePrivateRedisApp } from '../helpers/private-redis-app.js';
import { sleep } from '../helpers/wait.js';
import { manualWorker } from '../helpers/write-behind.js';

// A view (write-behind) voids only the responses that select viewCount (RESPONSE_FIELDS); the
// worker's flush also sets `updatedAt` in MongoDB (write-behind-target.ts), and voids the stored
// responses that show it (a case a hostile review found), and only those.

const { t } = usePrivateRedisApp({
  env: { CACHE_RESPONSES: 'true', WRITE_BEHIND_WORKER: 'false' },
  seed: { users: 4, products: 8, reviews: 10, orders: 0 },
});

const product = (i: number): string => `5eed0001${i.toString(16).padStart(16, '0')}`;
const responseOf = (res: { body: { extensions?: { cache?: { response?: string } } } }): unknown => res.body.extensions?.cache?.response;

describe('write-behind flush vs stored responses', () => {
  it('after a view is flushed, no query shows the updatedAt MongoDB no longer has', async () => {
    const id = product(2);
    const query = `{ product(id: "${id}") { name updatedAt } }`;
    const nameOnly = `{ product(id: "${id}") { name priceCents } }`;
    for (const q of [query, nameOnly]) for (let i = 0; i < 3 && responseOf(await t.gql(q)) !== 'HIT'; i += 1);
    const before = (await t.gql(query)).body.data?.product.updatedAt as string;
    await sleep(20); // updatedAt has ms resolution
    const viewed = await t.gql(`mutation { recordProductView(id: "${id}") { viewCount } }`);
    expect(viewed.body.errors).toBeUndefined();
    const worker = manualWorker(t);
    try {
      expect((await worker.runOnce()).flushed).toBeGreaterThan(0);
    } finally {
      await worker.stop();
    }
    const inMongo = (await ProductModel.findById(id).lean().exec())?.updatedAt?.toISOString();
    expect(inMongo).not.toBe(before); // the flush moved it
    // A query executed now (a different document: no stored response) shows MongoDB's value…
    const fresh = await t.gql(`{ product(id: "${id}") { updatedAt name } }`);
    expect(fresh.body.data?.product.updatedAt).toBe(inMongo);
    // …and the stored one must not show the replaced value.
    const again = await t.gql(query);
    expect({ updatedAt: again.body.data?.product.updatedAt, response: responseOf(again) }).toEqual({
      updatedAt: inMongo,
      response: 'MISS',
    });
    // A response that shows neither the views nor updatedAt outlives both the view and the flush.
    expect(responseOf(await t.gql(nameOnly))).toBe('HIT');
  });
});
