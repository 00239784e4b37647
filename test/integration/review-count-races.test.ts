import { Types } from 'mongoose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ReviewModel } from '../../src/models/index.js';
import { settleReviewCount } from '../../src/services/review-counts.js';
import { reviewCountState } from '../helpers/review-counts.js';
import { ADMIN, USER_PASSWORD, startTestApp, type TestApp } from '../helpers/test-app.js';
import { gate, type Gate } from '../helpers/wait.js';

// Races of the review counts kept on the product (services/review-counts.ts and its callers),
// found by a hostile review. Each test drives one exact interleaving, with gates patched into the
// models of the in-process server, and compares the product with its reviews.

let t: TestApp;
let admin: string;
beforeAll(async () => {
  t = await startTestApp({ seed: { users: 30, products: 20, reviews: 100, orders: 0 } });
  admin = await t.login(ADMIN.email, ADMIN.password);
});
afterAll(async () => {
  await t.stop();
});

const restores: (() => void)[] = [];
afterEach(() => {
  for (const restore of restores.splice(0).reverse()) restore();
});

const product = (i: number): string => `5eed0001${i.toString(16).padStart(16, '0')}`;

const state = reviewCountState;

async function viewerId(token: string): Promise<string> {
  const res = await t.gql<{ viewer: { id: string } }>('{ viewer { id } }', {}, token);
  return res.body.data!.viewer.id;
}

/** Patches a static of a model; restored after the test. */
function patchStatic(model: any, name: string, wrap: (orig: (...args: any[]) => any) => (...args: any[]) => any): void {
  const had = Object.prototype.hasOwnProperty.call(model, name);
  const own = model[name];
  const orig = model[name].bind(model);
  model[name] = wrap(orig);
  restores.push(() => {
    if (had) model[name] = own;
    else delete model[name];
  });
}

/** Holds createReview right after its review dropped `counting` (its count change is settled). */
function pauseAfterSettled(paused: Gate): void {
  patchStatic(ReviewModel, 'findOneAndUpdate', (orig) => (...args: any[]) => {
    const query = orig(...args);
    if (args[1]?.$unset?.counting) {
      const exec = query.exec.bind(query);
      query.exec = async () => {
        const result = await exec();
        await paused.pass();
        return result;
      };
    }
    return query;
  });
}

describe('review counts under racing writers', () => {
  it('a settle that read the review before another settle finished does not apply the change again', async () => {
    const id = product(2);
    const productId = new Types.ObjectId(id);
    const start = await state(id);
    expect(start.kept).toEqual(start.truth);
    // A deletion journaled (step 1 of -1), as finishErasure's updateMany leaves it.
    const victim = await ReviewModel.findOne({ product: productId, counting: null }).lean();
    expect(victim).not.toBeNull();
    await ReviewModel.updateOne({ _id: victim!._id }, { $set: { counting: { delta: -1, at: new Date(Date.now() - 120_000) } } });
    // Two settlers (two recoveries, or two deleteUser calls) both read the journaled review ...
    const seenByA = await ReviewModel.findById(victim!._id).lean();
    const seenByB = await ReviewModel.findById(victim!._id).lean();
    // ... A runs all its steps, then B runs its steps.
    await settleReviewCount(t.app.documentLock, seenByA!, -1);
    await settleReviewCount(t.app.documentLock, seenByB!, -1);
    const after = await state(id);
    expect(after.truth.reviewCount).toBe(start.truth.reviewCount - 1);
    // The deletion is taken off the product once (B finds A's record).
    expect(after.kept).toEqual(after.truth);
  });

  it('two concurrent deleteUser calls (the user and an ADMIN) take each review off its product once', async () => {
    // A user with many reviews of one product, so that the two loops overlap.
    const token = await t.login('user20@example.com', USER_PASSWORD);
    const uid = await viewerId(token);
    const id = product(4);
    for (let i = 0; i < 12; i++) {
      const res = await t.gql(`mutation { createReview(input: { productId: "${id}", rating: 5 }) { id } }`, {}, token);
      expect(res.body.errors).toBeUndefined();
    }
    const start = await state(id);
    expect(start.kept).toEqual(start.truth);
    // The second call starts once the first one has deleted its first review (a client retry,
    // or the user and an admin at once).
    let deletes = 0;
    const firstDeleted = gate();
    patchStatic(ReviewModel, 'deleteOne', (orig) => (...args: any[]) => {
      deletes += 1;
      if (deletes === 1) firstDeleted.reach();
      return orig(...args);
    });
    const one = t.gql(`mutation { deleteUser(id: "${uid}") }`, {}, token);
    await firstDeleted.reached;
    const two = t.gql(`mutation { deleteUser(id: "${uid}") }`, {}, admin);
    const [r1, r2] = await Promise.all([one, two]);
    expect(r1.body.errors).toBeUndefined();
    expect(r2.body.errors).toBeUndefined();
    const after = await state(id);
    expect(after.truth.reviewCount).toBe(start.truth.reviewCount - 12);
    // The second call's stale snapshot does not re-apply deletions the first one finished.
    expect(after.kept).toEqual(after.truth);
    expect(after.kept.reviewCount).toBeGreaterThanOrEqual(0);
  });

  it('deleteUser right after createReview settled takes the review off its product', async () => {
    const token = await t.login('user21@example.com', USER_PASSWORD);
    const uid = await viewerId(token);
    const id = product(6);
    const start = await state(id);
    expect(start.kept).toEqual(start.truth);
    // Pause createReview right after its review dropped `counting` (the change is settled).
    const paused = gate();
    pauseAfterSettled(paused);
    const creating = t.gql<{ createReview: { id: string } }>(
      `mutation { createReview(input: { productId: "${id}", rating: 5 }) { id } }`,
      {},
      token,
    );
    await paused.reached;
    const deleted = await t.gql(`mutation { deleteUser(id: "${uid}") }`, {}, admin);
    expect(deleted.body.data?.deleteUser).toBe(true);
    paused.open();
    const created = await creating;
    // createReview succeeded (the review was created) ...
    expect(created.body.errors).toBeUndefined();
    const reviewId = created.body.data!.createReview.id;
    // ... the review is gone (deleteUser deleted it after) ...
    expect(await ReviewModel.exists({ _id: reviewId })).toBeNull();
    const after = await state(id);
    // ... and the product does not count it: the -1 has a record of its own, apart from the +1's.
    expect(after.kept).toEqual(after.truth);
  });

  it('deleteUser right after createReview settled: the deleted review is not written back to the cache', async () => {
    const token = await t.login('user22@example.com', USER_PASSWORD);
    const uid = await viewerId(token);
    const id = product(7);
    const paused = gate();
    pauseAfterSettled(paused);
    const creating = t.gql<{ createReview: { id: string } }>(
      `mutation { createReview(input: { productId: "${id}", rating: 4 }) { id } }`,
      {},
      token,
    );
    await paused.reached;
    expect((await t.gql(`mutation { deleteUser(id: "${uid}") }`, {}, admin)).body.data?.deleteUser).toBe(true);
    paused.open();
    const created = await creating;
    const reviewId = created.body.data!.createReview.id;
    expect(await ReviewModel.exists({ _id: reviewId })).toBeNull();
    // Both mutations returned; the review is not in MongoDB, and no query finds it.
    const read = await t.gql<{ review: { id: string } | null }>(`{ review(id: "${reviewId}") { id rating } }`);
    expect(read.body.data?.review).toBeNull();
  });

  it('createReview racing deleteProduct answers NOT_FOUND and leaves no review of the deleted product', async () => {
    const token = await t.login('user27@example.com', USER_PASSWORD);
    const id = product(12);
    await t.gql(`{ product(id: "${id}") { id } }`); // cached: createReview's check passes from the cache
    const paused = gate();
    patchStatic(ReviewModel, 'create', (orig) => async (...args: any[]) => {
      await paused.pass();
      return orig(...args);
    });
    const creating = t.gql<{ createReview: { id: string } }>(
      `mutation { createReview(input: { productId: "${id}", rating: 2 }) { id } }`,
      {},
      token,
    );
    await paused.reached; // the product was found live; the insert is about to go
    const deletedRes = await t.gql(`mutation { deleteProduct(id: "${id}") }`, {}, admin);
    expect(deletedRes.body).toMatchObject({ data: { deleteProduct: true } });
    paused.open();
    const created = await creating;
    // NOT_FOUND (the product is deleted), and the review goes with the product.
    expect(created.body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect(await ReviewModel.countDocuments({ product: id })).toBe(0);
  });
});
