import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../../src/breaker.js';
import { createKeyspace } from '../../src/keys.js';
import { CacheEvents } from '../../src/events.js';
import { CacheStats } from '../../src/stats.js';
import { RedisStore } from '../../src/redis-store.js';
import { ResponseStore } from '../../src/response-store.js';
import { startRedis, startRedisCluster, type TestRedis, type TestRedisCluster } from '../helpers/redis.js';
import { sleep } from '../helpers/redis.js';

// The response store's protocol (packages/graphql-lease-cache/src/response-store.ts) on one Redis and on a three-node
// Cluster: a response is served only while nothing it depends on was invalidated after its
// computation began, and a computation that overlapped such an invalidation is never stored.

let single: TestRedis;
let cluster: TestRedisCluster;
beforeAll(async () => {
  [single, cluster] = await Promise.all([startRedis(), startRedisCluster()]);
});
afterAll(async () => {
  await Promise.all([single.stop(), cluster.stop()]);
});

let namespaces = 0;
function responseStore(client: Redis | Cluster, shards: number): ResponseStore {
  namespaces += 1;
  const keys = createKeyspace({ namespace: `resp${namespaces}` });
  const store = new RedisStore({
    client,
    breaker: new CircuitBreaker({ failureThreshold: 5 }),
    events: new CacheEvents('test', new CacheStats()),
    leaseSuffix: keys.lease(''),
  });
  return new ResponseStore({ store, keys, shards, buckets: 16_384 });
}

/** Two dependencies in different buckets. */
function twoBuckets(responses: ResponseStore): [string, string] {
  const a = '{Product:1}';
  let i = 2;
  while (responses.bucketOf(`{Product:${i}}`) === responses.bucketOf(a)) i += 1;
  return [a, `{Product:${i}}`];
}

for (const setup of ['one Redis', 'a three-node Cluster'] as const) {
  describe(`response store on ${setup}`, () => {
    let client: Redis | Cluster;
    let responses: ResponseStore;
    beforeAll(async () => {
      client =
        setup === 'one Redis'
          ? new Redis(single.url, { maxRetriesPerRequest: 1 })
          : new Cluster(cluster.nodes.map((node) => ({ host: node.split(':')[0], port: Number(node.split(':')[1]) })));
      // Several shards on the Cluster, so that responses and their shards spread over the nodes.
      responses = responseStore(client, setup === 'one Redis' ? 1 : 6);
    });
    afterAll(() => client.disconnect());

    const miss = async (hash: string) => {
      const found = await responses.lookup(hash);
      if (found.kind !== 'miss') throw new Error(`expected a miss for ${hash}`);
      return found.ticket;
    };

    it('a stored response is served until a dependency of it is invalidated, then deleted', async () => {
      const [dep, other] = twoBuckets(responses);
      const ticket = await miss('h1');
      expect(await responses.store(ticket, [dep, '{ProductList:_all}:t:catalog'], '{"data":1}', 60_000)).toBe(true);
      expect(await responses.lookup('h1')).toEqual({ kind: 'hit', body: Buffer.from('{"data":1}'), l1: false });
      await responses.invalidate([other]); // not a dependency: still served
      expect((await responses.lookup('h1')).kind).toBe('hit');
      await responses.invalidate([dep]);
      expect((await responses.lookup('h1')).kind).toBe('miss');
      // ...and deleted: a new computation stores afresh
      const again = await miss('h1');
      expect(await responses.store(again, [dep], '{"data":2}', 60_000)).toBe(true);
      expect(await responses.lookup('h1')).toEqual({ kind: 'hit', body: Buffer.from('{"data":2}'), l1: false });
    });

    it('a computation that overlapped an invalidation of what it read is not stored (the race, forced)', async () => {
      const [dep] = twoBuckets(responses);
      const ticket = await miss('h2'); // the computation begins, reads dep...
      await responses.invalidate([dep]); // ...a write commits, invalidates and returns...
      expect(await responses.store(ticket, [dep], '{"old":true}', 60_000)).toBe(false); // ...then it ends
      expect((await responses.lookup('h2')).kind).toBe('miss');
    });

    it('an invalidation that came before the computation began does not void it; one of another bucket never does', async () => {
      const [dep, other] = twoBuckets(responses);
      await responses.invalidate([dep]);
      const ticket = await miss('h3');
      await responses.invalidate([other]);
      expect(await responses.store(ticket, [dep], '{"fresh":true}', 60_000)).toBe(true);
      expect((await responses.lookup('h3')).kind).toBe('hit');
    });

    it('a lost shard hash (eviction, flush) voids its responses and the computations under way', async () => {
      const [dep] = twoBuckets(responses);
      const ticket = await miss('h4');
      expect(await responses.store(ticket, [dep], '{"v":1}', 60_000)).toBe(true);
      const shardKeys = (await allKeys(client)).filter((key) => /\{resp:\d+\}$/.test(key) && key.startsWith(`resp${namespaces}:`));
      expect(shardKeys.length).toBeGreaterThan(0);
      const pending = await miss('h5');
      for (const key of shardKeys) await client.del(key);
      expect((await responses.lookup('h4')).kind).toBe('miss');
      expect(await responses.store(pending, [dep], '{"v":2}', 60_000)).toBe(false);
    });

    it('expires with its TTL; responses with no dependency are served until then', async () => {
      const ticket = await miss('h6');
      expect(await responses.store(ticket, [], '{"static":true}', 150)).toBe(true);
      expect((await responses.lookup('h6')).kind).toBe('hit');
      await sleep(300);
      expect((await responses.lookup('h6')).kind).toBe('miss');
    });
  });
}

async function allKeys(client: Redis | Cluster): Promise<string[]> {
  const nodes = client instanceof Cluster ? client.nodes('master') : [client];
  const keys: string[] = [];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, found] = await node.scan(cursor, 'MATCH', 'resp*', 'COUNT', 1_000);
      keys.push(...found);
      cursor = next;
    } while (cursor !== '0');
  }
  return keys;
}
