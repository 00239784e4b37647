import type { Resolvers } from '../generated/graphql.js';
import { parseId } from '../services/validation.js';
import { idOf, loadRequired } from './shared.js';

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
    author: (review, _, ctx) => loadRequired(ctx.loaders.user, 'user', review.author),
    product: (review, _, ctx) => loadRequired(ctx.loaders.product, 'product', review.product),
  },
};
