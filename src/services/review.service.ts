import { Types } from 'mongoose';
import type { Cache } from '../cache/index.js';
import { AppError, ErrorCode } from '../errors.js';
import { ReviewModel } from '../models/index.js';
import type { ReviewDoc } from '../models/review.model.js';
import { tags, type TagInvalidator } from './cache-tags.js';
import { afterUncertainWrite } from './mongo-errors.js';
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
  cache: Cache;
  fieldCache: TagInvalidator;
  /** See ServicesOptions.uncertainWriteHoldMs; in milliseconds. */
  uncertainWriteHoldMs: number;
}

/** Review writes. */
export function createReviewService(options: ReviewServiceOptions) {
  const reviews = options.cache.entity<ReviewDoc>('Review');
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
      // The product's and the author's review aggregates and first pages depend on this.
      const dependents = [tags.productReviews(productId.toHexString()), tags.userReviews(viewer._id.toHexString())];
      // The id is chosen here, so that an insert MongoDB did not answer can still be invalidated.
      const reviewId = new Types.ObjectId();
      const created = await afterUncertainWrite(
        () => Promise.all([reviews.invalidate([reviewId.toHexString()], hold), options.fieldCache.invalidate(dependents, hold)]),
        () => ReviewModel.create({ _id: reviewId, product: productId, author: viewer._id, rating: input.rating, body: input.body ?? null }),
      );
      const review = created.toObject<ReviewDoc>();
      await Promise.all([reviews.refresh([review]), options.fieldCache.invalidate(dependents)]);
      scope.loaders.review.prime(review._id.toHexString(), review);
      return review;
    },
  };
}
