import type { Types } from 'mongoose';
import { countReviews } from '../loaders/review-stats.js';
import type { Logger } from '../logger.js';
import { ProductModel, ReviewModel } from '../models/index.js';
import type { ProductDoc } from '../models/product.model.js';
import type { ReviewDoc } from '../models/review.model.js';
import type { DocumentLock } from './document-lock.js';

// A product keeps its review count and rating sum (`reviewCount`, `ratingSum`), so that a read
// of them is a read of the product: no aggregation on a miss, and a createReview that updates
// the product's cached document instead of sending every reader of it to MongoDB. The cost is
// that a review write now changes two documents, without a transaction (FerretDB has none, nor
// does a standalone mongod), so each change is journaled and applied exactly once:
//
//   1. the review carries `counting: {delta, at}` (+1: inserted with it; -1: set before deleting);
//   2. the product applies the delta and records the review in `reviewsCounting`, in one update
//      that is conditional on the review not being recorded there (so never twice);
//   3. the review drops `counting` (+1) or is deleted (-1);
//   4. the product drops the review from `reviewsCounting`.
//
// A review with `counting` and no record on its product has not been applied (step 4 only ever
// follows step 3), so recovery can finish any change that stopped half-way, from any step, by
// running the steps again: each is idempotent. {@link recoverReviewCounts} does that for changes
// older than a minute (at start-up and then every minute), like the reservations of orders.

/** Changes at least this old are finished by {@link recoverReviewCounts}: far longer than a write may take. */
export const REVIEW_COUNT_RECOVERY_AGE_MS = 60_000;

/** What a count change needs of its review. */
export type CountedReview = Pick<ReviewDoc, '_id' | 'product' | 'rating'>;

/** The outcome of {@link settleReviewCount}. */
export interface SettledCount {
  /** The product after the change, or null when it no longer exists. */
  product: ProductDoc | null;
  /** The review after the change (+1), or null (-1: deleted). */
  review: ReviewDoc | null;
}

/**
 * Applies a journaled count change of `review` to its product (steps 2 to 4 above); safe to run
 * again, also concurrently with itself. A deleted product is not counted on (deleteProduct
 * zeroes its counts and deletes its reviews).
 */
export async function settleReviewCount(lock: DocumentLock, review: CountedReview, delta: 1 | -1): Promise<SettledCount> {
  const productLock = [`products:${review.product.toHexString()}`];
  await lock.run(productLock, () =>
    ProductModel.updateOne(
      { _id: review.product, deletedAt: null, reviewsCounting: { $ne: review._id } },
      { $inc: { reviewCount: delta, ratingSum: delta * review.rating }, $push: { reviewsCounting: review._id } },
    ).exec(),
  );
  const settled =
    delta === 1
      ? await ReviewModel.findOneAndUpdate({ _id: review._id }, { $unset: { counting: 1 } }, { returnDocument: 'after' })
          .lean<ReviewDoc>()
          .exec()
      : (await ReviewModel.deleteOne({ _id: review._id }).exec(), null);
  const product = await lock.run(productLock, () =>
    ProductModel.findOneAndUpdate({ _id: review.product }, { $pull: { reviewsCounting: review._id } }, { returnDocument: 'after' })
      .lean<ProductDoc>()
      .exec(),
  );
  return { product, review: settled };
}

/** Options of {@link recoverReviewCounts}. */
export interface RecoverReviewCountsOptions {
  documentLock: DocumentLock;
  logger: Logger;
  /** Called with the products whose documents changed, to drop them from the cache. */
  changed(productIds: string[]): Promise<unknown>;
  /** Changes at least this old are finished; default {@link REVIEW_COUNT_RECOVERY_AGE_MS}. */
  olderThanMs?: number;
}

/**
 * Finishes the review count changes that stopped half-way (server killed, MongoDB lost
 * mid-call), at most 100 per call; returns how many it finished. Also drops the records left
 * on products by a change that stopped between steps 3 and 4.
 */
export async function recoverReviewCounts(options: RecoverReviewCountsOptions): Promise<number> {
  const cutoff = new Date(Date.now() - (options.olderThanMs ?? REVIEW_COUNT_RECOVERY_AGE_MS));
  const stuck = await ReviewModel.find({ 'counting.at': { $lte: cutoff } })
    .limit(100)
    .lean<ReviewDoc[]>()
    .exec();
  const changed = new Set<string>();
  for (const review of stuck) {
    const delta = review.counting?.delta;
    if (delta !== 1 && delta !== -1) continue;
    await settleReviewCount(options.documentLock, review, delta);
    changed.add(review.product.toHexString());
    options.logger.warn({ reviewId: review._id.toHexString(), delta }, 'recovered an unfinished review count change');
  }
  // Records whose review no longer carries `counting` (or is gone): the change is settled.
  const recorded = await ProductModel.find({ 'reviewsCounting.0': { $exists: true } }, { reviewsCounting: 1 })
    .limit(100)
    .lean<Pick<ProductDoc, '_id' | 'reviewsCounting'>[]>()
    .exec();
  for (const product of recorded) {
    const ids = product.reviewsCounting ?? [];
    const open = new Set(
      (
        await ReviewModel.find({ _id: { $in: ids }, counting: { $ne: null } }, { _id: 1 })
          .lean<{ _id: Types.ObjectId }[]>()
          .exec()
      ).map((r) => r._id.toHexString()),
    );
    const done = ids.filter((id) => !open.has(id.toHexString()));
    if (done.length === 0) continue;
    await options.documentLock.run([`products:${product._id.toHexString()}`], () =>
      ProductModel.updateOne({ _id: product._id }, { $pullAll: { reviewsCounting: done } }).exec(),
    );
    changed.add(product._id.toHexString());
  }
  if (changed.size) await options.changed([...changed]);
  return stuck.length;
}

/**
 * Sets `reviewCount` and `ratingSum` on the products that have none (written before they
 * existed), from their reviews; returns their ids (for the caller to drop from the cache). Runs
 * at start-up, before the server answers: a review write on such a product would otherwise
 * start its count from zero.
 */
export async function backfillReviewCounts(): Promise<string[]> {
  const missing = await ProductModel.find({ reviewCount: { $exists: false } }, { _id: 1 })
    .lean<{ _id: Types.ObjectId }[]>()
    .exec();
  for (let start = 0; start < missing.length; start += 100) {
    const ids = missing.slice(start, start + 100).map((p) => p._id.toHexString());
    const stats = await countReviews('product', ids);
    await ProductModel.bulkWrite(
      ids.map((id, i) => ({
        updateOne: {
          filter: { _id: id, reviewCount: { $exists: false } },
          update: { $set: { reviewCount: stats[i]?.count ?? 0, ratingSum: stats[i]?.ratingSum ?? 0 }, $inc: { version: 1 } },
        },
      })),
      { ordered: false },
    );
  }
  return missing.map((p) => p._id.toHexString());
}
