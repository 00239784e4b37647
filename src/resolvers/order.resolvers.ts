import type { Resolvers } from '../generated/graphql.js';
import { idOf, loadRequired } from './shared.js';

/** Orders: placement and their lines. A line's product resolves even after it was deleted. */
export const orderResolvers: Resolvers = {
  Mutation: {
    placeOrder: (_, { items }, ctx) => ctx.services.orders.place(ctx, items),
  },
  Order: {
    id: idOf,
    user: (order, _, ctx) => loadRequired(ctx.loaders.user, 'user', order.user),
  },
  OrderItem: {
    product: (item, _, ctx) => loadRequired(ctx.loaders.product, 'product', item.product),
  },
};
