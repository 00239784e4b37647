import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findByIds } from '../../src/loaders/batch.js';
import { ProductModel, UserModel } from '../../src/models/index.js';
import type { UserDoc } from '../../src/models/user.model.js';
import { USER_PASSWORD, startTestApp, type TestApp } from '../helpers/test-app.js';
import { startRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.js';
import { metricValue } from '../helpers/metrics.js';
import { gate, until } from '../helpers/wait.js';

let cluster: TestRedisCluster;
let t: TestApp;
beforeAll(async () => {
  cluster = await startRedisCluster();
  t = await startTestApp({
    env: { REDIS_CLUSTER_NODES: cluster.nodes.join(',') },
    seed: { users: 40, products: 60, reviews: 400, orders: 20 },
  });
});
afterAll(async () => {
  await t.stop();
  await cluster.stop();
});

const PAGE = '{ products(first: 20) { edges { node { id reviewCount averageRating reviews(first: 2) { author { name } } } } } }';

describe('on a Redis Cluster', () => {
  it('caches across slots: cold then warm with no MongoDB command, same data', async () => {
    const cold = await t.countMongoCommands(() => t.gql(PAGE));
    expect(cold.result.body.errors).toBeUndefined();
    await t.gql(PAGE);
    const warm = await t.countMongoCommands(() => t.gql(PAGE));
    expect(warm.result.body.data).toEqual(cold.result.body.data);
    expect(warm.commands).toBe(0);
    expect(warm.result.body.extensions?.cache?.misses).toBe(0);
    // the keys really are spread over the nodes
    const client = t.app.redis as Cluster;
    const perNode = await Promise.all(client.nodes('master').map((node) => node.dbsize()));
    expect(perNode.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
  });

  it('keeps an entity, its lease, its fields and its tags in one slot, so the scripts run', async () => {
    const token = await t.login('user3@example.com', USER_PASSWORD);
    const productId = '5eed00010000000000000003';
    const query = `{ product(id: "${productId}") { reviewCount } }`;
    const before = (await t.gql(query)).body.data?.product.reviewCount;
    await t.gql(`mutation { createReview(input: { productId: "${productId}", rating: 4 }) { id } }`, {}, token);
    expect((await t.gql(query)).body.data?.product.reviewCount).toBe(before + 1);
  });

  it('a reader paused between its MongoDB read and its fill cannot store what a writer replaced', async () => {
    const id = '5eed00000000000000000004';
    const users = t.app.cache.entity<UserDoc>('User');
    await users.invalidate([id]);
    const paused = gate();
    const reader = users.getMany([id], async (ids) => {
      const docs = await findByIds(UserModel, ids);
      await paused.pass();
      return docs;
    });
    await paused.reached;
    await UserModel.updateOne({ _id: id }, { $set: { name: 'Cluster writer' } });
    await users.invalidate([id]);
    paused.open();
    await reader;
    expect(await t.app.redis?.exists(t.app.cache.keys.entity('User', id))).toBe(0);
    expect((await t.gql(`{ user(id: "${id}") { name } }`)).body.data?.user.name).toBe('Cluster writer');
  });

  it("writes write-behind mutations behind, into the stream of the entity's slot; reads show them at once", async () => {
    expect(t.app.cache.writeBehind.available).toBe(true);
    const id = '5eed00010000000000000001';
    await t.gql(`{ product(id: "${id}") { viewCount } }`); // cached
    const stored = async (): Promise<number> => (await ProductModel.findById(id).lean<{ viewCount: number }>().exec())?.viewCount ?? 0;
    const before = await stored();
    const res = await t.gql('mutation($id: ID!) { recordProductView(id: $id) { viewCount } }', { id });
    expect(res.body.data?.recordProductView.viewCount).toBe(before + 1);
    expect(await metricValue(t, 'write_behind_enqueued_total', { type: 'Product' })).toBe(1);
    expect(await metricValue(t, 'write_behind_fallbacks_total', { type: 'Product' })).toBe(0);
    expect((await t.gql(`{ product(id: "${id}") { viewCount } }`)).body.data?.product.viewCount).toBe(before + 1);
    await until(async () => (await stored()) === before + 1, { what: 'the worker to apply the view' });
    expect((await t.gql(`{ product(id: "${id}") { viewCount } }`)).body.data?.product.viewCount).toBe(before + 1);
  });
});
