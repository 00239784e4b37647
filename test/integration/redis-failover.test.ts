import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { startRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.js';
import { until } from '../helpers/wait.js';

// A Redis Cluster of three masters with a replica each, and what a master's loss may not undo:
// an invalidation is delivered only once a replica has it (WAIT), so the replica promoted after
// a failover never serves what a returned mutation replaced.

let cluster: TestRedisCluster;
let t: TestApp;
beforeAll(async () => {
  cluster = await startRedisCluster({ replicas: 1 });
  t = await startTestApp({
    env: { REDIS_CLUSTER_NODES: cluster.nodes.join(','), CACHE_FLEET_LEASE_MS: '600' },
    seed: { users: 3, products: 12, reviews: 0, orders: 0 },
  });
});
afterAll(async () => {
  await t?.stop();
  await cluster?.stop();
});

const productId = (n: number): string => `5eed0001${String(n).padStart(16, '0')}`;

describe('invalidations acknowledged by a replica', () => {
  it('an invalidation whose replica does not acknowledge in time is not delivered: kept pending until it does', async () => {
    const key = t.app.cache.keys.entity('Product', productId(1));
    const master = await cluster.masterOf(key);
    const [replica] = await cluster.replicasOf(master);
    expect(replica).toBeDefined();
    await t.gql(`{ product(id: "${productId(1)}") { name } }`); // cached
    process.kill(cluster.pidOf(replica ?? ''), 'SIGSTOP');
    try {
      await t.app.cache.core.invalidate([key]);
      // Redis ran it, but the replica did not have it within CACHE_REPLICA_WAIT_MS: not delivered.
      expect(t.app.cache.core.invalidationPending(key)).toBe(true);
    } finally {
      process.kill(cluster.pidOf(replica ?? ''), 'SIGCONT');
    }
    await until(() => !t.app.cache.core.invalidationPending(key), { what: 'the invalidation delivered', timeoutMs: 10_000 });
  });

  it('a master with no replica left (its replica promoted, the old master dead) is not waited on', async () => {
    const key = t.app.cache.keys.entity('Product', productId(2));
    const master = await cluster.masterOf(key);
    await cluster.kill(master);
    const promoted = await cluster.failedOver(master, key);
    expect(await cluster.replicasOf(promoted)).toEqual([]);
    await until(
      async () => {
        await t.app.cache.core.invalidate([key]);
        return !t.app.cache.core.invalidationPending(key);
      },
      { what: 'an invalidation delivered to the promoted replica', timeoutMs: 15_000, intervalMs: 200 },
    );
    await cluster.restart(master);
    expect(await cluster.replicasOf(promoted)).toEqual([master]);
  });
});
