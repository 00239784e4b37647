import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../../src/breaker.js';
import { CacheEvents } from '../../src/events.js';
import { createKeyspace, type Keyspace } from '../../src/keys.js';
import { SILENT_LOGGER } from '../../src/logger.js';
import { createRedisClient, type RedisClient } from '../../src/redis-client.js';
import { RedisStore } from '../../src/redis-store.js';
import { CacheStats } from '../../src/stats.js';
import { InMemorySource, InMemoryWriteTarget, type WritableDocument } from '../../src/testing/index.js';
import { WriteBehindQueue, WriteBehindWorker, type WriteBehindWorkerOptions } from '../../src/write-behind/index.js';
import { ReplicaAckError } from '../../src/write-behind/queue.js';
import { Cluster, Redis } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import { moveSlot, startRedis, startRedisCluster, type TestRedis, type TestRedisCluster } from '../helpers/redis.js';
import { until } from '../helpers/wait.js';

// The write-behind worker (src/write-behind/worker.ts) on a real Redis, applying to the
// in-memory target: each queued change in once, a crash between the write and the
// acknowledgement replayed without applying twice, a change the target keeps refusing
// dead-lettered after its tries. Each test runs on one Redis and on a three-node Cluster (a
// stream per slot: the entity's).

let redis: TestRedis;
let cluster: TestRedisCluster;
let clusterClient: Cluster;
beforeAll(async () => {
  [redis, cluster] = await Promise.all([startRedis(), startRedisCluster()]);
  clusterClient = new Cluster(cluster.nodes.map(hostPort), { redisOptions: { maxRetriesPerRequest: 1 } });
});
afterAll(async () => {
  clusterClient?.disconnect();
  await Promise.all([redis?.stop(), cluster?.stop()]);
});

function hostPort(node: string): { host: string; port: number } {
  const [host = '127.0.0.1', port = '0'] = node.split(':');
  return { host, port: Number(port) };
}

type Backend = 'redis' | 'cluster';

let run = 0;
const clients: RedisClient[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.disconnect();
});

interface Setup {
  backend: Backend;
  /** A client to look at what Redis holds. */
  inspect: Redis | Cluster;
  keys: Keyspace;
  store: RedisStore;
  queue: WriteBehindQueue;
  source: InMemorySource<WritableDocument>;
  target: InMemoryWriteTarget;
  worker(options?: Partial<WriteBehindWorkerOptions>): WriteBehindWorker;
}

/** A namespace of its own (its own stream), one product with 10 views, a queue and workers on one client. */
async function setup(backend: Backend): Promise<Setup> {
  const keys = createKeyspace({ namespace: `wb${(run += 1)}`, version: 1 });
  const client = createRedisClient({
    url: redis.url,
    ...(backend === 'cluster' ? { clusterNodes: cluster.nodes } : {}),
    logger: SILENT_LOGGER,
  });
  clients.push(client);
  await client.connect();
  const events = new CacheEvents('test', new CacheStats());
  const store = new RedisStore({ client, breaker: new CircuitBreaker(), events, leaseSuffix: keys.lease('') });
  const source = new InMemorySource<WritableDocument>({ p1: { version: 1, name: 'Lamp', views: 10 } });
  const target = new InMemoryWriteTarget({ source, fields: { set: ['name'], inc: ['views'] } });
  return {
    backend,
    inspect: backend === 'cluster' ? clusterClient : redis.client,
    keys,
    store,
    queue: new WriteBehindQueue({ store, keys, events }),
    source,
    target,
    worker: (options = {}) =>
      new WriteBehindWorker({ store, keys, targets: { Product: target }, logger: SILENT_LOGGER, retryMs: 1, ...options }),
  };
}

/** The queue of entity `Product:id`: the stream (on a Cluster, its slot's) and the dead letters. */
function queueOf(s: Setup, id = 'p1'): { stream: string; dead: string } {
  return s.backend === 'cluster' ? s.keys.writeQueue.ofEntity('Product', id) : s.keys.writeQueue;
}

/** The stream's length and the entity's queued changes, as Redis has them. */
async function queued(s: Setup, id = 'p1'): Promise<{ stream: number; hash: number }> {
  return {
    stream: await s.inspect.xlen(queueOf(s, id).stream),
    hash: await s.inspect.hlen(s.keys.pending('Product', id)),
  };
}

/** A stream entry's fields (`[name, value, name, value, …]`) by name. */
function fieldsOf(flat: readonly string[]): Record<string, string> {
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i] as string] = flat[i + 1] as string;
  return fields;
}

describe.each(['redis', 'cluster'] as const)('the write-behind worker (%s)', (backend) => {
  it('applies the queued changes of an entity once, folded into one guarded write, and acknowledges them', async () => {
    const s = await setup(backend);
    await s.queue.enqueue('Product', 'p1', { inc: { views: 1 }, at: Date.now() });
    await s.queue.enqueue('Product', 'p1', { inc: { views: 2 }, set: { name: 'Desk lamp' }, at: Date.now() });
    expect(await queued(s)).toEqual({ stream: 2, hash: 2 });
    const worker = s.worker();
    expect(await worker.runOnce()).toMatchObject({ read: 2, flushed: 2, failed: 0, dead: 0 });
    expect(s.source.get('p1')).toMatchObject({ version: 2, name: 'Desk lamp', views: 13 });
    expect(s.target.written).toHaveLength(1);
    expect(await queued(s)).toEqual({ stream: 0, hash: 0 });
    expect(await worker.runOnce()).toMatchObject({ read: 0, flushed: 0 });
    expect(s.source.get('p1')).toMatchObject({ version: 2, views: 13 });
    await worker.stop();
  });

  it('replays a batch whose write landed but was not acknowledged (a crash) without applying it twice', async () => {
    const s = await setup(backend);
    await s.queue.enqueue('Product', 'p1', { inc: { views: 5 }, at: Date.now() });
    const crashing = s.worker({
      leaderTtlMs: 200,
      afterWrite: () => Promise.reject(new Error('crashed after the write, before the acknowledgement')),
    });
    await expect(crashing.runOnce()).rejects.toThrow(/crashed/);
    expect(s.source.get('p1')).toMatchObject({ version: 2, views: 15 });
    expect(await queued(s)).toEqual({ stream: 1, hash: 1 }); // not acknowledged
    // Another worker takes over once the crashed one's leader lease has expired.
    const next = s.worker({ leaderTtlMs: 200 });
    let flushed = 0;
    await until(async () => (flushed += (await next.runOnce()).flushed) > 0, { what: 'the next worker to settle the entry' });
    expect(flushed).toBe(1);
    expect(s.source.get('p1')).toMatchObject({ version: 2, views: 15 });
    expect(s.target.written).toHaveLength(1);
    expect(await queued(s)).toEqual({ stream: 0, hash: 0 });
    await next.stop();
  });

  it('dead-letters a change the target keeps failing after maxTries, and goes on with the others', async () => {
    const s = await setup(backend);
    s.source.put('p2', { version: 1, name: 'Chair', views: 0 });
    s.target.failWith('p1', 'the database refused the change');
    await s.queue.enqueue('Product', 'p1', { inc: { views: 1 }, at: Date.now() });
    await s.queue.enqueue('Product', 'p2', { inc: { views: 1 }, at: Date.now() });
    const worker = s.worker({ maxTries: 3 });
    let dead = 0;
    let runs = 0;
    await until(
      async () => {
        runs += 1;
        dead += (await worker.runOnce()).dead;
        return dead > 0;
      },
      { what: 'the failing change to be dead-lettered' },
    );
    expect(dead).toBe(1);
    expect(s.target.attempts.get('p1')).toBe(3);
    expect(s.source.get('p1')).toMatchObject({ version: 1, views: 10 });
    expect(s.source.get('p2')).toMatchObject({ version: 2, views: 1 }); // not held back by p1
    expect(await queued(s)).toEqual({ stream: 0, hash: 0 });
    const letters = await s.inspect.xrange(queueOf(s).dead, '-', '+');
    expect(letters.map(([, fields]) => fieldsOf(fields))).toMatchObject([
      { t: 'Product', i: 'p1', error: 'the database refused the change (after 3 tries)' },
    ]);
    expect(runs).toBeGreaterThanOrEqual(3);
    await worker.stop();
  });

  it('does not write over a synchronous write that raced it (a conflict), and applies what still holds on the next batch', async () => {
    const s = await setup(backend);
    const queuedAt = Date.now();
    await s.queue.enqueue('Product', 'p1', { set: { name: 'Queued name' }, inc: { views: 1 }, at: queuedAt });
    let raced = false;
    const worker = s.worker({
      // Between the worker's load and its write: a synchronous write of the same field, later.
      beforeWrite: async () => {
        if (raced) return;
        raced = true;
        s.source.update('p1', { name: 'Written name', wbAt: { name: queuedAt + 1 } });
      },
    });
    expect(await worker.runOnce()).toMatchObject({ read: 1, conflicts: 1, flushed: 0 });
    expect(s.source.get('p1')).toMatchObject({ version: 2, name: 'Written name', views: 10 });
    let flushed = 0;
    await until(async () => (flushed += (await worker.runOnce()).flushed) > 0, { what: 'the next batch to settle the entry' });
    // The queued name is older than the synchronous write's: dropped; the counter still adds.
    expect(s.source.get('p1')).toMatchObject({ version: 3, name: 'Written name', views: 11 });
    expect(await queued(s)).toEqual({ stream: 0, hash: 0 });
    await worker.stop();
  });

  it('dead-letters at once a change its target refuses (a field it cannot write)', async () => {
    const s = await setup(backend);
    await s.queue.enqueue('Product', 'p1', { set: { price: 3 }, at: Date.now() });
    const worker = s.worker();
    expect(await worker.runOnce()).toMatchObject({ read: 1, dead: 1, flushed: 0 });
    expect(s.target.applies).toBe(0);
    expect(await queued(s)).toEqual({ stream: 0, hash: 0 });
    await worker.stop();
  });
});

describe('the write-behind worker on a Cluster', () => {
  /** Runs the worker until `done` holds, counting batches. */
  async function flushUntil(worker: WriteBehindWorker, done: () => boolean | Promise<boolean>, what: string): Promise<number> {
    let batches = 0;
    await until(
      async () => {
        batches += 1;
        await worker.runOnce();
        return done();
      },
      { what },
    );
    return batches;
  }

  it("applies entities of slots on every node, each from its own slot's stream, in one batch", async () => {
    const s = await setup('cluster');
    const ids = Array.from({ length: 30 }, (_, i) => `q${i}`);
    for (const id of ids) s.source.put(id, { version: 1, name: id, views: 0 });
    for (const id of ids) await s.queue.enqueue('Product', id, { inc: { views: 2 }, at: Date.now() });
    const owners = new Set(await Promise.all(ids.map((id) => nodeOf(s.keys.writeQueue.ofEntity('Product', id).stream))));
    expect(owners.size).toBe(3); // the streams really are on every master
    expect(await s.inspect.scard(s.keys.writeQueue.registry)).toBe(new Set(ids.map((id) => queueOf(s, id).stream)).size);
    const worker = s.worker();
    expect(await worker.runOnce()).toMatchObject({ read: 30, flushed: 30, dead: 0 });
    for (const id of ids) expect(s.source.get(id)).toMatchObject({ version: 2, views: 2 });
    for (const id of ids) expect(await queued(s, id)).toEqual({ stream: 0, hash: 0 });
    expect(await worker.depth()).toBe(0);
    await worker.stop();
  });

  it('finds a stream whose registration was lost (SCAN of every master), and registers it again', async () => {
    const s = await setup('cluster');
    await s.queue.enqueue('Product', 'p1', { inc: { views: 1 }, at: Date.now() });
    await s.inspect.del(s.keys.writeQueue.registry);
    const worker = s.worker();
    await flushUntil(worker, () => s.source.get('p1')?.views === 11, 'the change found by the scan to be applied');
    expect(await s.inspect.sismember(s.keys.writeQueue.registry, queueOf(s).stream)).toBe(1);
    expect(await queued(s)).toEqual({ stream: 0, hash: 0 });
    await worker.stop();
  });

  it('applies each change once when the slot moves to another node between the read and the acknowledgement', async () => {
    const s = await setup('cluster');
    await s.queue.enqueue('Product', 'p1', { inc: { views: 1 }, at: Date.now() });
    let moved: { from: string; to: string } | undefined;
    const worker = s.worker({
      // Read from the old owner; the settle is redirected (MOVED) to the new one.
      beforeWrite: async () => {
        moved ??= await moveSlot(calculateSlot(s.keys.pending('Product', 'p1')), cluster.nodes);
      },
    });
    expect(await worker.runOnce()).toMatchObject({ read: 1, flushed: 1 });
    expect(moved && moved.from !== moved.to).toBe(true);
    expect(await queued(s)).toEqual({ stream: 0, hash: 0 });
    // Enqueues follow the slot too, and a new leader reads it on its new node.
    await s.queue.enqueue('Product', 'p1', { inc: { views: 2 }, at: Date.now() });
    await worker.stop();
    const next = s.worker();
    await flushUntil(next, async () => (await queued(s)).stream === 0, 'the second change to be applied');
    expect(s.source.get('p1')).toMatchObject({ version: 3, views: 13 });
    expect(s.target.written).toHaveLength(2);
    await next.stop();
  });

  it('a stopped leader lets the next read at once (its fences released); a dead one after they expire', async () => {
    const s = await setup('cluster');
    await s.queue.enqueue('Product', 'p1', { inc: { views: 1 }, at: Date.now() });
    const first = s.worker({ leaderTtlMs: 60_000 });
    await first.runOnce();
    await first.stop();
    await s.queue.enqueue('Product', 'p1', { inc: { views: 1 }, at: Date.now() });
    const second = s.worker({ leaderTtlMs: 60_000 });
    expect(await second.runOnce()).toMatchObject({ read: 1, flushed: 1 }); // no wait for a minute-long lease
    expect(s.source.get('p1')).toMatchObject({ views: 12 });
    await second.stop();
  });

  it('with replicaAcks and no replica to acknowledge, an enqueue is refused (ReplicaAckError) after it was queued', async () => {
    const s = await setup('cluster');
    const queue = new WriteBehindQueue({ store: s.store, keys: s.keys, events: s.store.events, replicaAcks: 1, replicaWaitMs: 10 });
    const error = await queue.enqueue('Product', 'p1', { inc: { views: 1 }, at: Date.now() }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReplicaAckError);
    expect(error).toMatchObject({ acks: 0, wanted: 1 });
    // Queued on the master all the same: the caller's synchronous write marks it done (Change.u).
    expect(await queued(s)).toEqual({ stream: 1, hash: 1 });
    queue.close();
  });
});

/** The id of the master that serves `key`. */
async function nodeOf(key: string): Promise<string> {
  const slot = calculateSlot(key);
  const ranges = (await clusterClient.cluster('SLOTS')) as unknown as [number, number, [string, number, string]][];
  return ranges.find(([first, last]) => slot >= first && slot <= last)?.[2][2] ?? '';
}
