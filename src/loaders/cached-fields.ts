import { defineField, type FieldDefinition } from '../cache/field-cache.js';
import type { OrderDoc } from '../models/order.model.js';
import type { ProductDoc } from '../models/product.model.js';
import type { ReviewDoc } from '../models/review.model.js';
import type { UserDoc } from '../models/user.model.js';
import { productListId } from '../services/cache-tags.js';
import type { Loaders } from './index.js';
import { findProductPage, type ProductPageIds, type ProductPageQuery } from './product-pages.js';

interface Identified {
  _id: { toHexString(): string };
}
const ownedBy =
  (type: string) =>
  (parent: Identified): { type: string; id: string } => ({ type, id: parent._id.toHexString() });
const ids = (docs: readonly Identified[]): string[] => docs.map((d) => d._id.toHexString());

/**
 * How each `@cached` field of the schema is computed on a miss, batched: the field cache calls
 * `load` once per batch with every missing item. Lists of mutable entities (orders, catalog
 * pages) are stored as ids and hydrated through the entity cache by the resolvers; review pages
 * are stored whole (see Product.reviews).
 */
export const cachedFields: readonly FieldDefinition<never, never, unknown, Loaders>[] = [
  // Review pages are stored whole, not as ids: a review never changes once written, and every
  // path that deletes one invalidates the `reviews` tags of its product and its author, so the
  // page is exactly as fresh as a page of ids, and a read saves a batch level and a key per review.
  defineField<ProductDoc, { first: number }, ReviewDoc[], Loaders>({
    coordinate: 'Product.reviews',
    ownerType: 'Product',
    owner: ownedBy('Product'),
    load: async (items, loaders) =>
      (await loaders.reviewsByProduct.loadMany(items.map((i) => ({ parentId: i.parent._id.toHexString(), first: i.args.first })))).map(
        (page) => unwrap<ReviewDoc[]>(page),
      ),
  }),
  defineField<UserDoc, unknown, number, Loaders>({
    coordinate: 'User.reviewCount',
    ownerType: 'User',
    owner: ownedBy('User'),
    load: async (items, loaders) =>
      (await loaders.userReviewCount.loadMany(items.map((i) => i.parent._id.toHexString()))).map(unwrap<number>),
  }),
  defineField<UserDoc, { first: number }, ReviewDoc[], Loaders>({
    coordinate: 'User.reviews',
    ownerType: 'User',
    owner: ownedBy('User'),
    load: async (items, loaders) =>
      (await loaders.reviewsByAuthor.loadMany(items.map((i) => ({ parentId: i.parent._id.toHexString(), first: i.args.first })))).map(
        (page) => unwrap<ReviewDoc[]>(page),
      ),
  }),
  defineField<UserDoc, { first: number }, string[], Loaders>({
    coordinate: 'User.orders',
    ownerType: 'User',
    owner: ownedBy('User'),
    load: async (items, loaders) =>
      (await loaders.ordersByUser.loadMany(items.map((i) => ({ parentId: i.parent._id.toHexString(), first: i.args.first })))).map((page) =>
        ids(unwrap<OrderDoc[]>(page)),
      ),
  }),
  defineField<null, ProductPageQuery, ProductPageIds, Loaders>({
    coordinate: 'Query.products',
    ownerType: 'ProductList',
    owner: (_, args) => ({ type: 'ProductList', id: productListId(args.category) }),
    // Pages of different arguments cannot share a query; a request rarely asks for two.
    load: (items) => Promise.all(items.map((item) => findProductPage(item.args))),
  }),
];

function unwrap<T>(value: T | Error): T {
  if (value instanceof Error) throw value;
  return value;
}
