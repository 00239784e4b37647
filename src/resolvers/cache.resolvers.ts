import { hitRate } from 'graphql-lease-cache';
import type { Resolvers } from '../generated/graphql.js';

/** Cache effectiveness since start. */
export const cacheResolvers: Resolvers = {
  Query: {
    cacheStats: (_, __, ctx) => {
      const byType = ctx.cache.stats.snapshot().map((c) => ({ ...c, hitRate: hitRate(c) }));
      const hits = byType.reduce((sum, c) => sum + c.hits, 0);
      const misses = byType.reduce((sum, c) => sum + c.misses, 0);
      return { hits, misses, hitRate: hitRate({ hits, misses }), byType };
    },
  },
};
