import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import calculateSlot from 'cluster-key-slot';
import { Cluster } from 'ioredis';
import mongoose from 'mongoose';
import { createKeyspace } from 'graphql-lease-cache';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { seedDemoData } from '../../src/dev/seed.js';
import { createLogger } from '../../src/logger.js';
import { ProductModel } from '../../src/models/index.js';
import type { ProductDoc } from '../../src/models/product.model.js';
import { metricValue } from '../helpers/metrics.js';
import { startRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.js';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.js';
import { ADMIN } from '../helpers/test-app.js';
import { sleep, until } from '../helpers/wait.js';

// Write-behind on the three-node Redis Cluster (REDIS_CLUSTER_NODES): each product's views are
// queued in the stream of its own slot. Server processes, as a deployment runs them: views
// written behind through two instances and read at once through either (0 stale), and the
// server SIGKILLed with views queued (after a restart, MongoDB exact).
const dbName = `t_${randomBytes(6).toString('hex')}`;
const mongodbUri = `${inject('mongoBaseUri')}/${dbName}`;
const PRODUCTS = [0, 1, 2, 3, 4].map((n) => `5eed0001000000000000000${n}`);
const VIEW = 'mutation($id: ID!) { recordProductView(id: $id) { viewCount } }';
const READ = 'query($id: ID!) { product(id: $id) { viewCount } }';
const keys = createKeyspace({ namespace: dbName });

let cluster: TestRedisCluster;
let redis: Cluster;

function startServer(env: Record<string, string> = {}): Promise<ServerProcess> {
  return startServerProcess({
    NODE_ENV: 'test',
    MONGODB_URI: mongodbUri,
    REDIS_CLUSTER_NODES: cluster.nodes.join(','),
    CACHE_NAMESPACE: dbName,
    SEED_ON_START: 'false',
    WRITE_BEHIND_LEADER_TTL_MS: '1000',
    // A loaded machine can take longer than the default 250 ms to enqueue, and the mutation would
    // then (rightly) write MongoDB synchronously: these tests are about what is written behind.
    REDIS_COMMAND_TIMEOUT_MS: '10000',
    ...env,
  });
}

async function post<T>(
  server: ServerProcess,
  query: string,
  variables: Record<string, unknown>,
): Promise<{ data?: T; errors?: unknown[] }> {
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return (await res.json()) as { data?: T; errors?: unknown[] };
}

async function storedViews(): Promise<Map<string, number>> {
  const docs = await ProductModel.find({ _id: { $in: PRODUCTS } })
    .lean<ProductDoc[]>()
    .exec();
  return new Map(docs.map((d) => [d._id.toHexString(), d.viewCount]));
}

/** Entries still queued for the products: their slot streams' lengths and their hashes' sizes. */
async function queued(): Promise<number> {
  const counts = await Promise.all(
    PRODUCTS.flatMap((id) => [redis.xlen(keys.writeQueue.ofEntity('Product', id).stream), redis.hlen(keys.pending('Product', id))]),
  );
  return counts.reduce((a, b) => a + b, 0);
}

async function stop(server: ServerProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (server.process.exitCode !== null || server.process.signalCode !== null) return;
  const exited = once(server.process, 'exit');
  server.process.kill(signal);
  await exited;
}

/** The sum of a Product counter over the servers' /metrics. */
async function counted(servers: readonly ServerProcess[], name: string): Promise<number> {
  const values = await Promise.all(servers.map((s) => metricValue(`${s.url}/metrics`, name, { type: 'Product' })));
  return values.reduce((a, b) => a + b, 0);
}

beforeAll(async () => {
  cluster = await startRedisCluster();
  redis = new Cluster(
    cluster.nodes.map((node) => ({ host: node.split(':')[0] ?? '127.0.0.1', port: Number(node.split(':')[1]) })),
    { redisOptions: { maxRetriesPerRequest: 1 } },
  );
  await mongoose.connect(mongodbUri);
  await seedDemoData({ logger: createLogger({ level: 'silent' }), admin: ADMIN, users: 3, products: 5, reviews: 0, orders: 0 });
}, 120_000);
afterAll(async () => {
  redis?.disconnect();
  await mongoose.connection.db?.dropDatabase().catch(() => undefined);
  await mongoose.disconnect();
  await cluster?.stop();
});

describe('write-behind on a Redis Cluster', () => {
  it(
    'views written behind through two instances, read at once through either: 0 stale, then MongoDB exact',
    { timeout: 180_000 },
    async () => {
      const a = await startServer();
      const b = await startServer({ WRITE_BEHIND_WORKER: 'false' });
      try {
        const base = await storedViews();
        // Per product: views acknowledged, and views sent (acknowledged or not yet).
        const acked = new Map(PRODUCTS.map((id) => [id, 0]));
        const sent = new Map(PRODUCTS.map((id) => [id, 0]));
        const stale: string[] = [];
        let ops = 0;
        const OPS = 1_200;
        const random = (n: number): number => Math.floor(Math.random() * n);
        await Promise.all(
          Array.from({ length: 12 }, async () => {
            while (ops < OPS) {
              ops += 1;
              const id = PRODUCTS[random(PRODUCTS.length)] as string;
              const server = random(2) ? b : a;
              // What any answer must show at least: every view acknowledged before the request.
              const floor = (base.get(id) ?? 0) + (acked.get(id) ?? 0);
              if (random(2)) {
                sent.set(id, (sent.get(id) ?? 0) + 1);
                const res = await post<{ recordProductView: { viewCount: number } }>(server, VIEW, { id });
                expect(res.errors).toBeUndefined();
                acked.set(id, (acked.get(id) ?? 0) + 1);
                const shown = res.data?.recordProductView.viewCount ?? -1;
                if (shown < floor + 1) stale.push(`view of ${id} answered ${shown}, at least ${floor + 1} acknowledged`);
              } else {
                const res = await post<{ product: { viewCount: number } }>(server, READ, { id });
                const shown = res.data?.product.viewCount ?? -1;
                const ceiling = (base.get(id) ?? 0) + (sent.get(id) ?? 0);
                if (shown < floor || shown > ceiling) stale.push(`read of ${id} answered ${shown}, expected ${floor}..${ceiling}`);
              }
            }
          }),
        );
        expect(stale).toEqual([]);
        const views = [...acked.values()].reduce((x, y) => x + y, 0);
        // Written behind, not synchronously: every view queued, none fell back.
        expect(await counted([a, b], 'write_behind_enqueued_total')).toBe(views);
        expect(await counted([a, b], 'write_behind_fallbacks_total')).toBe(0);
        // The products' streams (one per slot) are on more than one master.
        const streams = PRODUCTS.map((id) => keys.writeQueue.ofEntity('Product', id).stream);
        const ranges = (await redis.cluster('SLOTS')) as unknown as [number, number, [string, number]][];
        const owners = streams.map((stream) => {
          const slot = calculateSlot(stream);
          return ranges.find(([first, last]) => slot >= first && slot <= last)?.[2][1];
        });
        expect(new Set(owners).size).toBeGreaterThanOrEqual(2);
        await until(async () => (await queued()) === 0, { what: 'the queues to drain', timeoutMs: 30_000 });
        const expected = new Map([...base].map(([id, n]) => [id, n + (acked.get(id) ?? 0)]));
        expect(await storedViews()).toEqual(expected);
        for (const id of PRODUCTS) expect(await redis.xlen(keys.writeQueue.ofEntity('Product', id).dead)).toBe(0);
        // And both instances read what MongoDB has.
        for (const server of [a, b]) {
          for (const id of PRODUCTS)
            expect((await post<{ product: { viewCount: number } }>(server, READ, { id })).data?.product.viewCount).toBe(expected.get(id));
        }
      } finally {
        await Promise.all([stop(a), stop(b)]);
      }
    },
  );

  it('every acknowledged view reaches MongoDB exactly once across SIGKILLs of the server', { timeout: 180_000 }, async () => {
    const base = await storedViews();
    const expected = new Map(base);
    const views = async (server: ServerProcess, count: number): Promise<void> => {
      let next = 0;
      await Promise.all(
        Array.from({ length: 20 }, async () => {
          while (next < count) {
            const id = PRODUCTS[next % PRODUCTS.length] as string;
            next += 1;
            if ((await post(server, VIEW, { id })).errors === undefined) expected.set(id, (expected.get(id) ?? 0) + 1);
          }
        }),
      );
    };

    // 1. Killed with everything still queued (the worker waits a minute between batches).
    let server = await startServer({ WRITE_BEHIND_INTERVAL_MS: '60000' });
    await views(server, 300);
    expect(await counted([server], 'write_behind_fallbacks_total')).toBe(0);
    await stop(server, 'SIGKILL');
    expect(await storedViews()).toEqual(base); // nothing reached MongoDB: all of it was queued
    expect(await queued()).toBeGreaterThan(0);

    // 2. Killed while the worker flushes as fast as it can, at a different moment each round.
    for (const delayMs of [0, 40]) {
      server = await startServer({ WRITE_BEHIND_INTERVAL_MS: '5', WRITE_BEHIND_BATCH_SIZE: '20' });
      await views(server, 300);
      await sleep(delayMs);
      await stop(server, 'SIGKILL');
    }

    // 3. A new server takes over the dead ones' entries, on every slot's stream, and applies each once.
    server = await startServer();
    try {
      await until(async () => (await queued()) === 0, { what: 'the queues to drain', timeoutMs: 30_000 });
      expect(await storedViews()).toEqual(expected);
    } finally {
      await stop(server);
    }
  });

  it(
    'a view no replica acknowledged (CACHE_REPLICA_ACKS=1, none here) is written synchronously, and counted once',
    { timeout: 120_000 },
    async () => {
      // A long WAIT and a busy worker: the worker often applies the queued copy before the
      // synchronous write, which must then change nothing (and after it, skip the copy).
      // (The WAIT stays below REDIS_COMMAND_TIMEOUT_MS, 250 by default: start-up refuses otherwise.)
      const server = await startServer({
        CACHE_REPLICA_ACKS: '1',
        CACHE_REPLICA_WAIT_MS: '200',
        WRITE_BEHIND_INTERVAL_MS: '5',
      });
      try {
        const base = await storedViews();
        const id = PRODUCTS[0] as string;
        for (let i = 1; i <= 10; i += 1) {
          const res = await post<{ recordProductView: { viewCount: number } }>(server, VIEW, { id });
          expect(res.data?.recordProductView.viewCount).toBe((base.get(id) ?? 0) + i);
        }
        // Each was queued on its master, then written synchronously (unless the worker had applied the copy), once.
        expect(await counted([server], 'write_behind_fallbacks_total')).toBe(10);
        expect((await storedViews()).get(id)).toBe((base.get(id) ?? 0) + 10);
        // The worker settles every copy; none counts twice.
        await until(async () => (await counted([server], 'write_behind_flushed_total')) === 10, {
          what: 'the queued copies to be settled',
        });
        expect(await queued()).toBe(0);
        expect((await storedViews()).get(id)).toBe((base.get(id) ?? 0) + 10);
        expect((await post<{ product: { viewCount: number } }>(server, READ, { id })).data?.product.viewCount).toBe(
          (base.get(id) ?? 0) + 10,
        );
      } finally {
        await stop(server);
      }
    },
  );
});
