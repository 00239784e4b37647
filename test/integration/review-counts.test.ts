import { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { ProductModel, ReviewModel } from '../../src/models/index.js';
import { backfillReviewCounts, recoverReviewCounts } from '../../src/services/review-counts.js';
import { reviewCountState } from '../helpers/review-counts.js';
import { ADMIN, USER_PASSWORD, startTestApp, type TestApp } from '../helpers/test-app.js';

// A product keeps its review count and rating sum; each review write changes two documents
// without a transaction, journaled so that every change is applied exactly once, also when the
// writer dies between any two steps (services/review-counts.ts).

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ seed: { users: 30, products: 20, reviews: 100, orders: 0 } });
});
afterAll(async () => {
  await t.stop();
});

const product = (i: number): string => `5eed0001${i.toString(16).padStart(16, '0')}`;
const shown = async (id: string) =>
  (
    await t.gql<{ product: { reviewCount: number; averageRating: number | null } }>(
      `{ product(id: "${id}") { reviewCount averageRating } }`,
    )
  ).body.data?.product;

const state = reviewCountState;

async function recover(): Promise<number> {
  return recoverReviewCounts({
    documentLock: t.app.documentLock,
    logger: createLogger({ level: 'silent' }),
    olderThanMs: 0,
    changed: (reviews) => t.app.cache.entity('Product').invalidate(reviews.map((r) => r.product.toHexString())),
  });
}

describe('review counts kept on the product', () => {
  it('the seed and concurrent createReviews by 12 users leave them exact, and reads show them', async () => {
    const id = product(3);
    await shown(id); // cached
    const before = await state(id);
    expect(before.kept).toEqual(before.truth);
    const tokens = await Promise.all(Array.from({ length: 12 }, (_, i) => t.login(`user${i + 1}@example.com`, USER_PASSWORD)));
    const results = await Promise.all(
      tokens.map((token, i) =>
        t.gql(`mutation { createReview(input: { productId: "${id}", rating: ${1 + (i % 5)} }) { id product { reviewCount } } }`, {}, token),
      ),
    );
    expect(results.flatMap((r) => r.body.errors ?? [])).toEqual([]);
    const after = await state(id);
    expect(after.truth.reviewCount).toBe(before.truth.reviewCount + 12);
    expect(after.kept).toEqual(after.truth);
    expect(after.flagged).toBe(0);
    expect(await shown(id)).toEqual({
      reviewCount: after.truth.reviewCount,
      averageRating: expect.closeTo(after.truth.ratingSum / after.truth.reviewCount, 9),
    });
  });

  it('a change stopped after any step is finished exactly once by recovery', async () => {
    const id = product(5);
    const productId = new Types.ObjectId(id);
    const author = new Types.ObjectId(`5eed0000${(7).toString(16).padStart(16, '0')}`);
    const start = await state(id);
    expect(start.kept).toEqual(start.truth);
    const old = new Date(Date.now() - 120_000);
    const journaled = (delta: 1 | -1) => ({ delta, at: old });

    // +1 stopped after the insert (step 1): not counted yet.
    const a = await ReviewModel.create({ product: productId, author, rating: 5, counting: journaled(1) });
    // +1 stopped after the product counted it (step 2).
    const b = await ReviewModel.create({ product: productId, author, rating: 4, counting: journaled(1) });
    await ProductModel.updateOne(
      { _id: productId },
      { $inc: { reviewCount: 1, ratingSum: 4 }, $push: { reviewsCounted: `${b._id.toHexString()}:1` } },
    );
    // +1 finished (steps 2 and 3): nothing left to do.
    const c = await ReviewModel.create({ product: productId, author, rating: 3 });
    await ProductModel.updateOne(
      { _id: productId },
      { $inc: { reviewCount: 1, ratingSum: 3 }, $push: { reviewsCounted: `${c._id.toHexString()}:1` } },
    );
    // -1 of an existing review stopped after it was journaled (before step 2).
    const doomed = await ReviewModel.findOne({ product: productId, counting: null, _id: { $nin: [a._id, b._id, c._id] } }).lean();
    expect(doomed).not.toBeNull();
    await ReviewModel.updateOne({ _id: doomed?._id }, { $set: { counting: journaled(-1) } });

    const halfway = await state(id);
    expect(halfway.kept.reviewCount).toBe((start.kept.reviewCount ?? -1) + 2); // b and c counted; a and the deletion not
    expect(halfway.flagged).toBe(3);

    expect(await recover()).toBe(3); // a, b, and the deletion
    const after = await state(id);
    expect(await ReviewModel.exists({ _id: doomed?._id })).toBeNull();
    expect(after.truth.reviewCount).toBe(start.truth.reviewCount + 3 - 1);
    expect(after.kept).toEqual(after.truth);
    expect(after.flagged).toBe(0);
    expect((await shown(id))?.reviewCount).toBe(after.truth.reviewCount);

    // Running it again changes nothing.
    expect(await recover()).toBe(0);
    expect((await state(id)).kept).toEqual(after.truth);
  });

  it('deleteUser takes each of the user’s reviews off its product once, also when run twice', async () => {
    const admin = await t.login(ADMIN.email, ADMIN.password);
    const victim = `5eed0000${(9).toString(16).padStart(16, '0')}`;
    const products = [...new Set((await ReviewModel.find({ author: victim }).lean()).map((r) => r.product.toHexString()))];
    expect(products.length).toBeGreaterThan(0);
    for (const id of products) await shown(id); // cached
    expect((await t.gql(`mutation { deleteUser(id: "${victim}") }`, {}, admin)).body.data?.deleteUser).toBe(true);
    expect((await t.gql(`mutation { deleteUser(id: "${victim}") }`, {}, admin)).body.data?.deleteUser).toBe(false);
    for (const id of products) {
      const after = await state(id);
      expect(after.kept).toEqual(after.truth);
      expect((await shown(id))?.reviewCount).toBe(after.truth.reviewCount);
    }
  });

  it('products written before the counts existed get them from their reviews at start-up', async () => {
    const id = product(8);
    await ProductModel.collection.updateOne({ _id: new Types.ObjectId(id) }, { $unset: { reviewCount: '', ratingSum: '' } });
    const changed = await backfillReviewCounts(t.app.documentLock);
    expect(changed).toEqual([id]);
    const after = await state(id);
    expect(after.kept).toEqual(after.truth);
    expect(await backfillReviewCounts(t.app.documentLock)).toEqual([]);
  });
});
