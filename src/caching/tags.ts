import type { TagRef } from 'graphql-lease-cache';

/**
 * The tags the services invalidate, per owner type: `@cached(dependsOn:)` may name only these
 * (checked at start-up). A tag lives in its owner's Cluster slot, next to the values that depend on it.
 */
export const KNOWN_TAGS = {
  /** The product's reviews changed (a review was created, or deleted with the product). */
  Product: ['reviews'],
  /** The user's reviews or orders changed. */
  User: ['reviews', 'orders'],
  /** A product list (all products, or one category) gained, lost or reordered a member. */
  ProductList: ['catalog'],
} as const satisfies Record<string, readonly string[]>;

/**
 * Stored fields whose queued write-behind changes void only the whole responses that show them
 * (see docs/cache-protocol.md, The response cache), per entity type: stored field → the GraphQL fields of the type
 * that show it. A view of a product then leaves every catalog page that does not select
 * `viewCount` cached. A queued change of any other field voids every response that read the
 * entity, the safe default.
 */
export const RESPONSE_FIELDS = {
  // A flush sets updatedAt besides what the views added (services/write-behind-target.ts): the responses
  // that show it go then, and only those.
  Product: { viewCount: ['viewCount'], updatedAt: ['updatedAt'] },
} as const satisfies Record<string, Record<string, readonly string[]>>;

/** The id of a product list's slot: `_all`, or the base64url of the category (keys stay key-safe). */
export function productListId(category: string | null | undefined): string {
  return category == null ? '_all' : `c${Buffer.from(category).toString('base64url')}`;
}

/** What the services need of the field cache: dropping what depends on tags. */
export interface TagInvalidator {
  /** `holdMs`: after a write of unknown outcome (see CacheCore.invalidate). */
  invalidate(tags: readonly TagRef[], options?: { holdMs?: number }): Promise<void>;
}

/** Tag references, one function per tag. */
export const tags = {
  productReviews: (productId: string): TagRef => ({ type: 'Product', id: productId, tag: 'reviews' }),
  userReviews: (userId: string): TagRef => ({ type: 'User', id: userId, tag: 'reviews' }),
  userOrders: (userId: string): TagRef => ({ type: 'User', id: userId, tag: 'orders' }),
  /** The list of all products and the list of `category`: both change when a member comes or goes. */
  catalog: (category: string): TagRef[] => [
    { type: 'ProductList', id: productListId(null), tag: 'catalog' },
    { type: 'ProductList', id: productListId(category), tag: 'catalog' },
  ],
};
