import { Cluster } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../../src/breaker.js';
import { CacheEvents } from '../../src/events.js';
import { createKeyspace } from '../../src/keys.js';
import { SILENT_LOGGER } from '../../src/logger.js';
import { createRedisClient, type RedisClient } from '../../src/redis-client.js';
import { RedisStore } from '../../src/redis-store.js';
import { CacheStats } from '../../src/stats.js';
import { ReplicaAckError, WriteBehindQueue, type WriteBehindQueueOptions } from '../../src/write-behind/queue.js';
import { startRedisCluster, type TestRedisCluster } from '../helpers/redis.js';

// Enqueues acknowledged by a replica (WriteBehindQueueOptions.replicaAcks) on a Cluster of three
// masters with a replica each: WAIT on the slot's master after each enqueue, counted in the
// masters' command statistics.

let cluster: TestRedisCluster;
let inspect: Cluster;
beforeAll(async () => {
  cluster = await startRedisCluster({ replicas: 1 });
  inspect = new Cluster(
    cluster.nodes.map((node) => ({ host: node.split(':')[0] ?? '127.0.0.1', port: Number(node.split(':')[1]) })),
    { redisOptions: { maxRetriesPerRequest: 1 } },
  );
}, 60_000);
afterAll(async () => {
  inspect?.disconnect();
  await cluster?.stop();
});

const clients: RedisClient[] = [];
const queues: WriteBehindQueue[] = [];
afterEach(() => {
  for (const q of queues.splice(0)) q.close();
  for (const client of clients.splice(0)) client.disconnect();
});

let run = 0;
async function queue(options: Partial<WriteBehindQueueOptions> = {}): Promise<WriteBehindQueue> {
  const keys = createKeyspace({ namespace: `wbrep${(run += 1)}` });
  const client = createRedisClient({ url: '', clusterNodes: cluster.nodes, logger: SILENT_LOGGER });
  clients.push(client);
  await client.connect();
  const events = new CacheEvents('test', new CacheStats());
  const store = new RedisStore({ client, breaker: new CircuitBreaker(), events, leaseSuffix: keys.lease('') });
  const q = new WriteBehindQueue({ store, keys, events, ...options });
  queues.push(q);
  return q;
}

/** WAIT commands the masters have run so far. */
async function waits(): Promise<number> {
  const infos = await Promise.all(inspect.nodes('master').map((node) => node.info('commandstats')));
  return infos.reduce((sum, info) => sum + Number(/cmdstat_wait:calls=(\d+)/.exec(info)?.[1] ?? 0), 0);
}

describe('write-behind enqueues acknowledged by a replica', () => {
  it('by default (auto) waits for one replica where the master has one, and the enqueue counts', async () => {
    const q = await queue();
    const before = await waits();
    for (let i = 0; i < 20; i += 1) expect(await q.enqueue('Product', `p${i}`, { inc: { views: 1 }, at: Date.now() })).toMatch(/^\d+-\d+$/);
    // One per enqueue, and one more per master the first time (its EVALSHA found no script: sent again as EVAL).
    expect((await waits()) - before).toBeGreaterThanOrEqual(20);
    expect((await waits()) - before).toBeLessThanOrEqual(23);
  });

  it('concurrent enqueues share their WAIT (one per node per turn of the event loop)', async () => {
    const q = await queue();
    await q.enqueue('Product', 'warm', { inc: { views: 1 }, at: Date.now() }); // its connection open
    const before = await waits();
    const entries = await Promise.all(
      Array.from({ length: 60 }, (_, i) => q.enqueue('Product', `c${i}`, { inc: { views: 1 }, at: Date.now() })),
    );
    expect(entries.every((entry) => entry !== null)).toBe(true);
    const sent = (await waits()) - before;
    expect(sent).toBeGreaterThanOrEqual(1);
    expect(sent).toBeLessThanOrEqual(6); // 3 masters, and again after a NOSCRIPT at most
  });

  it('with replicaAcks 0, sends no WAIT', async () => {
    const q = await queue({ replicaAcks: 0 });
    const before = await waits();
    await q.enqueue('Product', 'p1', { inc: { views: 1 }, at: Date.now() });
    expect((await waits()) - before).toBe(0);
  });

  it('asking for more replicas than acknowledge in time refuses the enqueue (the caller writes synchronously)', async () => {
    const q = await queue({ replicaAcks: 2, replicaWaitMs: 20 });
    const error = await q.enqueue('Product', 'p1', { inc: { views: 1 }, at: Date.now() }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReplicaAckError);
    expect(error).toMatchObject({ acks: 1, wanted: 2 });
  });
});
