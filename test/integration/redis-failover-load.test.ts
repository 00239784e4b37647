import { randomBytes } from 'node:crypto';
import { createKeyspace } from 'graphql-lease-cache';
import mongoose from 'mongoose';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { seedDemoData } from '../../src/dev/seed.js';
import { createLogger } from '../../src/logger.js';
import { ask, fromCache, kill, PRODUCT, productId, UPDATE, type Answer } from '../helpers/fleet.js';
import { startRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.js';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.js';
import { metricValue } from '../helpers/metrics.js';
import { ProductModel } from '../../src/models/index.js';
import { ADMIN } from '../helpers/test-app.js';
import { sleep, until } from '../helpers/wait.js';

// A master of a Redis Cluster with replicas SIGKILLed under load, two server processes on it:
// after the failover no read returns a value older than one whose mutation returned before the
// read began (invalidations are delivered only once a replica has them, CACHE_REPLICA_ACKS).

const dbName = `t_${randomBytes(6).toString('hex')}`;
const mongodbUri = `${inject('mongoBaseUri')}/${dbName}`;
const keys = createKeyspace({ namespace: dbName });
const PRODUCTS = 24;

let cluster: TestRedisCluster;
const servers: ServerProcess[] = [];

function startServer(env: Record<string, string> = {}): Promise<ServerProcess> {
  return startServerProcess({
    NODE_ENV: 'test',
    MONGODB_URI: mongodbUri,
    REDIS_CLUSTER_NODES: cluster.nodes.join(','),
    CACHE_NAMESPACE: dbName,
    SEED_ON_START: 'false',
    CACHE_AUDIT_PER_MINUTE: '0',
    WRITE_BEHIND_LEADER_TTL_MS: '1500',
    JOBS_LEASE_TTL_MS: '1500',
    // TEST_FAILOVER_REPLICA_ACKS=0 runs the same load without WAIT, to see what it prevents.
    ...(process.env.TEST_FAILOVER_REPLICA_ACKS ? { CACHE_REPLICA_ACKS: process.env.TEST_FAILOVER_REPLICA_ACKS } : {}),
    ...env,
  }).then((server) => {
    servers.push(server);
    return server;
  });
}

async function adminToken(server: ServerProcess): Promise<string> {
  const res = await ask<{ login: { token: string } }>(
    server,
    'mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }',
    {
      e: ADMIN.email,
      p: ADMIN.password,
    },
  );
  if (!res.data) throw new Error(`admin login failed: ${res.error}`);
  return res.data.login.token;
}

beforeAll(async () => {
  await mongoose.connect(mongodbUri);
  await seedDemoData({ logger: createLogger({ level: 'silent' }), admin: ADMIN, users: 2, products: PRODUCTS, reviews: 0, orders: 0 });
  cluster = await startRedisCluster({ replicas: 1 });
});
afterAll(async () => {
  for (const server of servers) await kill(server);
  await cluster?.stop();
  await mongoose.connection.db?.dropDatabase().catch(() => undefined);
  await mongoose.disconnect();
});

/** The seeded products whose cache keys the most loaded master serves, and that master. */
async function productsOfOneMaster(): Promise<{ master: string; ids: string[] }> {
  const byMaster = new Map<string, string[]>();
  for (let n = 0; n < PRODUCTS; n += 1) {
    const master = await cluster.masterOf(keys.entity('Product', productId(n)));
    byMaster.set(master, [...(byMaster.get(master) ?? []), productId(n)]);
  }
  const [master, ids] = [...byMaster].sort((a, b) => b[1].length - a[1].length)[0] ?? ['', []];
  return { master, ids: ids.slice(0, 4) };
}

type Price = { product: { priceCents: number } | null };

describe('a master SIGKILLed while its products are updated and read on two instances', () => {
  it('0 stale reads after the failover', { timeout: 90_000 }, async () => {
    const { master, ids } = await productsOfOneMaster();
    expect(ids.length).toBeGreaterThanOrEqual(2);
    const [a, b] = [await startServer(), await startServer()];
    const instances = [a, b];
    const tokens = await Promise.all(instances.map(adminToken));
    // Per product: the prices whose mutation returned, and when (performance.now()).
    const acknowledged = new Map<string, { price: number; at: number }[]>(ids.map((id) => [id, []]));
    let running = true;
    let killedAt = Infinity;
    const writes = { before: 0, after: 0, failed: 0 };
    const writer = async (id: string, w: number): Promise<void> => {
      let price = 10_000 * (w + 1);
      for (let i = 0; running; i += 1) {
        price += 1;
        const server = instances[i % 2] ?? a;
        const res = await ask(server, UPDATE, { id, input: { priceCents: price } }, { token: tokens[i % 2] ?? '' });
        if (res.error !== null) writes.failed += 1;
        else {
          acknowledged.get(id)?.push({ price, at: performance.now() });
          writes[res.sentAt > killedAt ? 'after' : 'before'] += 1;
        }
      }
    };
    const reads: { id: string; answer: Answer<Price> }[] = [];
    const reader = async (r: number): Promise<void> => {
      for (let i = 0; running; i += 1) {
        const id = ids[(r + i) % ids.length] ?? '';
        reads.push({ id, answer: await ask<Price>(instances[(r + i) % 2] ?? a, PRODUCT, { id }) });
      }
    };
    const load = Promise.all([...ids.map((id, w) => writer(id, w)), ...Array.from({ length: 6 }, (_, r) => reader(r))]);
    await sleep(2_000); // the load before the fault
    killedAt = performance.now();
    await cluster.kill(master);
    await cluster.failedOver(master, keys.entity('Product', ids[0] ?? ''));
    const failedOverAt = performance.now();
    await sleep(3_000); // the load after it
    running = false;
    await load;

    const stale = reads.filter(({ id, answer }) => {
      const got = answer.data?.product?.priceCents;
      if (got === undefined) return false;
      const returned = (acknowledged.get(id) ?? []).filter((w) => w.at < answer.sentAt);
      return returned.length > 0 && got < Math.max(...returned.map((w) => w.price));
    });
    const after = reads.filter(({ answer }) => answer.sentAt > failedOverAt);
    const report = {
      reads: reads.length,
      readsAfterFailover: after.length,
      cachedAfterFailover: after.filter(({ answer }) => fromCache(answer)).length,
      readErrors: reads.filter(({ answer }) => answer.error !== null).length,
      writes,
      failoverMs: Math.round(failedOverAt - killedAt),
      stale: stale.length,
    };
    console.log('failover under reads and writes', JSON.stringify(report));
    expect(stale.map(({ id, answer }) => ({ id, got: answer.data?.product?.priceCents }))).toEqual([]);
    expect(writes.before).toBeGreaterThan(0);
    expect(writes.after).toBeGreaterThan(0);
    expect(after.length).toBeGreaterThan(0);
    await cluster.restart(master); // a replica again, for the next test
  });
});

const VIEW = 'mutation($id: ID!) { recordProductView(id: $id) { viewCount } }';

async function viewCounts(): Promise<Map<string, number>> {
  const docs = await ProductModel.find({}, { viewCount: 1 }).lean<{ _id: { toHexString(): string }; viewCount: number }[]>().exec();
  return new Map(docs.map((d) => [d._id.toHexString(), d.viewCount]));
}

/** The sum over `servers` of a Product metric. */
async function counted(servers: readonly ServerProcess[], name: string): Promise<number> {
  const values = await Promise.all(servers.map((s) => metricValue(`${s.url}/metrics`, name, { type: 'Product' })));
  return values.reduce((x, y) => x + y, 0);
}

describe('a master SIGKILLed while views are written behind through two instances', () => {
  it('every acknowledged view is in MongoDB once the worker drained: 0 lost', { timeout: 90_000 }, async () => {
    const instances = servers.slice(0, 2);
    const [a] = instances;
    if (!a) throw new Error('the first test starts the instances');
    const ids = Array.from({ length: PRODUCTS }, (_, n) => productId(n));
    const base = await viewCounts();
    const enqueuedBefore = await counted(instances, 'write_behind_enqueued_total');
    const acknowledged = new Map<string, number>(ids.map((id) => [id, 0]));
    let failed = 0;
    let running = true;
    const client = async (c: number): Promise<void> => {
      for (let i = 0; running; i += 1) {
        const id = ids[(c * 7 + i) % ids.length] ?? '';
        const res = await ask(instances[(c + i) % 2] ?? a, VIEW, { id });
        if (res.error === null) acknowledged.set(id, (acknowledged.get(id) ?? 0) + 1);
        else failed += 1;
      }
    };
    const load = Promise.all(Array.from({ length: 8 }, (_, c) => client(c)));
    await sleep(2_000);
    const victim = await cluster.masterOf(keys.entity('Product', ids[0] ?? ''));
    await cluster.kill(victim);
    await cluster.failedOver(victim, keys.entity('Product', ids[0] ?? ''));
    await sleep(2_000);
    running = false;
    await load;
    const views = [...acknowledged.values()].reduce((x, y) => x + y, 0);
    const lost = async (): Promise<{ id: string; missing: number }[]> => {
      const now = await viewCounts();
      return ids
        .map((id) => ({ id, missing: (base.get(id) ?? 0) + (acknowledged.get(id) ?? 0) - (now.get(id) ?? 0) }))
        .filter((row) => row.missing > 0);
    };
    await until(async () => (await lost()).length === 0, {
      what: 'every acknowledged view in MongoDB',
      timeoutMs: 30_000,
      intervalMs: 200,
    }).catch(
      () => undefined, // the assertion below names what is missing
    );
    const now = await viewCounts();
    const extra = ids.reduce((sum, id) => sum + (now.get(id) ?? 0) - (base.get(id) ?? 0) - (acknowledged.get(id) ?? 0), 0);
    const enqueued = (await counted(instances, 'write_behind_enqueued_total')) - enqueuedBefore;
    const fallbacks = await counted(instances, 'write_behind_fallbacks_total');
    console.log('failover under write-behind views', JSON.stringify({ views, failed, enqueued, fallbacks, extra }));
    expect(await lost()).toEqual([]);
    expect(views).toBeGreaterThan(0);
    expect(enqueued).toBeGreaterThan(0); // written behind, not all synchronously
    // An unacknowledged view (its request failed) may have been applied; never more than those.
    expect(extra).toBeLessThanOrEqual(failed);
  });
});
