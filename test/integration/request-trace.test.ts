import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricValue, metricsText } from '../helpers/metrics.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

// REQUEST_TRACE=writes (production's default): a read runs without AsyncLocalStorage, and the
// cache still counts its hits and Redis round trips exactly, through the trace it is handed.

let t: TestApp;
beforeAll(async () => {
  // Counts the entity path's work (the whole-response layer would answer repeats).
  t = await startTestApp({
    env: { REQUEST_TRACE: 'writes', CACHE_RESPONSES: 'false' },
    seed: { users: 10, products: 10, reviews: 30, orders: 0 },
  });
});
afterAll(() => t.stop());

const histogram = async (): Promise<{ mongo: number; requests: number }> => {
  const text = await metricsText(`${t.url}/metrics`);
  return {
    mongo: await metricValue(text, 'graphql_request_mongodb_commands_count'),
    requests: await metricValue(text, 'graphql_request_redis_round_trips_count'),
  };
};

describe('REQUEST_TRACE=writes', () => {
  it('a read counts its cache work exactly without AsyncLocalStorage; a mutation counts its MongoDB commands too', async () => {
    const query = '{ products(first: 5) { edges { node { id reviewCount reviews(first: 2) { author { name } } } } } }';
    await t.gql(query); // cached now
    const before = await histogram();
    const warm = await t.gql(query);
    expect(warm.body.errors).toBeUndefined();
    // page ids, products, review pages, authors; MongoDB not counted for an untraced request
    expect(warm.body.extensions?.cache).toMatchObject({ misses: 0, redisRoundTrips: 4, mongoCommands: null });
    expect(warm.body.extensions?.cache?.hits).toBeGreaterThan(10);
    const id = warm.body.data?.products.edges[0].node.id;
    const viewed = await t.gql(`mutation { recordProductView(id: "${id}") { viewCount } }`);
    expect(viewed.body.errors).toBeUndefined();
    expect(typeof viewed.body.extensions?.cache?.mongoCommands).toBe('number');
    const after = await histogram();
    // Both requests observed for Redis; only the mutation for MongoDB.
    expect(after.requests - before.requests).toBe(2);
    expect(after.mongo - before.mongo).toBe(1);
  });
});
