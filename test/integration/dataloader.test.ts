import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ seed: { users: 40, products: 120, reviews: 900, orders: 0 } });
});
afterAll(() => t.stop());

const nested = 'query($first: Int) { products(first: $first) { edges { node { reviews(first: 3) { author { name } } } } } }';

describe('DataLoader batching', () => {
  it.each([50, 10])('the nested catalog query costs at most 4 MongoDB commands at page size %i', async (first) => {
    const { result: res, commands } = await t.countMongoCommands(() => t.gql(nested, { first }));
    expect(res.body.errors).toBeUndefined();
    const edges = res.body.data?.products.edges;
    expect(edges).toHaveLength(first);
    // The page really nests: some products have reviews with authors.
    expect(edges.some((e: { node: { reviews: unknown[] } }) => e.node.reviews.length > 0)).toBe(true);
    expect(commands).toBeLessThanOrEqual(4);
    expect(res.body.extensions?.cache?.mongoCommands).toBe(commands);
  });

  it('reads the review counts of a whole page off its products, and the authors’ counts in one aggregation', async () => {
    const counts = await t.countMongoCommands(() => t.gql('{ products(first: 50) { edges { node { reviewCount averageRating } } } }'));
    expect(counts.result.body.errors).toBeUndefined();
    // the page and its products are cached by the tests above, and carry their counts
    expect(counts.commands).toBe(0);
    const authors = await t.countMongoCommands(() =>
      t.gql('{ products(first: 50) { edges { node { reviews(first: 3) { author { reviewCount } } } } } }'),
    );
    expect(authors.result.body.errors).toBeUndefined();
    // reviews were cached above with their authors; the authors' reviewCount (cached fields) are
    // missing: one aggregation for all of them
    expect(authors.commands).toBe(1);
  });
});
