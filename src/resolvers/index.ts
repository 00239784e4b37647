import { mergeResolvers } from '@graphql-tools/merge';
import type { Resolvers } from '../generated/graphql.js';
import { authResolvers } from './auth.resolvers.js';
import { cacheResolvers } from './cache.resolvers.js';
import { orderResolvers } from './order.resolvers.js';
import { productResolvers } from './product.resolvers.js';
import { reviewResolvers } from './review.resolvers.js';
import { scalarResolvers } from './scalars.js';
import { userResolvers } from './user.resolvers.js';

/** Every resolver, one file per domain, merged. */
export const resolvers: Resolvers = mergeResolvers([
  scalarResolvers,
  userResolvers,
  productResolvers,
  reviewResolvers,
  orderResolvers,
  authResolvers,
  cacheResolvers,
]) as Resolvers;
