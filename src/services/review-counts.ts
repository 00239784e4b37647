import type { Types } from 'mongoose';
import { countReviews } from '../loaders/review-stats.js';
import type { Logger } from '../logger.js';
import { ProductModel, ReviewModel } from '../models/index.js';
import type { ProductDoc } from '../models/product.model.js';
import type { ReviewDoc } from '../models/review.model.js';
import type { DocumentLock } from './document-lock.js';
import { updateByIdIf } from './update-by-id.js';

// A product keeps its review count and rating sum (`reviewCount`, `ratingSum`), so that a read
// of them is a read of the product: no aggregation on a miss, and no reader of the product sent
// to one after every createReview. The cost is that a review write changes two documents,
// without a transaction (FerretDB has none, nor does a standalone mongod), so each change is
// journaled and applied exactly once:
//
//   1. the review carries `counting: {delta, at}` (+1: inserted with it; -1: set before deleting);
//   2. the product applies the delta and records `<review id>:<delta>` in `reviewsCounted`, in one
//      update conditional on that record being absent (so never twice, whoever runs it, however
//      late: a second settler that read the review before the first finished finds the record);
//   3. the review drops `counting` (+1) or is deleted (-1).
//
// A review with `counting` whose record is absent has not been applied, so recovery finishes any
// change stopped between two steps by running them again; each is idempotent. The records are
// the newest {@link REVIEW_COUNT_RECORDS_KEPT} per product, like `wbDone`: a settler would have to
// run after that many later changes of the same product to apply one twice. A record names its
// direction, so a review created and then deleted has both. {@link recoverReviewCounts} runs at
// start-up and then every minute, for changes older than a minute, like order reservations.

/** Changes at least this old are finished by {@link recoverReviewCounts}: far longer than a write may take. */
export const REVIEW_COUNT_RECOVERY_AGE_MS = 60_000;

/** How many applied changes a product remembers (the newest). */
export const REVIEW_COUNT_RECORDS_KEPT = 200;

/** What a count change needs of its review. */
export type CountedReview = Pick<ReviewDoc, '_id' | 'product' | 'rating'>;

/** The outcome of {@link settleReviewCount}. */
export interface SettledCount {
  /** False when the product is deleted (or gone): nothing was counted on it. */
  live: boolean;
  /** The review after the change (+1), or null (-1: deleted; +1: deleted meanwhile). */
  review: ReviewDoc | null;
}

/**
 * Applies a journaled count change of `review` to its product (steps 2 and 3 above); safe to run
 * again, also concurrently with itself. A deleted product is not counted on (deleteProduct
 * zeroes its counts and deletes its reviews).
 */
export async function settleReviewCount(lock: DocumentLock, review: CountedReview, delta: 1 | -1): Promise<SettledCount> {
  const record = `${review._id.toHexString()}:${delta}`;
  const applied = await lock.run([`products:${review.product.toHexString()}`], () =>
    updateByIdIf(
      lock,
      ProductModel,
      review.product,
      { deletedAt: null, reviewsCounted: { $ne: record } },
      {
        $inc: { reviewCount: delta, ratingSum: delta * review.rating },
        $push: { reviewsCounted: { $each: [record], $slice: -REVIEW_COUNT_RECORDS_KEPT } },
      },
      { projection: { _id: 1 } },
    ),
  );
  // Counted: the product was live. Not counted: deleted, or counted before by another settler;
  // only then is it read again.
  let live = applied !== null;
  if (!live) {
    const product = await ProductModel.findById(review.product, { deletedAt: 1 }).lean<Pick<ProductDoc, 'deletedAt'>>().exec();
    live = product !== null && !product.deletedAt;
  }
  const settled =
    delta === 1
      ? await ReviewModel.findOneAndUpdate({ _id: review._id }, { $unset: { counting: 1 } }, { returnDocument: 'after' })
          .lean<ReviewDoc>()
          .exec()
      : (await ReviewModel.deleteOne({ _id: review._id }).exec(), null);
  return { live, review: settled };
}

/** Options of {@link recoverReviewCounts}. */
export interface RecoverReviewCountsOptions {
  documentLock: DocumentLock;
  logger: Logger;
  /** Called with the reviews whose changes it finished, to drop what they touched from the cache. */
  changed(reviews: Pick<ReviewDoc, '_id' | 'product' | 'author'>[]): Promise<unknown>;
  /** Changes at least this old are finished; default {@link REVIEW_COUNT_RECOVERY_AGE_MS}. */
  olderThanMs?: number;
}

/**
 * Finishes the review count changes that stopped half-way (server killed, MongoDB lost
 * mid-call), at most 100 per call; returns how many it finished.
 */
export async function recoverReviewCounts(options: RecoverReviewCountsOptions): Promise<number> {
  const cutoff = new Date(Date.now() - (options.olderThanMs ?? REVIEW_COUNT_RECOVERY_AGE_MS));
  const stuck = await ReviewModel.find({ 'counting.at': { $lte: cutoff } })
    .limit(100)
    .lean<ReviewDoc[]>()
    .exec();
  const finished: ReviewDoc[] = [];
  for (const review of stuck) {
    const delta = review.counting?.delta;
    if (delta !== 1 && delta !== -1) continue;
    await settleReviewCount(options.documentLock, review, delta);
    finished.push(review);
    options.logger.warn({ reviewId: review._id.toHexString(), delta }, 'recovered an unfinished review count change');
  }
  if (finished.length) await options.changed(finished);
  return finished.length;
}

/**
 * Sets `reviewCount` and `ratingSum` on the products that have none (written before they
 * existed), from their reviews; returns their ids (for the caller to drop from the cache). Runs
 * on the instance that runs the background jobs, when it takes their lease, before it answers
 * (the others wait for it at start): a review write on such a product would otherwise start its
 * count from zero.
 */
export async function backfillReviewCounts(lock: DocumentLock): Promise<string[]> {
  const missing = await ProductModel.find({ reviewCount: { $exists: false } }, { _id: 1 })
    .lean<{ _id: Types.ObjectId }[]>()
    .exec();
  for (let start = 0; start < missing.length; start += 100) {
    const ids = missing.slice(start, start + 100).map((p) => p._id.toHexString());
    const stats = await countReviews('product', ids);
    // Under the documents' lock: on FerretDB an unlocked update races the other writers of the product.
    await lock.run(
      ids.map((id) => `products:${id}`),
      () =>
        ProductModel.bulkWrite(
          ids.map((id, i) => ({
            updateOne: {
              filter: { _id: id, reviewCount: { $exists: false } },
              update: { $set: { reviewCount: stats[i]?.count ?? 0, ratingSum: stats[i]?.ratingSum ?? 0 }, $inc: { version: 1 } },
            },
          })),
          { ordered: false },
        ),
    );
  }
  return missing.map((p) => p._id.toHexString());
}
