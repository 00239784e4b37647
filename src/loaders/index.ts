import DataLoader from 'dataloader';
import type { RequestTrace } from '../trace.js';
import type { Model } from 'mongoose';
import type { Cache, Versioned } from 'graphql-lease-cache';
import type { OrderDoc } from '../models/order.model.js';
import { OrderModel, ProductModel, ReviewModel, UserModel } from '../models/index.js';
import { PRODUCT_BOOKKEEPING, type ProductDoc } from '../models/product.model.js';
import type { ReviewDoc } from '../models/review.model.js';
import type { UserDoc } from '../models/user.model.js';
import { WRITE_BEHIND_BOOKKEEPING } from '../models/write-behind.plugin.js';
import { findProductPage, type ProductPageIds, type ProductPageQuery } from './product-pages.js';
import type { ReadGate } from './read-bulkhead.js';
import { childrenCacheKey, findByIds, findChildren, type ChildrenKey, type Identified } from './batch.js';
import { countReviews } from './review-stats.js';

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
  /** Review count per author id. */
  userReviewCount: DataLoader<string, number>;
  /** Catalog pages, one MongoDB command each (pages of different arguments cannot share one). */
  productPages: DataLoader<ProductPageQuery, ProductPageIds, string>;
}

/** What {@link createLoaders} needs from the process. */
export interface LoaderDeps {
  cache: Cache;
  /** The request's trace, where the cache counts its hits, misses and Redis round trips. */
  trace?: RequestTrace;
  /** Where every MongoDB read of the loaders waits its turn: the process's bulkhead (read-bulkhead.ts), or none in a mutation. */
  reads: ReadGate;
}

/**
 * Fresh loaders for one request. Loads by id go through the entity cache: warm, one Redis
 * round trip per batch; cold, one more to fill, and one MongoDB command for the misses.
 * Lists and aggregates are one MongoDB command per batch (the field cache takes them). Each
 * MongoDB command runs in a slot of the read bulkhead (`reads`): a storm of queries waits, or is
 * refused with SERVER_BUSY, instead of taking MongoDB from the writes.
 */
export function createLoaders(deps: LoaderDeps): Loaders {
  const { cache, reads } = deps;
  const byId = <T extends Identified & Versioned>(type: string, model: Model<T>, projection?: Record<string, 0>) => {
    const entities = cache.entity<T>(type);
    return new DataLoader<string, T | null>((ids) =>
      entities.getMany(ids, (missing) => reads.run(() => findByIds(model, missing, projection)), deps.trace),
    );
  };
  const reviewLoader = byId<ReviewDoc>('Review', ReviewModel);
  const primeReviews = (pages: ReviewDoc[][]): ReviewDoc[][] => {
    for (const page of pages) for (const review of page) reviewLoader.prime(review._id.toHexString(), review);
    return pages;
  };
  return {
    // Not write-behind's record of the changes applied (models/write-behind.plugin.ts).
    user: byId<UserDoc>('User', UserModel, WRITE_BEHIND_BOOKKEEPING),
    // Not the review count bookkeeping (services/review-counts.ts): up to 200 ids, never shown.
    product: byId<ProductDoc>('Product', ProductModel, PRODUCT_BOOKKEEPING),
    review: reviewLoader,
    order: byId<OrderDoc>('Order', OrderModel),
    reviewsByProduct: new DataLoader(
      async (keys) => primeReviews(await reads.run(() => findChildren({ model: ReviewModel, foreignKey: 'product' }, keys))),
      { cacheKeyFn: childrenCacheKey },
    ),
    reviewsByAuthor: new DataLoader(
      async (keys) => primeReviews(await reads.run(() => findChildren({ model: ReviewModel, foreignKey: 'author' }, keys))),
      {
        cacheKeyFn: childrenCacheKey,
      },
    ),
    ordersByUser: new DataLoader((keys) => reads.run(() => findChildren({ model: OrderModel, foreignKey: 'user' }, keys)), {
      cacheKeyFn: childrenCacheKey,
    }),
    userReviewCount: new DataLoader(async (ids) => (await reads.run(() => countReviews('author', ids))).map((s) => s.count)),
    productPages: new DataLoader((queries) => Promise.all(queries.map((query) => reads.run(() => findProductPage(query)))), {
      cacheKeyFn: (query) => JSON.stringify([query.first, query.after, query.category]),
    }),
  };
}
