import { fields } from '../caching/fields.js';
import { badInput } from '../errors.js';
import type { Resolvers } from '../generated/graphql.js';
import type { UserDoc } from '../models/user.model.js';
import { MAX_PAGE_SIZE, parseFirst, parseId } from '../services/validation.js';
import { hydrate, idOf } from './shared.js';

/** A deleted user is nobody to queries by id. */
const live = (user: UserDoc | null): UserDoc | null => (user && !user.deletedAt ? user : null);

/** Users: lookups, sign-up, profile changes, and the viewer-only fields. */
export const userResolvers: Resolvers = {
  Query: {
    user: async (_, { id }, ctx) => live(await ctx.loaders.user.load(parseId(id).toHexString())),
    users: async (_, { ids }, ctx) => {
      if (ids.length > MAX_PAGE_SIZE)
        throw badInput('ids', `ids: must have at most ${MAX_PAGE_SIZE} items (got ${ids.length})`, 'OUT_OF_RANGE');
      const hex = ids.map((id, index) => parseId(id, `ids.${index}`).toHexString());
      const users = await ctx.loaders.user.loadMany(hex);
      return users.map((user) => {
        if (user instanceof Error) throw user;
        return live(user);
      });
    },
  },
  Mutation: {
    createUser: (_, { input }, ctx) => ctx.services.users.create(ctx, input),
    updateUser: (_, { id, input }, ctx) => ctx.services.users.update(ctx, id, input),
    deleteUser: (_, { id }, ctx) => ctx.services.users.delete(ctx, id),
  },
  User: {
    id: idOf,
    email: async (user, _, ctx) => ((await ctx.viewer())?._id.equals(user._id) ? user.email : null),
    reviews: (user, { first }, ctx) => ctx.fields.load(fields.userReviews, user, { first: parseFirst(first, 10) }),
    reviewCount: (user, _, ctx) => ctx.fields.load(fields.userReviewCount, user, {}),
    orders: async (user, { first }, ctx) => {
      const args = { first: parseFirst(first, 10) };
      if (!(await ctx.viewer())?._id.equals(user._id)) return [];
      // PRIVATE: cached per viewer as well as per user.
      return hydrate(ctx.loaders.order, await ctx.fields.load(fields.userOrders, user, args));
    },
  },
};
