import { describe, expect, it } from 'vitest';
import { productListId } from '../../src/caching/tags.js';
import { encodeCursor } from '../../src/loaders/product-pages.js';
import { ReviewModel } from '../../src/models/index.js';
import type { ProductDoc } from '../../src/models/product.model.js';
import { usePrivateRedisApp } from '../helpers/private-redis-app.js';
import { USER_PASSWORD, errorCodes } from '../helpers/test-app.js';

// What clients can make the cache hold is bounded, and losing any key to eviction is a miss,
// never a stale read (issue 9, defect 4).
const { redis, t } = usePrivateRedisApp({ env: { WRITE_BEHIND_WORKER: 'false' } });

/** Every key of this app's namespace. */
async function allKeys(): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.client.scan(cursor, 'MATCH', `${t.config.cache.namespace}:*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys;
}

describe('inputs that become keys are bounded', () => {
  it('a category longer than any product may have is BAD_USER_INPUT, and nothing is stored for it', async () => {
    // The response shard (one hash, whatever the requests) exists after the first lookup.
    expect((await t.gql('{ cacheStats { hits } }')).body.errors).toBeUndefined();
    const before = (await allKeys()).length;
    const res = await t.gql('query($c: String) { products(first: 5, category: $c) { edges { node { id } } } }', { c: 'x'.repeat(176_000) });
    expect(errorCodes(res)).toEqual(['BAD_USER_INPUT']);
    expect(res.body.errors?.[0]?.extensions?.field).toBe('products.category');
    expect((await allKeys()).length).toBe(before);
    const fine = await t.gql('{ products(first: 5, category: "books") { edges { node { id } } } }');
    expect(fine.body.errors).toBeUndefined();
  });

  it('hundreds of different cursors leave one small tag key per list, not a set that grows with them', async () => {
    const first = await t.gql('{ products(first: 1) { edges { node { id } } } }');
    expect(first.body.errors).toBeUndefined();
    const tagKey = t.app.cache.keys.tag('ProductList', productListId(null), 'catalog');
    const sizeBefore = await redis.client.memory('USAGE', tagKey);
    // Cursors this server could have given out, at random positions.
    const cursors = Array.from({ length: 300 }, (_, i) =>
      encodeCursor({
        createdAt: new Date(1_700_000_000_000 + i * 7_919),
        _id: { toHexString: () => (i + 1).toString(16).padStart(24, '0') },
      } as ProductDoc),
    );
    for (let i = 0; i < cursors.length; i += 50) {
      await Promise.all(
        cursors.slice(i, i + 50).map(async (after) => {
          const res = await t.gql('query($a: String) { products(first: 2, after: $a) { edges { node { id } } } }', { a: after });
          expect(res.body.errors).toBeUndefined();
        }),
      );
    }
    expect(await redis.client.type(tagKey)).toBe('string');
    expect(await redis.client.memory('USAGE', tagKey)).toBe(sizeBefore);
    const sets = [];
    for (const key of await allKeys()) if ((await redis.client.type(key)) === 'set') sets.push(key);
    expect(sets).toEqual([]);
    // Each page it caused has a TTL of its own.
    const pages = (await allKeys()).filter((key) => key.includes(':f:products:'));
    expect(pages.length).toBeGreaterThan(250);
    for (const key of pages.slice(0, 50)) expect(await redis.client.pttl(key)).toBeGreaterThan(0);
  });
});

describe('eviction causes misses, never stale reads', () => {
  it('whichever key of a product is lost (value, tag, lease), createReview then shows at once', async () => {
    const productId = '5eed00010000000000000005';
    const query = `{ product(id: "${productId}") { reviewCount averageRating reviews(first: 1) { id } } }`;
    const token = await t.login('user3@example.com', USER_PASSWORD);
    const slot = `{Product:${productId}}`;
    // Every key a read of these fields leaves in the product's slot, then each one dropped in turn.
    expect((await t.gql(query)).body.errors).toBeUndefined();
    const keys = (await allKeys()).filter((key) => key.includes(slot));
    expect(keys.some((key) => key.includes(':t:reviews'))).toBe(true);
    expect(keys.some((key) => key.includes(':f:reviews:'))).toBe(true);
    expect(keys.some((key) => key.endsWith(slot))).toBe(true); // the product itself, which carries its review count
    for (const lost of keys) {
      expect((await t.gql(query)).body.errors).toBeUndefined(); // cached again
      await redis.client.del(lost); // what maxmemory eviction would do
      const created = await t.gql(`mutation { createReview(input: { productId: "${productId}", rating: 1 }) { id } }`, {}, token);
      expect(created.body.errors).toBeUndefined();
      const reviews = await ReviewModel.find({ product: productId }, { rating: 1 }).lean();
      const after = (await t.gql(query)).body.data?.product;
      expect({ lost, count: after?.reviewCount, first: after?.reviews[0]?.id }).toEqual({
        lost,
        count: reviews.length,
        first: created.body.data?.createReview.id,
      });
      expect(after?.averageRating).toBeCloseTo(reviews.reduce((s, r) => s + r.rating, 0) / reviews.length);
    }
  });

  it('under maxmemory with volatile-lru, filling Redis with persisted queries never leaves an aggregate stale', async () => {
    const productId = '5eed00010000000000000006';
    const query = `{ product(id: "${productId}") { reviewCount averageRating } }`;
    const token = await t.login('user4@example.com', USER_PASSWORD);
    const before = (await t.gql(query)).body.data?.product;
    await redis.client.config('SET', 'maxmemory-policy', 'volatile-lru');
    const used = Number(/used_memory:(\d+)/.exec(await redis.client.info('memory'))?.[1]);
    await redis.client.config('SET', 'maxmemory', String(used + 512 * 1024));
    try {
      // Keys with a TTL, as clients can cause (persisted queries, pages), until evictions happen.
      for (let i = 0; i < 40; i += 1) {
        const pipeline = redis.client.pipeline();
        for (let j = 0; j < 50; j += 1) pipeline.set(`${t.config.cache.namespace}:filler:${i}:${j}`, 'x'.repeat(2_000), 'PX', 600_000);
        await pipeline.exec();
      }
      expect(Number(/evicted_keys:(\d+)/.exec(await redis.client.info('stats'))?.[1])).toBeGreaterThan(0);
      const created = await t.gql(`mutation { createReview(input: { productId: "${productId}", rating: 5 }) { id } }`, {}, token);
      expect(created.body.errors).toBeUndefined();
      expect((await t.gql(query)).body.data?.product.reviewCount).toBe(before?.reviewCount + 1);
    } finally {
      await redis.client.config('SET', 'maxmemory', '0');
    }
  });
});
