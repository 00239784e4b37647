import { Types } from 'mongoose';
import type { Cache } from 'graphql-lease-cache';
import { AppError, ErrorCode } from '../errors.js';
import { ReviewModel } from '../models/index.js';
import type { ProductDoc } from '../models/product.model.js';
import type { ReviewDoc } from '../models/review.model.js';
import { tags, type TagInvalidator } from '../caching/tags.js';
import type { DocumentLock } from './document-lock.js';
import { settleReviewCount } from './review-counts.js';
import { afterUncertainWrite, isOutcomeUnknown } from './mongo-errors.js';
import { requireViewer, type RequestScope } from './scope.js';
import { inputs, parseId, parseInput } from './validation.js';

/** The createReview input shape. */
export interface CreateReviewArgs {
  productId: string;
  rating: number;
  body?: string | null;
}

/** Reviews by signed-in users. */
export type ReviewService = ReturnType<typeof createReviewService>;

/** Options of {@link createReviewService}. */
export interface ReviewServiceOptions {
  documentLock: DocumentLock;
  cache: Cache;
  fieldCache: TagInvalidator;
  /** See ServicesOptions.uncertainWriteHoldMs; in milliseconds. */
  uncertainWriteHoldMs: number;
}

/** Review writes. */
export function createReviewService(options: ReviewServiceOptions) {
  const reviews = options.cache.entity<ReviewDoc>('Review');
  const products = options.cache.entity<ProductDoc>('Product');
  const hold = { holdMs: options.uncertainWriteHoldMs };
  return {
    /** A review of a live product by the viewer; rating 1..5. */
    async create(scope: RequestScope, args: CreateReviewArgs): Promise<ReviewDoc> {
      const viewer = await requireViewer(scope);
      const input = parseInput(inputs.createReview, args, 'input');
      const productId = parseId(input.productId, 'input.productId');
      const product = await scope.loaders.product.load(productId.toHexString());
      if (!product || product.deletedAt) {
        throw new AppError(ErrorCode.NotFound, 'No product has this id.', { field: 'input.productId' });
      }
      // The author's review count and first pages, and the product's first pages, depend on this.
      const productKey = productId.toHexString();
      const dependents = [tags.productReviews(productKey), tags.userReviews(viewer._id.toHexString())];
      // The id is chosen here, so that an insert MongoDB did not answer can still be invalidated.
      const reviewId = new Types.ObjectId();
      // Inserted with its count change journaled, then counted on the product (review-counts.ts).
      const created = {
        _id: reviewId,
        product: productId,
        author: viewer._id,
        rating: input.rating,
        body: input.body ?? null,
      };
      const settled = await afterUncertainWrite(
        () =>
          Promise.all([
            reviews.invalidate([reviewId.toHexString()], hold),
            products.invalidate([productKey], hold),
            options.fieldCache.invalidate(dependents, hold),
          ]),
        () => insertCounted(options.documentLock, created),
      );
      // Invalidated, never written through: another writer of the product or the review (an
      // updateProduct, a deleteUser) may have returned meanwhile, and what this request holds
      // could be older than what it left (an invalidation leaves no version to compare with).
      await Promise.all([
        reviews.invalidate([reviewId.toHexString()]),
        products.invalidate([productKey]),
        options.fieldCache.invalidate(dependents),
      ]);
      scope.loaders.product.clear(productKey);
      if (!settled.live) {
        // The product was deleted meanwhile (after this request found it live): its reviews go
        // with it, this one too, whether or not deleteProduct's own sweep saw it.
        await ReviewModel.deleteOne({ _id: reviewId }).exec();
        await reviews.invalidate([reviewId.toHexString()]);
        throw new AppError(ErrorCode.NotFound, 'No product has this id.', { field: 'input.productId' });
      }
      const review: ReviewDoc = settled.review ?? { ...created, counting: null, version: 1, createdAt: new Date(), updatedAt: new Date() };
      scope.loaders.review.prime(review._id.toHexString(), review);
      return review;
    },
  };
}

/** Inserts a review with its count change journaled, then counts it on its product (review-counts.ts). */
async function insertCounted(
  documentLock: DocumentLock,
  created: Pick<ReviewDoc, '_id' | 'product' | 'author' | 'rating' | 'body'>,
): ReturnType<typeof settleReviewCount> {
  const doc = { ...created, counting: { delta: 1 as const, at: new Date() } };
  try {
    await ReviewModel.create(doc);
  } catch (error) {
    // An insert whose answer was lost may have landed: if it did, finish the review
    // here rather than answer "unknown" (one that lands later is counted by recovery).
    if (!isOutcomeUnknown(error) || !(await ReviewModel.exists({ _id: created._id }).exec())) throw error;
  }
  return settleReviewCount(documentLock, doc, 1);
}
