import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProductModel } from '../../src/models/index.js';
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

/** A connection to one node (`host:port`), reading on a replica too. */
async function nodeClient(address: string): Promise<Redis> {
  const [host, port] = address.split(':');
  const client = new Redis(Number(port), host ?? '127.0.0.1', { maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  await client.call('READONLY');
  return client;
}

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

  it('an invalidation sent while the replica has lost its link is redelivered after the failover: the replaced value never comes back (a DEL without WAIT is lost)', async () => {
    const id = productId(3);
    const key = t.app.cache.keys.entity('Product', id);
    const read = async () => (await t.gql(`{ product(id: "${id}") { name } }`)).body.data?.product.name as string;
    const before = await read(); // cached
    const master = await cluster.masterOf(key);
    const [replicaAddress] = await cluster.replicasOf(master);
    const [primary, replica] = await Promise.all([nodeClient(master), nodeClient(replicaAddress ?? '')]);
    // A key of the test's own in the same slot, deleted without WAIT: what a failover loses.
    const bare = `${key}:bare`;
    await primary.set(bare, 'old');
    await until(async () => (await replica.exists(key, bare)) === 2, { what: 'the replica has both keys' });
    await ProductModel.updateOne({ _id: id }, { $set: { name: 'after the failover' } });
    // The replica's link cut, and kept down: its reconnection is refused (a password it does not
    // have; connections already open stay authenticated).
    await primary.config('SET', 'requirepass', 'failover-test');
    await primary.call('CLIENT', 'KILL', 'TYPE', 'replica');
    await primary.del(bare);
    await t.app.cache.core.invalidate([key]);
    // Redis ran it, but no replica has it: not delivered (pending, and the write was fenced).
    expect(t.app.cache.core.invalidationPending(key)).toBe(true);
    await cluster.kill(master);
    primary.disconnect();
    await cluster.failedOver(master, key);
    const lost = (await replica.exists(bare)) === 1;
    replica.disconnect();
    expect(lost).toBe(true); // what the invalidation would have been without WAIT
    expect(before).not.toBe('after the failover');
    // The first read after the failover, and every one after it: still pending here, so bypassed
    // until redelivered to the promoted replica (without WAIT the promoted replica serves `before`).
    for (let i = 0; i < 20; i += 1) expect(await read()).toBe('after the failover');
    await until(() => !t.app.cache.core.invalidationPending(key), { what: 'the invalidation redelivered', timeoutMs: 15_000 });
    expect(await read()).toBe('after the failover');
    await cluster.restart(master);
  });
});
