import { ProductModel, ReviewModel } from '../../src/models/index.js';

/**
 * What the reviews of product `id` in MongoDB say (`truth`), what the product document keeps
 * (`kept`), and how many of its reviews still carry an unfinished count change (`flagged`).
 */
export async function reviewCountState(id: string) {
  const reviews = await ReviewModel.find({ product: id }, { rating: 1 }).lean();
  const doc = await ProductModel.findById(id).lean();
  return {
    truth: { reviewCount: reviews.length, ratingSum: reviews.reduce((sum, r) => sum + r.rating, 0) },
    kept: { reviewCount: doc?.reviewCount, ratingSum: doc?.ratingSum },
    flagged: await ReviewModel.countDocuments({ product: id, counting: { $ne: null } }),
  };
}
