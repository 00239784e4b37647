import { fields } from '../caching/fields.js';
import type { Resolvers } from '../generated/graphql.js';
import { parseFirst } from '../services/validation.js';
import { idOf } from './shared.js';

/** The catalog: products, pages, admin writes, view counts and review aggregates. */
export const productResolvers: Resolvers = {
  Query: {
    product: (_, { id }, ctx) => ctx.services.products.find(ctx, id),
    products: (_, args, ctx) => ctx.services.products.page(ctx, args),
  },
  Mutation: {
    createProduct: (_, { input }, ctx) => ctx.services.products.create(ctx, input),
    updateProduct: (_, { id, input }, ctx) => ctx.services.products.update(ctx, id, input),
    deleteProduct: (_, { id }, ctx) => ctx.services.products.delete(ctx, id),
    recordProductView: (_, { id }, ctx) => ctx.services.products.recordView(ctx, id),
  },
  Product: {
    id: idOf,
    description: (product) => product.description ?? null,
    reviews: (product, { first }, ctx) => ctx.fields.load(fields.productReviews, product, { first: parseFirst(first, 10) }),
    // Kept on the product by the review writes (services/review-counts.ts).
    reviewCount: (product) => product.reviewCount ?? 0,
    averageRating: (product) => (product.reviewCount ? (product.ratingSum ?? 0) / product.reviewCount : null),
  },
};
