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
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { until } from '../helpers/wait.js';

// The write-behind worker (src/write-behind/worker.ts) on a real Redis, applying to the
// in-memory target: each queued change in once, a crash between the write and the
// acknowledgement replayed without applying twice, a change the target keeps refusing
// dead-lettered after its tries.

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

let run = 0;
const clients: RedisClient[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.disconnect();
});

interface Setup {
  keys: Keyspace;
  store: RedisStore;
  queue: WriteBehindQueue;
  source: InMemorySource<WritableDocument>;
  target: InMemoryWriteTarget;
  worker(options?: Partial<WriteBehindWorkerOptions>): WriteBehindWorker;
}

/** A namespace of its own (its own stream), one product with 10 views, a queue and workers on one client. */
async function setup(): Promise<Setup> {
  const keys = createKeyspace({ namespace: `wb${(run += 1)}`, version: 1 });
  const client = createRedisClient({ url: redis.url, logger: SILENT_LOGGER });
  clients.push(client);
  await client.connect();
  const events = new CacheEvents('test', new CacheStats());
  const store = new RedisStore({ client, breaker: new CircuitBreaker(), events, leaseSuffix: keys.lease('') });
  const source = new InMemorySource<WritableDocument>({ p1: { version: 1, name: 'Lamp', views: 10 } });
  const target = new InMemoryWriteTarget({ source, fields: { set: ['name'], inc: ['views'] } });
  return {
    keys,
    store,
    queue: new WriteBehindQueue({ store, keys, events }),
    source,
    target,
    worker: (options = {}) =>
      new WriteBehindWorker({ store, keys, targets: { Product: target }, logger: SILENT_LOGGER, retryMs: 1, ...options }),
  };
}

/** The stream's length and the entity's queued changes, as Redis has them. */
async function queued(s: Setup): Promise<{ stream: number; hash: number }> {
  return {
    stream: await redis.client.xlen(s.keys.writeQueue.stream),
    hash: await redis.client.hlen(s.keys.pending('Product', 'p1')),
  };
}

/** A stream entry's fields (`[name, value, name, value, …]`) by name. */
function fieldsOf(flat: readonly string[]): Record<string, string> {
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i] as string] = flat[i + 1] as string;
  return fields;
}

describe('the write-behind worker', () => {
  it('applies the queued changes of an entity once, folded into one guarded write, and acknowledges them', async () => {
    const s = await setup();
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
    const s = await setup();
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
    const s = await setup();
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
    const letters = await redis.client.xrange(s.keys.writeQueue.dead, '-', '+');
    expect(letters.map(([, fields]) => fieldsOf(fields))).toMatchObject([
      { t: 'Product', i: 'p1', error: 'the database refused the change (after 3 tries)' },
    ]);
    expect(runs).toBeGreaterThanOrEqual(3);
    await worker.stop();
  });

  it('does not write over a synchronous write that raced it (a conflict), and applies what still holds on the next batch', async () => {
    const s = await setup();
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
    const s = await setup();
    await s.queue.enqueue('Product', 'p1', { set: { price: 3 }, at: Date.now() });
    const worker = s.worker();
    expect(await worker.runOnce()).toMatchObject({ read: 1, dead: 1, flushed: 0 });
    expect(s.target.applies).toBe(0);
    expect(await queued(s)).toEqual({ stream: 0, hash: 0 });
    await worker.stop();
  });
});
