import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../../src/breaker.js';
import { createKeyspace } from '../../src/keys.js';
import { CacheEvents } from '../../src/events.js';
import { CacheStats } from '../../src/stats.js';
import { createRedisClient } from '../../src/redis-client.js';
import { RedisStore } from '../../src/redis-store.js';
import { SILENT_LOGGER } from '../../src/logger.js';
import { describeLeaseStoreContract, FaultInjectingStore, type LeaseStoreUnderTest } from '../../src/testing/index.js';
import { startRedis, startRedisCluster, type TestRedis, type TestRedisCluster } from '../helpers/redis.js';

// The LeaseStore contract (src/testing/lease-store-contract.ts) run against the Redis store on a
// single Redis and on a three-node Redis Cluster (where each entity's value, lease, tags and
// queued changes share the entity's slot, and a batch spans slots), and against the
// fault-injecting store with no fault set, which must keep it too.

let single: TestRedis;
let cluster: TestRedisCluster;
beforeAll(async () => {
  [single, cluster] = await Promise.all([startRedis(), startRedisCluster()]);
});
afterAll(async () => {
  await Promise.all([single?.stop(), cluster?.stop()]);
});

const runner = { describe, it, expect, beforeAll, afterAll };
const keys = createKeyspace({ namespace: 'contract', version: 1 });

async function redisStore(backend: 'single' | 'cluster'): Promise<LeaseStoreUnderTest & { store: RedisStore }> {
  const client =
    backend === 'single'
      ? createRedisClient({ url: single.url, logger: SILENT_LOGGER })
      : createRedisClient({ url: '', clusterNodes: cluster.nodes, logger: SILENT_LOGGER });
  await client.connect();
  const store = new RedisStore({
    client,
    breaker: new CircuitBreaker(),
    events: new CacheEvents('test', new CacheStats()),
    leaseSuffix: keys.lease(''),
  });
  return {
    store,
    addPending: async (pendingKey, id, change) => void (await client.hset(pendingKey, id, change)),
    close: async () => client.disconnect(),
  };
}

describeLeaseStoreContract('LeaseStore contract: RedisStore on a single Redis', { runner, keys, create: () => redisStore('single') });
describeLeaseStoreContract('LeaseStore contract: RedisStore on a three-node Redis Cluster', {
  runner,
  keys,
  create: () => redisStore('cluster'),
});
describeLeaseStoreContract('LeaseStore contract: FaultInjectingStore with no fault, over RedisStore', {
  runner,
  keys,
  create: async () => {
    const redis = await redisStore('single');
    return { ...redis, store: new FaultInjectingStore(redis.store) };
  },
});
