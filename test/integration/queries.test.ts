import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCodes, startTestApp, type GqlResponse, type TestApp } from '../helpers/test-app.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.stop());

const USER_0 = '5eed00000000000000000000'; // the seeded admin
const USER_1 = '5eed00000000000000000001';
const MISSING = 'aaaaaaaaaaaaaaaaaaaaaaaa';

describe('entity queries', () => {
  it('user returns the user, and null for an unknown id', async () => {
    const res = await t.gql(`{ a: user(id: "${USER_1}") { id name role createdAt updatedAt } b: user(id: "${MISSING}") { id } }`);
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data?.a).toMatchObject({ id: USER_1, role: 'CUSTOMER' });
    expect(new Date(res.body.data?.a.createdAt).toISOString()).toBe(res.body.data?.a.createdAt);
    expect(res.body.data?.b).toBeNull();
  });

  it('users keeps the order and length of ids, with null for unknown ids: cold one MongoDB command, warm none', async () => {
    const [a, b] = ['5eed0000000000000000000a', '5eed0000000000000000000b'];
    const missing = 'bbbbbbbbbbbbbbbbbbbbbbbb';
    const ids = [a, missing, b, a];
    const query = 'query($ids: [ID!]!) { users(ids: $ids) { id } }';
    const cold = await t.countMongoCommands(() => t.gql(query, { ids }));
    expect(cold.result.body.data?.users).toEqual([{ id: a }, null, { id: b }, { id: a }]);
    expect(cold.commands).toBe(1);
    const warm = await t.countMongoCommands(() => t.gql(query, { ids }));
    expect(warm.result.body.data?.users).toEqual(cold.result.body.data?.users);
    expect(warm.commands).toBe(0);
  });

  it('product and review resolve their references', async () => {
    const reviews = await t.gql('{ products(first: 1) { edges { node { id reviews(first: 1) { id } } } } }');
    const product = reviews.body.data?.products.edges[0].node;
    const reviewId = product.reviews[0].id;
    const res = await t.gql(`{ review(id: "${reviewId}") { id rating body createdAt author { id name } product { id name } } }`);
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data?.review).toMatchObject({ id: reviewId, product: { id: product.id } });
    expect(res.body.data?.review.rating).toBeGreaterThanOrEqual(1);
    const one = await t.gql(`{ product(id: "${product.id}") { id name priceCents category stock viewCount description } }`);
    expect(one.body.data?.product.id).toBe(product.id);
  });

  it('Product.reviewCount and averageRating agree with the product reviews', async () => {
    const res = await t.gql('{ products(first: 10) { edges { node { reviewCount averageRating reviews(first: 100) { rating } } } } }');
    for (const { node } of res.body.data?.products.edges ?? []) {
      expect(node.reviewCount).toBe(node.reviews.length);
      const expected = node.reviews.length
        ? node.reviews.reduce((s: number, r: { rating: number }) => s + r.rating, 0) / node.reviews.length
        : null;
      expect(node.averageRating).toBeCloseTo(expected ?? Number.NaN);
      if (expected === null) expect(node.averageRating).toBeNull();
    }
  });

  it('User.reviews and reviewCount agree', async () => {
    const res = await t.gql(`{ user(id: "${USER_1}") { reviewCount reviews(first: 100) { author { id } createdAt } } }`);
    const user = res.body.data?.user;
    expect(user.reviewCount).toBe(user.reviews.length);
    for (const review of user.reviews) expect(review.author.id).toBe(USER_1);
    const dates = user.reviews.map((r: { createdAt: string }) => r.createdAt);
    expect([...dates].sort().reverse()).toEqual(dates);
  });
});

describe('products pagination', () => {
  it('walks every product once, newest first, with cursors', async () => {
    const seen: string[] = [];
    const dates: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 10; page += 1) {
      const res: GqlResponse = await t.gql(
        'query($after: String) { products(first: 25, after: $after) { edges { cursor node { id createdAt } } pageInfo { hasNextPage endCursor } } }',
        { after },
      );
      const { edges, pageInfo } = (
        res.body.data as {
          products: {
            edges: { cursor: string; node: { id: string; createdAt: string } }[];
            pageInfo: { hasNextPage: boolean; endCursor: string | null };
          };
        }
      ).products;
      seen.push(...edges.map((e) => e.node.id));
      dates.push(...edges.map((e) => e.node.createdAt));
      expect(pageInfo.endCursor).toBe(edges.at(-1)?.cursor ?? null);
      if (!pageInfo.hasNextPage) break;
      after = pageInfo.endCursor;
    }
    expect(seen).toHaveLength(60);
    expect(new Set(seen).size).toBe(60);
    expect([...dates].sort().reverse()).toEqual(dates);
  });

  it('filters by category', async () => {
    const res = await t.gql('{ products(first: 100, category: "books") { edges { node { category } } } }');
    const edges = res.body.data?.products.edges;
    expect(edges.length).toBeGreaterThan(0);
    expect(edges.every((e: { node: { category: string } }) => e.node.category === 'books')).toBe(true);
  });

  it.each([0, 101, -5])('rejects first: %i with BAD_USER_INPUT', async (first) => {
    const res = await t.gql('query($first: Int) { products(first: $first) { edges { cursor } } }', { first });
    expect(errorCodes(res)).toEqual(['BAD_USER_INPUT']);
    expect(res.body.errors?.[0]?.extensions?.field).toBe('first');
  });

  it('rejects a cursor it did not give out', async () => {
    const res = await t.gql('{ products(after: "bm90LWEtY3Vyc29y") { edges { cursor } } }');
    expect(errorCodes(res)).toEqual(['BAD_USER_INPUT']);
  });
});

describe('cacheStats', () => {
  it('answers with consistent totals', async () => {
    const res = await t.gql('{ cacheStats { hits misses hitRate byType { name hits misses hitRate } } }');
    const stats = res.body.data?.cacheStats;
    expect(stats.hits).toBe(stats.byType.reduce((s: number, b: { hits: number }) => s + b.hits, 0));
    expect(stats.hitRate).toBeGreaterThanOrEqual(0);
    expect(stats.hitRate).toBeLessThanOrEqual(1);
  });
});
