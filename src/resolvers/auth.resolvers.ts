import type { Resolvers } from '../generated/graphql.js';

/** Sessions: login, logout and the viewer. */
export const authResolvers: Resolvers = {
  Query: {
    viewer: (_, __, ctx) => ctx.viewer(),
  },
  Mutation: {
    login: (_, { email, password }, ctx) => ctx.services.auth.login(ctx, email, password),
    logout: (_, __, ctx) => ctx.services.auth.logout(ctx),
  },
};
