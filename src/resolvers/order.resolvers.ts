import type { Resolvers } from '../generated/graphql.js';
import { idOf, required } from './shared.js';

/** Orders: placement and their lines. A line's product resolves even after it was deleted. */
export const orderResolvers: Resolvers = {
  Mutation: {
    placeOrder: (_, { items }, ctx) => ctx.services.orders.place(ctx, items),
  },
  Order: {
    id: idOf,
    user: async (order, _, ctx) => required(await ctx.loaders.user.load(order.user.toHexString()), `user ${order.user.toHexString()}`),
  },
  OrderItem: {
    product: async (item, _, ctx) =>
      required(await ctx.loaders.product.load(item.product.toHexString()), `product ${item.product.toHexString()}`),
  },
};
