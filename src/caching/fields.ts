import { defineField, type FieldDefinition } from 'graphql-lease-cache';
import type { Loaders } from '../loaders/index.js';
import type { ProductPageIds, ProductPageQuery } from '../loaders/product-pages.js';
import type { OrderDoc } from '../models/order.model.js';
import type { ProductDoc } from '../models/product.model.js';
import type { ReviewDoc } from '../models/review.model.js';
import type { UserDoc } from '../models/user.model.js';
import { productListId } from './tags.js';

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
 *
 * Each definition is also the field's typed handle, what resolvers and services load it with:
 * `ctx.fields.load(fields.productReviews, product, { first })` (a ReviewDoc[]). The schema
 * declares the fields by coordinate (`@cached` in schema/*.graphql); the field cache checks at
 * start-up that every one has a definition here and that each definition has a `@cached` field.
 */
export const fields = {
  // Review pages are stored whole, not as ids: a review never changes once written, and every
  // path that deletes one invalidates the `reviews` tags of its product and its author, so the
  // page is exactly as fresh as a page of ids, and a read saves a batch level and a key per review.
  /** Product.reviews: the product's newest reviews. */
  productReviews: defineField<ProductDoc, { first: number }, ReviewDoc[], Loaders>({
    coordinate: 'Product.reviews',
    ownerType: 'Product',
    owner: ownedBy('Product'),
    load: async (items, loaders) =>
      (await loaders.reviewsByProduct.loadMany(items.map((i) => ({ parentId: i.parent._id.toHexString(), first: i.args.first })))).map(
        (page) => unwrap<ReviewDoc[]>(page),
      ),
  }),
  /** User.reviewCount: how many reviews the user wrote. */
  userReviewCount: defineField<UserDoc, Record<string, never>, number, Loaders>({
    coordinate: 'User.reviewCount',
    ownerType: 'User',
    owner: ownedBy('User'),
    load: async (items, loaders) =>
      (await loaders.userReviewCount.loadMany(items.map((i) => i.parent._id.toHexString()))).map(unwrap<number>),
  }),
  /** User.reviews: the user's newest reviews. */
  userReviews: defineField<UserDoc, { first: number }, ReviewDoc[], Loaders>({
    coordinate: 'User.reviews',
    ownerType: 'User',
    owner: ownedBy('User'),
    load: async (items, loaders) =>
      (await loaders.reviewsByAuthor.loadMany(items.map((i) => ({ parentId: i.parent._id.toHexString(), first: i.args.first })))).map(
        (page) => unwrap<ReviewDoc[]>(page),
      ),
  }),
  /** User.orders: the ids of the user's newest orders (PRIVATE). */
  userOrders: defineField<UserDoc, { first: number }, string[], Loaders>({
    coordinate: 'User.orders',
    ownerType: 'User',
    owner: ownedBy('User'),
    load: async (items, loaders) =>
      (await loaders.ordersByUser.loadMany(items.map((i) => ({ parentId: i.parent._id.toHexString(), first: i.args.first })))).map((page) =>
        ids(unwrap<OrderDoc[]>(page)),
      ),
  }),
  /** Query.products: a catalog page, as ids, tagged with its product list. */
  products: defineField<null, ProductPageQuery, ProductPageIds, Loaders>({
    coordinate: 'Query.products',
    ownerType: 'ProductList',
    owner: (_, args) => ({ type: 'ProductList', id: productListId(args.category) }),
    // Pages of different arguments cannot share a query; a request rarely asks for two.
    load: async (items, loaders) => (await loaders.productPages.loadMany(items.map((item) => item.args))).map(unwrap<ProductPageIds>),
  }),
};

/** Every definition of {@link fields}: what the field cache is configured with. */
export const cachedFields: readonly FieldDefinition<never, never, unknown, Loaders>[] = Object.values(fields);

function unwrap<T>(value: T | Error): T {
  if (value instanceof Error) throw value;
  return value;
}
