import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import mongoose, { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { seedDemoData } from '../../src/dev/seed.js';
import { createLogger } from '../../src/logger.js';
import { ProductModel } from '../../src/models/index.js';
import type { ProductDoc } from '../../src/models/product.model.js';
import { ADMIN } from '../helpers/test-app.js';
import { failedServerStart, startServerProcess, type ServerProcess } from '../helpers/server-process.js';
import { inspectRedis } from '../helpers/write-behind.js';
import { until } from '../helpers/wait.js';

// Two server processes on one Redis and one FerretDB database, as a deployment of two
// instances runs: each process has its own in-process document lock, so only what they share
// in Redis (the document locks, the jobs' lease) keeps them from losing each other's writes.
const dbName = `t_${randomBytes(6).toString('hex')}`;
const mongodbUri = `${inject('mongoBaseUri')}/${dbName}`;
const PRODUCTS = ['5eed00010000000000000001', '5eed00010000000000000002', '5eed00010000000000000003'];
const VIEW = 'mutation($id: ID!) { recordProductView(id: $id) { viewCount } }';
const STOCK = 'mutation($id: ID!, $stock: Int!) { updateProduct(id: $id, input: { stock: $stock }) { stock } }';
const LOGIN = 'mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }';
const LEADS = 'this instance runs the background jobs';

function startServer(env: Record<string, string> = {}): Promise<ServerProcess> {
  return startServerProcess({
    NODE_ENV: 'test',
    MONGODB_URI: mongodbUri,
    REDIS_URL: inject('redisUrl'),
    CACHE_NAMESPACE: dbName,
    SEED_ON_START: 'false',
    WRITE_BEHIND_LEADER_TTL_MS: '1500',
    JOBS_LEASE_TTL_MS: '1500',
    ...env,
  });
}

async function post<T>(
  server: ServerProcess,
  query: string,
  variables: Record<string, unknown>,
  token?: string,
): Promise<{ data?: T; errors?: unknown[] }> {
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return (await res.json()) as { data?: T; errors?: unknown[] };
}

async function stop(server: ServerProcess): Promise<void> {
  if (server.process.exitCode !== null) return;
  const exited = once(server.process, 'exit');
  server.process.kill('SIGTERM');
  await exited;
}

async function storedViews(): Promise<Map<string, number>> {
  const docs = await ProductModel.find({ _id: { $in: PRODUCTS } })
    .lean<ProductDoc[]>()
    .exec();
  return new Map(docs.map((d) => [d._id.toHexString(), d.viewCount]));
}

beforeAll(async () => {
  await mongoose.connect(mongodbUri);
  await seedDemoData({ logger: createLogger({ level: 'silent' }), admin: ADMIN, users: 3, products: 5, reviews: 10, orders: 0 });
});
afterAll(async () => {
  await mongoose.connection.db?.dropDatabase().catch(() => undefined);
  await mongoose.disconnect();
});

describe('two server instances on one Redis and one FerretDB', () => {
  it(
    'views counted through one instance and stock written through both leave the exact count in MongoDB',
    { timeout: 120_000 },
    async () => {
      // A applies the write-behind queue; B, as in the review's deployment, runs no worker. With
      // one queued change per product at most (overload), most views take the synchronous
      // fallback: an $inc of the product, through either instance.
      const a = await startServer({ WRITE_BEHIND_MAX_PENDING: '1' });
      const b = await startServer({ WRITE_BEHIND_WORKER: 'false', WRITE_BEHIND_MAX_PENDING: '1' });
      const redis = inspectRedis();
      try {
        const base = await storedViews();
        const tokens = await Promise.all(
          [a, b].map(async (server) => {
            const res = await post<{ login: { token: string } }>(server, LOGIN, { e: ADMIN.email, p: ADMIN.password });
            return res.data?.login.token ?? '';
          }),
        );
        const acknowledged = new Map(PRODUCTS.map((id) => [id, 0]));
        let views = 0;
        let stockWrites = 0;
        let stockFailures = 0;
        const VIEWS = 600;
        await Promise.all([
          // Views from 10 clients over both instances: queued (A's worker applies them, under A's
          // lock) or, with one already queued, an $inc under the lock of the instance asked.
          ...Array.from({ length: 10 }, async (_, client) => {
            while (views < VIEWS) {
              const id = PRODUCTS[views % PRODUCTS.length] ?? '';
              views += 1;
              const res = await post(client % 2 ? b : a, VIEW, { id });
              if (res.errors === undefined) acknowledged.set(id, (acknowledged.get(id) ?? 0) + 1);
            }
          }),
          // Meanwhile synchronous stock writes through both: on FerretDB each writes back the
          // whole document it read, viewCount included.
          ...Array.from({ length: 6 }, async (_, client) => {
            while (views < VIEWS) {
              const id = PRODUCTS[stockWrites % PRODUCTS.length] ?? '';
              stockWrites += 1;
              const res = await post(client % 2 ? b : a, STOCK, { id, stock: 100 + (stockWrites % 50) }, tokens[client % 2]);
              if (res.errors !== undefined) stockFailures += 1;
            }
          }),
        ]);
        expect(stockFailures).toBe(0);
        await until(async () => (await redis.xlen(`${dbName}:{wb}:writes`)) === 0, { what: 'the queue to drain', timeoutMs: 30_000 });
        expect(await redis.xlen(`${dbName}:{wb}:dead`)).toBe(0);
        const expected = new Map([...base].map(([id, n]) => [id, n + (acknowledged.get(id) ?? 0)]));
        expect(await storedViews()).toEqual(expected);
      } finally {
        redis.disconnect();
        await Promise.all([stop(a), stop(b)]);
      }
    },
  );

  it('one instance runs the background jobs, and the other takes them over when it stops', { timeout: 120_000 }, async () => {
    const a = await startServer();
    const b = await startServer();
    try {
      expect(a.output()).toContain(LEADS);
      expect(b.output()).toContain('another instance runs the background jobs');
      expect(b.output()).not.toContain(LEADS);
      // A product written before review counts existed: only the jobs' holder backfills it.
      const id = new Types.ObjectId(PRODUCTS[0]);
      await ProductModel.collection.updateOne({ _id: id }, { $unset: { reviewCount: '', ratingSum: '' } });
      await stop(a);
      await until(() => b.output().includes(LEADS), { what: 'B to take the jobs over', timeoutMs: 10_000 });
      await until(async () => typeof (await ProductModel.collection.findOne({ _id: id }))?.reviewCount === 'number', {
        what: 'B to backfill the review count',
        timeoutMs: 10_000,
      });
      // Said once the product's cached copy is invalidated, just after the write above.
      await until(() => b.output().includes('set the review counts of products that had none'), { what: 'B to say it backfilled' });
    } finally {
      await Promise.all([stop(a), stop(b)]);
    }
  });

  it('with FERRETDB_DOCUMENT_LOCK=process, a second instance refuses to start', { timeout: 120_000 }, async () => {
    const a = await startServer({ FERRETDB_DOCUMENT_LOCK: 'process' });
    try {
      const second = await failedServerStart({
        NODE_ENV: 'test',
        MONGODB_URI: mongodbUri,
        REDIS_URL: inject('redisUrl'),
        CACHE_NAMESPACE: dbName,
        SEED_ON_START: 'false',
        FERRETDB_DOCUMENT_LOCK: 'process',
      });
      expect(second.code).toBe(1);
      expect(second.output).toContain('another server instance or worker already writes this FerretDB');
    } finally {
      await stop(a);
    }
  });
});
