import { describe, expect, it } from 'vitest';
import { ProductModel } from '../../src/models/index.js';
import { metricValue, metricsText } from '../helpers/metrics.js';
import { storedValue } from '../helpers/stored.js';
import { ADMIN } from '../helpers/test-app.js';
import { usePrivateRedisApp } from '../helpers/private-redis-app.js';

// No write-behind worker here: its polling would add to the Redis calls these tests count; and
// no whole-response layer: it would answer the repeats whose entity and field work they count.
// A generous Redis command timeout: on a loaded machine 250 ms is exceeded, every read then
// falls back to MongoDB (fail-open, tested in redis-failure), and the counts here are about
// the cache answering.
const { redis, t } = usePrivateRedisApp({
  env: { WRITE_BEHIND_WORKER: 'false', CACHE_RESPONSES: 'false', REDIS_COMMAND_TIMEOUT_MS: '5000' },
  seed: { users: 60, products: 120, reviews: 900, orders: 0 },
});

/** MongoDB commands, Redis script calls (counted by Redis itself), and the response. */
async function measure(query: string, variables?: Record<string, unknown>) {
  await redis.resetStats();
  const { result, commands } = await t.countMongoCommands(() => t.gql(query, variables));
  expect(result.body.errors).toBeUndefined();
  return { res: result, mongo: commands, redis: await redis.scriptCalls(), trace: result.body.extensions?.cache };
}

const userId = (n: number) => `5eed0000${n.toString(16).padStart(16, '0')}`;

describe('entity cache behind the DataLoaders', () => {
  it('users(ids: [50 ids]): cold one MongoDB command and two Redis round trips, warm none and one', async () => {
    const ids = Array.from({ length: 50 }, (_, i) => userId(i + 1));
    const query = 'query($ids: [ID!]!) { users(ids: $ids) { id name } }';
    const cold = await measure(query, { ids });
    expect(cold.res.body.data?.users.map((u: { id: string }) => u.id)).toEqual(ids);
    expect({ mongo: cold.mongo, redis: cold.redis }).toEqual({ mongo: 1, redis: 2 });
    expect(cold.trace).toMatchObject({ hits: 0, misses: 50, mongoCommands: 1, redisRoundTrips: 2 });

    const warm = await measure(query, { ids });
    expect(warm.res.body.data).toEqual(cold.res.body.data);
    expect({ mongo: warm.mongo, redis: warm.redis }).toEqual({ mongo: 0, redis: 1 });
    expect(warm.trace).toMatchObject({ hits: 50, misses: 0, redisRoundTrips: 1 });
  });

  it('the nested catalog query: no MongoDB command when warm, one Redis round trip per batch level', async () => {
    const query = '{ products(first: 50) { edges { node { id reviews(first: 3) { author { name } } } } } }';
    const cold = await measure(query);
    // MongoDB: page ids, the 50 products, their reviews, the authors. Redis: get-or-lease + fill
    // for each of the page, the products, the review pages and the authors.
    expect({ mongo: cold.mongo, redis: cold.redis }).toEqual({ mongo: 4, redis: 8 });
    // Review pages hold the reviews themselves (a review never changes; deleting one
    // invalidates its pages), so the next request is warm at once.
    const warm = await measure(query);
    expect(warm.res.body.data).toEqual(cold.res.body.data);
    // page ids, products, review pages, authors: one round trip each
    expect({ mongo: warm.mongo, redis: warm.redis }).toEqual({ mongo: 0, redis: 4 });
  });

  it('caches absent ids for the negative TTL only (kept the grace longer, for an outage)', async () => {
    const missing = 'cccccccccccccccccccccccc';
    const query = `{ user(id: "${missing}") { id } }`;
    expect((await measure(query)).mongo).toBe(1);
    const again = await measure(query);
    expect(again.res.body.data?.user).toBeNull();
    expect(again.mongo).toBe(0);
    const ttl = await redis.client.pttl(t.app.cache.keys.entity('User', missing));
    expect(ttl).toBeGreaterThan(t.config.cache.graceMs);
    expect(ttl).toBeLessThanOrEqual(t.config.cache.negativeTtlMs * 1.1 + t.config.cache.graceMs);
  });

  it('gives filled keys the type TTL with ±10% jitter (plus the grace, kept for an outage)', async () => {
    const ids = Array.from({ length: 30 }, (_, i) => userId(i + 1));
    await measure('query($ids: [ID!]!) { users(ids: $ids) { id } }', { ids });
    const { graceMs } = t.config.cache;
    const ttls = (await Promise.all(ids.map((id) => redis.client.pttl(t.app.cache.keys.entity('User', id))))).map((ttl) => ttl - graceMs);
    const ttlMs = t.config.cache.ttlMs;
    for (const ttl of ttls) {
      expect(ttl).toBeGreaterThan(ttlMs * 0.9 - 60_000); // a minute of slack for the earlier test's fill
      expect(ttl).toBeLessThanOrEqual(ttlMs * 1.1);
    }
    expect(new Set(ttls).size).toBeGreaterThan(1); // jittered, not all equal
  });

  it('compresses a large document and reads it back exactly', async () => {
    const admin = await t.login(ADMIN.email, ADMIN.password);
    const description = 'A very long description. '.repeat(200);
    const created = await t.gql(
      'mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }',
      { input: { name: 'Big', description, priceCents: 1, category: 'books', stock: 1 } },
      admin,
    );
    const id = created.body.data?.createProduct.id;
    const payload = (await storedValue(redis.client, t.app.cache.keys.entity('Product', id)))?.payload ?? undefined;
    expect(String.fromCharCode(payload?.[0] ?? 0)).toBe('g');
    expect(payload?.length).toBeLessThan(description.length / 5);
    const read = await measure(`{ product(id: "${id}") { description createdAt } }`);
    expect(read.mongo).toBe(0);
    const doc = await ProductModel.findById(id).lean().exec();
    expect(read.res.body.data?.product).toEqual({ description, createdAt: doc?.createdAt.toISOString() });
  });

  it('200 concurrent cold reads of one id make one MongoDB read', async () => {
    const id = userId(55);
    await redis.client.del(t.app.cache.keys.entity('User', id)); // cold, whatever ran before
    const { result, commands } = await t.countMongoCommands(() =>
      Promise.all(Array.from({ length: 200 }, () => t.gql(`{ user(id: "${id}") { id name } }`))),
    );
    expect(new Set(result.map((r) => JSON.stringify(r.body.data))).size).toBe(1);
    expect(commands).toBe(1);
  });

  it('reports hit rates per type in cacheStats and the metrics', async () => {
    const stats = (await t.gql('{ cacheStats { hits misses hitRate byType { name hits misses hitRate } } }')).body.data?.cacheStats;
    const user = stats.byType.find((b: { name: string }) => b.name === 'User');
    expect(user.hits).toBeGreaterThan(0);
    expect(user.misses).toBeGreaterThan(0);
    expect(user.hitRate).toBeCloseTo(user.hits / (user.hits + user.misses));
    const metrics = await metricsText(`${t.url}/metrics`);
    expect(await metricValue(metrics, 'cache_hits_total', { name: 'User' })).toBe(user.hits);
    expect(await metricValue(metrics, 'cache_absent_hits_total', { name: 'User' })).toBeGreaterThan(0);
    expect(await metricValue(metrics, 'cache_redis_duration_seconds_count', { op: 'get' })).toBeGreaterThan(0);
  });
});
