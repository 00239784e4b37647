import DataLoader from 'dataloader';
import type { OrderDoc } from '../models/order.model.js';
import { OrderModel, ProductModel, ReviewModel, UserModel } from '../models/index.js';
import type { ProductDoc } from '../models/product.model.js';
import type { ReviewDoc } from '../models/review.model.js';
import type { UserDoc } from '../models/user.model.js';
import { childrenCacheKey, findByIds, findChildren, type ChildrenKey } from './batch.js';
import { countReviews, type ReviewStats } from './review-stats.js';

export type { ChildrenKey };

/** The DataLoaders of one request. Never share them between requests (they memoize per viewer). */
export interface Loaders {
  user: DataLoader<string, UserDoc | null>;
  product: DataLoader<string, ProductDoc | null>;
  review: DataLoader<string, ReviewDoc | null>;
  order: DataLoader<string, OrderDoc | null>;
  reviewsByProduct: DataLoader<ChildrenKey, ReviewDoc[], string>;
  reviewsByAuthor: DataLoader<ChildrenKey, ReviewDoc[], string>;
  ordersByUser: DataLoader<ChildrenKey, OrderDoc[], string>;
  /** Review count and rating sum per product id. */
  productReviewStats: DataLoader<string, ReviewStats>;
  /** Review count per author id. */
  userReviewCount: DataLoader<string, number>;
}

/** Fresh loaders for one request: each batch is one MongoDB command. */
export function createLoaders(): Loaders {
  const reviewLoader = new DataLoader<string, ReviewDoc | null>((ids) => findByIds(ReviewModel, ids));
  const primeReviews = (pages: ReviewDoc[][]): ReviewDoc[][] => {
    for (const page of pages) for (const review of page) reviewLoader.prime(review._id.toHexString(), review);
    return pages;
  };
  return {
    user: new DataLoader((ids) => findByIds(UserModel, ids)),
    product: new DataLoader((ids) => findByIds(ProductModel, ids)),
    review: reviewLoader,
    order: new DataLoader((ids) => findByIds(OrderModel, ids)),
    reviewsByProduct: new DataLoader(
      async (keys) => primeReviews(await findChildren({ model: ReviewModel, foreignKey: 'product' }, keys)),
      { cacheKeyFn: childrenCacheKey },
    ),
    reviewsByAuthor: new DataLoader(async (keys) => primeReviews(await findChildren({ model: ReviewModel, foreignKey: 'author' }, keys)), {
      cacheKeyFn: childrenCacheKey,
    }),
    ordersByUser: new DataLoader((keys) => findChildren({ model: OrderModel, foreignKey: 'user' }, keys), {
      cacheKeyFn: childrenCacheKey,
    }),
    productReviewStats: new DataLoader((ids) => countReviews('product', ids)),
    userReviewCount: new DataLoader(async (ids) => (await countReviews('author', ids)).map((s) => s.count)),
  };
}
