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
    reviews: (product, { first }, ctx) => ctx.loaders.reviewsByProduct.load({ parentId: idOf(product), first: parseFirst(first, 10) }),
    reviewCount: async (product, _, ctx) => (await ctx.loaders.productReviewStats.load(idOf(product))).count,
    averageRating: async (product, _, ctx) => {
      const stats = await ctx.loaders.productReviewStats.load(idOf(product));
      return stats.count === 0 ? null : stats.ratingSum / stats.count;
    },
  },
};
