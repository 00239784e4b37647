import { beforeAll, describe, expect, it } from 'vitest';
import { ReviewModel } from '../../src/models/index.js';
import { metricsText } from '../helpers/metrics.js';
import { ADMIN, USER_PASSWORD } from '../helpers/test-app.js';
import { usePrivateRedisApp } from '../helpers/private-redis-app.js';

// No write-behind worker here: its polling would add to the Redis calls these tests count; and
// no whole-response layer: it would answer the repeats whose entity and field work they count.
const { redis, t } = usePrivateRedisApp({
  env: { WRITE_BEHIND_WORKER: 'false', CACHE_RESPONSES: 'false' },
  seed: { users: 40, products: 120, reviews: 900, orders: 60 },
});
let admin: string;
beforeAll(async () => {
  admin = await t.login(ADMIN.email, ADMIN.password);
});

async function measure(query: string, token?: string) {
  await redis.resetStats();
  const { result, commands } = await t.countMongoCommands(() => t.gql(query, {}, token));
  expect(result.body.errors).toBeUndefined();
  return { res: result, mongo: commands, redis: await redis.scriptCalls() };
}

/** What MongoDB says of a product's reviews. */
async function truth(productId: string): Promise<{ reviewCount: number; averageRating: number | null }> {
  const reviews = await ReviewModel.find({ product: productId }, { rating: 1 }).lean();
  const sum = reviews.reduce((s, r) => s + r.rating, 0);
  return { reviewCount: reviews.length, averageRating: reviews.length ? sum / reviews.length : null };
}

const PAGE = '{ products(first: 50) { edges { node { id reviewCount averageRating reviews(first: 3) { id rating author { name } } } } } }';

describe('field-cached 50-product page', () => {
  it('cold: few MongoDB commands; warm: none, one Redis round trip per batch level', async () => {
    const cold = await measure(PAGE);
    // page ids, products (which carry their review counts and rating sums), reviews of the page, authors
    expect(cold.mongo).toBe(4);
    const warm = await measure(PAGE);
    expect(warm.res.body.data).toEqual(cold.res.body.data);
    // page ids; products; review pages of 50 products (one call; they hold the reviews
    // themselves); authors
    expect({ mongo: warm.mongo, redis: warm.redis }).toEqual({ mongo: 0, redis: 4 });
    for (const { node } of cold.res.body.data?.products.edges.slice(0, 5) ?? []) {
      const expected = await truth(node.id);
      expect(node.reviewCount).toBe(expected.reviewCount);
      if (expected.averageRating === null) expect(node.averageRating).toBeNull();
      else expect(node.averageRating).toBeCloseTo(expected.averageRating);
    }
  });

  it('reports hits per field coordinate', async () => {
    await t.gql(PAGE); // one more warm page: 50 more hits per field
    const stats = (await t.gql('{ cacheStats { byType { name hits misses } } }')).body.data?.cacheStats.byType;
    const names = stats.map((s: { name: string }) => s.name);
    expect(names).toEqual(expect.arrayContaining(['Product', 'Product.reviews', 'Query.products', 'User']));
    const pages = stats.find((s: { name: string }) => s.name === 'Product.reviews');
    expect(pages.hits).toBeGreaterThanOrEqual(100);
    expect(pages.misses).toBe(50);
    const metrics = await metricsText(`${t.url}/metrics`);
    expect(metrics).toMatch(/^cache_hits_total\{name="Product.reviews"\} \d+/m);
  });
});

describe('exact under writes', () => {
  it('createReview shows at once in the product and author aggregates and first pages, through the cached path', async () => {
    const productId = '5eed00010000000000000004';
    const authorId = '5eed00000000000000000011';
    const query = `{ product(id: "${productId}") { reviewCount averageRating reviews(first: 1) { id } } user(id: "${authorId}") { reviewCount reviews(first: 1) { id } } }`;
    await t.gql(query); // cached now
    const before = (await measure(query)).res.body.data;
    const token = await t.login('user17@example.com', USER_PASSWORD);
    const created = await t.gql(`mutation { createReview(input: { productId: "${productId}", rating: 5 }) { id } }`, {}, token);
    const reviewId = created.body.data?.createReview.id;
    const after = (await t.gql(query)).body.data;
    expect(after?.product.reviewCount).toBe(before?.product.reviewCount + 1);
    expect(after?.product.reviews[0].id).toBe(reviewId);
    expect(after?.user.reviewCount).toBe(before?.user.reviewCount + 1);
    expect(after?.user.reviews[0].id).toBe(reviewId);
    expect(after?.product.averageRating).toBeCloseTo((await truth(productId)).averageRating ?? Number.NaN);
  });

  it('deleteProduct drops the product from its lists and its reviews from the authors’ counts', async () => {
    const created = await t.gql(
      'mutation { createProduct(input: { name: "Doomed", priceCents: 100, category: "garden", stock: 3 }) { id } }',
      {},
      admin,
    );
    const id = created.body.data?.createProduct.id;
    const reviewer = await t.login('user12@example.com', USER_PASSWORD);
    const authorQuery = '{ user(id: "5eed0000000000000000000c") { reviewCount } }';
    await t.gql(`mutation { createReview(input: { productId: "${id}", rating: 2 }) { id } }`, {}, reviewer);
    const countBefore = (await t.gql(authorQuery)).body.data?.user.reviewCount;
    const listQuery = '{ products(first: 5, category: "garden") { edges { node { id } } } }';
    expect((await t.gql(listQuery)).body.data?.products.edges[0].node.id).toBe(id);
    expect((await t.gql(`mutation { deleteProduct(id: "${id}") }`, {}, admin)).body.data?.deleteProduct).toBe(true);
    expect((await t.gql(listQuery)).body.data?.products.edges.map((e: { node: { id: string } }) => e.node.id)).not.toContain(id);
    expect(
      (await t.gql('{ products(first: 5) { edges { node { id } } } }')).body.data?.products.edges.map(
        (e: { node: { id: string } }) => e.node.id,
      ),
    ).not.toContain(id);
    expect((await t.gql(authorQuery)).body.data?.user.reviewCount).toBe(countBefore - 1);
  });

  it('createProduct shows first in its category at once and leaves other categories’ cached pages alone', async () => {
    const page = (category: string) => `{ products(first: 3, category: "${category}") { edges { node { id } } } }`;
    await t.gql(page('toys'));
    await t.gql(page('music'));
    const hits = async () =>
      (await t.gql('{ cacheStats { byType { name hits } } }')).body.data?.cacheStats.byType.find(
        (s: { name: string }) => s.name === 'Query.products',
      )?.hits ?? 0;
    const created = await t.gql(
      'mutation { createProduct(input: { name: "New toy", priceCents: 100, category: "toys", stock: 3 }) { id } }',
      {},
      admin,
    );
    const before = await hits();
    const music = await t.gql(page('music'));
    expect(await hits()).toBe(before + 1); // still cached
    expect(music.body.data?.products.edges).toHaveLength(3);
    const toys = await t.gql(page('toys'));
    expect(toys.body.data?.products.edges[0].node.id).toBe(created.body.data?.createProduct.id);
    expect(await hits()).toBe(before + 1); // the toys page was dropped: a miss
  });

  it('updateProduct moving a product to another category updates both lists', async () => {
    const created = await t.gql(
      'mutation { createProduct(input: { name: "Mover", priceCents: 100, category: "books", stock: 3 }) { id } }',
      {},
      admin,
    );
    const id = created.body.data?.createProduct.id;
    const first = (category: string) => t.gql(`{ products(first: 1, category: "${category}") { edges { node { id category } } } }`);
    expect((await first('books')).body.data?.products.edges[0].node.id).toBe(id);
    await first('kitchen');
    await t.gql(`mutation { updateProduct(id: "${id}", input: { category: "kitchen" }) { id } }`, {}, admin);
    expect((await first('books')).body.data?.products.edges[0].node.id).not.toBe(id);
    expect((await first('kitchen')).body.data?.products.edges[0].node).toEqual({ id, category: 'kitchen' });
  });
});

describe('deleteUser', () => {
  it('removes the user and their reviews, and every cached aggregate follows at once', async () => {
    const victim = '5eed0000000000000000001e'; // user30
    const token = await t.login('user30@example.com', USER_PASSWORD);
    const products = [...new Set((await ReviewModel.find({ author: victim }).lean()).map((r) => r.product.toHexString()))].slice(0, 5);
    expect(products.length).toBeGreaterThan(0);
    const query = `{ ${products.map((id, i) => `p${i}: product(id: "${id}") { id reviewCount averageRating reviews(first: 30) { author { id } } }`).join(' ')} }`;
    await t.gql(query); // cache every aggregate and page
    const other = await t.login('user31@example.com', USER_PASSWORD);
    expect((await t.gql(`mutation { deleteUser(id: "${victim}") }`, {}, other)).body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');

    expect((await t.gql(`mutation { deleteUser(id: "${victim}") }`, {}, token)).body.data?.deleteUser).toBe(true);
    const afterRes = await t.gql(query);
    expect(afterRes.body.errors).toBeUndefined();
    const after = afterRes.body.data ?? {};
    for (const [i, id] of products.entries()) {
      const node = after[`p${i}`];
      const expected = await truth(id);
      expect(node.reviewCount).toBe(expected.reviewCount);
      if (expected.averageRating === null) expect(node.averageRating).toBeNull();
      else expect(node.averageRating).toBeCloseTo(expected.averageRating);
      expect(node.reviews.map((r: { author: { id: string } }) => r.author.id)).not.toContain(victim);
    }
    expect((await t.gql(`{ user(id: "${victim}") { id } }`)).body.data?.user).toBeNull();
    expect((await t.gql('{ viewer { id } }', {}, token)).body.data?.viewer).toBeNull();
    expect(
      (await t.gql(`mutation { deleteUser(id: "${victim}") }`, {}, await t.login(ADMIN.email, ADMIN.password))).body.data?.deleteUser,
    ).toBe(false);
    const again = await t.gql(
      'mutation { createUser(input: { name: "Back", email: "user30@example.com", password: "long-enough-1" }) { id } }',
    );
    expect(again.body.errors).toBeUndefined(); // the email is free again
  });
});

describe('PRIVATE fields', () => {
  it('are keyed per viewer: concurrent viewers never see each other’s values', async () => {
    const viewers = await Promise.all([21, 22, 23].map(async (n) => ({ n, token: await t.login(`user${n}@example.com`, USER_PASSWORD) })));
    const id = (n: number) => `5eed0000${n.toString(16).padStart(16, '0')}`;
    // each places an order, so each has at least one of its own
    for (const v of viewers) {
      const res = await t.gql(
        'mutation { placeOrder(items: [{ productId: "5eed00010000000000000030", quantity: 1 }]) { id } }',
        {},
        v.token,
      );
      expect(res.body.errors).toBeUndefined();
    }
    const query = `{ ${viewers.map((v) => `u${v.n}: user(id: "${id(v.n)}") { id email orders(first: 5) { user { id } } }`).join(' ')} }`;
    const rounds = await Promise.all(
      viewers.flatMap((v) => Array.from({ length: 5 }, () => t.gql(query, {}, v.token).then((res) => ({ v, res })))),
    );
    for (const { v, res } of rounds) {
      for (const other of viewers) {
        const user = res.body.data?.[`u${other.n}`];
        if (other.n === v.n) {
          expect(user.email).toBe(`user${v.n}@example.com`);
          expect(user.orders.length).toBeGreaterThan(0);
          for (const order of user.orders) expect(order.user.id).toBe(id(v.n));
        } else {
          expect(user).toEqual({ id: id(other.n), email: null, orders: [] });
        }
      }
    }
    const keys = await redis.client.keys('*:f:orders:*');
    expect(keys.length).toBeGreaterThanOrEqual(3);
    for (const key of keys) expect(key).toMatch(/:u:[0-9a-f]{24}$/);
  });
});
