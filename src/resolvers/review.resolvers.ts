import type { Resolvers } from '../generated/graphql.js';
import { parseId } from '../services/validation.js';
import { idOf, required } from './shared.js';

/** Reviews and the entities they point at. */
export const reviewResolvers: Resolvers = {
  Query: {
    review: (_, { id }, ctx) => ctx.loaders.review.load(parseId(id).toHexString()),
  },
  Mutation: {
    createReview: (_, { input }, ctx) => ctx.services.reviews.create(ctx, input),
  },
  Review: {
    id: idOf,
    body: (review) => review.body ?? null,
    author: async (review, _, ctx) =>
      required(await ctx.loaders.user.load(review.author.toHexString()), `user ${review.author.toHexString()}`),
    product: async (review, _, ctx) =>
      required(await ctx.loaders.product.load(review.product.toHexString()), `product ${review.product.toHexString()}`),
  },
};
