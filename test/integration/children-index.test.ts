import { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childrenQuery } from '../../src/loaders/batch.js';
import { ReviewModel } from '../../src/models/index.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

// A product's reviews, the query behind `product(id) { reviews(first: …) }`, is answered from
// the index {product: 1, createdAt: -1, _id: -1}: on FerretDB a scan of every review parsed each
// one (0.3 s for 20,000, enough for 16 readers to starve the writes), so the query's explain must
// name the index, on MongoDB (IXSCAN) and on FerretDB (its SQLite query plan, our build).

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ seed: false });
});
afterAll(async () => {
  await t.stop();
});

/** The explain of the reviews-by-product query for these products, as the driver returns it. */
async function explain(productIds: string[]): Promise<Record<string, unknown>> {
  return (await childrenQuery({ model: ReviewModel, foreignKey: 'product' }, productIds).explain('queryPlanner')) as unknown as Record<
    string,
    unknown
  >;
}

/** Whether an explain answers from the product index rather than from a scan of the collection. */
function usesProductIndex(explained: Record<string, unknown>): boolean {
  const text = JSON.stringify(explained.queryPlanner);
  // FerretDB: queryPlanner.Plan is SQLite's EXPLAIN QUERY PLAN, a line per step.
  if ('filterPushdown' in explained) return /SEARCH \S+ USING INDEX \S+_product_1_createdAt_-1__id_-1/.test(text) && !/\bSCAN /.test(text);
  // MongoDB: an IXSCAN of the index, no COLLSCAN.
  return text.includes('"IXSCAN"') && text.includes('product_1_createdAt_-1__id_-1') && !text.includes('COLLSCAN');
}

describe("a product's reviews", () => {
  it('are read through the product index, and a review whose product is an array holding it still matches', async () => {
    const product = new Types.ObjectId();
    const other = new Types.ObjectId();
    const author = new Types.ObjectId();
    const review = (p: unknown, i: number) => ({
      product: p,
      author,
      rating: 1 + (i % 5),
      version: 1,
      createdAt: new Date(1_700_000_000_000 + i),
    });
    // Written by the driver: the schema would not take an array, MongoDB would still match it.
    await ReviewModel.collection.insertMany([
      ...Array.from({ length: 30 }, (_, i) => review(i % 3 === 0 ? product : other, i)),
      review([other, product], 99),
    ]);

    expect(usesProductIndex(await explain([product.toHexString()]))).toBe(true);
    const found = await childrenQuery({ model: ReviewModel, foreignKey: 'product' }, [product.toHexString()]).exec();
    expect(found).toHaveLength(11);
    expect(found.filter((r) => Array.isArray(r.product))).toHaveLength(1);
    // Newest first, as the index orders them.
    expect(found.map((r) => r.createdAt.getTime())).toEqual(found.map((r) => r.createdAt.getTime()).sort((a, b) => b - a));
  });
});
