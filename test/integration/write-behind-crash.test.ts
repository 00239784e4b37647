import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import mongoose from 'mongoose';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { seedDemoData } from '../../src/dev/seed.js';
import { createLogger } from '../../src/logger.js';
import { ProductModel } from '../../src/models/index.js';
import type { ProductDoc } from '../../src/models/product.model.js';
import { ADMIN } from '../helpers/test-app.js';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.js';
import { inspectRedis } from '../helpers/write-behind.js';
import { sleep, until } from '../helpers/wait.js';

// The server as its own process (what SIGKILL kills), over the test MongoDB and Redis.
const dbName = `t_${randomBytes(6).toString('hex')}`;
const mongodbUri = `${inject('mongoBaseUri')}/${dbName}`;
const PRODUCTS = ['5eed00010000000000000001', '5eed00010000000000000002', '5eed00010000000000000003'];
const VIEW = 'mutation($id: ID!) { recordProductView(id: $id) { viewCount } }';

type Server = ServerProcess;

function startServer(env: Record<string, string> = {}): Promise<Server> {
  return startServerProcess({
    NODE_ENV: 'test',
    MONGODB_URI: mongodbUri,
    REDIS_URL: inject('redisUrl'),
    CACHE_NAMESPACE: dbName,
    SEED_ON_START: 'false',
    WRITE_BEHIND_LEADER_TTL_MS: '1000',
    ...env,
  });
}

/** `count` views spread over the products from 20 concurrent clients; the number acknowledged per product. */
async function views(server: Server, count: number): Promise<Map<string, number>> {
  const acknowledged = new Map<string, number>(PRODUCTS.map((id) => [id, 0]));
  let next = 0;
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      while (next < count) {
        const id = PRODUCTS[next % PRODUCTS.length] ?? '';
        next += 1;
        const res = await fetch(`${server.url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query: VIEW, variables: { id } }),
        });
        const body = (await res.json()) as { errors?: unknown };
        if (body.errors === undefined) acknowledged.set(id, (acknowledged.get(id) ?? 0) + 1);
      }
    }),
  );
  return acknowledged;
}

async function kill(server: Server): Promise<void> {
  const exited = once(server.process, 'exit');
  server.process.kill('SIGKILL');
  await exited;
}

async function storedCounts(): Promise<Map<string, number>> {
  const docs = await ProductModel.find({ _id: { $in: PRODUCTS } })
    .lean<ProductDoc[]>()
    .exec();
  return new Map(docs.map((d) => [d._id.toHexString(), d.viewCount]));
}

beforeAll(async () => {
  await mongoose.connect(mongodbUri);
  await seedDemoData({ logger: createLogger({ level: 'silent' }), admin: ADMIN, users: 3, products: 5, reviews: 0, orders: 0 });
});
afterAll(async () => {
  await mongoose.connection.db?.dropDatabase().catch(() => undefined);
  await mongoose.disconnect();
});

describe('write-behind across SIGKILL and restart', () => {
  it('every acknowledged view reaches MongoDB exactly once, whenever the server dies', { timeout: 180_000 }, async () => {
    const base = await storedCounts();
    const expected = new Map(base);
    const add = (acked: Map<string, number>) => {
      for (const [id, n] of acked) expected.set(id, (expected.get(id) ?? 0) + n);
    };

    // 1. Killed with everything still queued (the worker waits a minute between batches). An
    // enqueue that outlasts the Redis command timeout (250 ms by default, which a loaded machine
    // reaches) is written to MongoDB synchronously instead, as it must be: a generous timeout here
    // keeps every view queued, which is what this phase is about.
    let server = await startServer({ WRITE_BEHIND_INTERVAL_MS: '60000', REDIS_COMMAND_TIMEOUT_MS: '30000' });
    add(await views(server, 300));
    await kill(server);
    expect(await storedCounts()).toEqual(base); // nothing reached MongoDB: all of it was pending

    // 2. Killed while the worker flushes as fast as it can, at a different moment each round.
    for (const delayMs of [0, 15, 40]) {
      server = await startServer({ WRITE_BEHIND_INTERVAL_MS: '5', WRITE_BEHIND_BATCH_SIZE: '20' });
      add(await views(server, 300));
      await sleep(delayMs);
      await kill(server);
    }

    // 3. A new server takes over the dead one's entries and applies each exactly once.
    server = await startServer();
    const redis = inspectRedis();
    try {
      const stream = `${dbName}:{wb}:writes`;
      await until(async () => (await redis.xlen(stream)) === 0, { what: 'the queue to drain' });
      expect(await storedCounts()).toEqual(expected);
      expect(await redis.hlen(`${dbName}:{Product:${PRODUCTS[0]}}:wb`)).toBe(0);

      // 4. SIGTERM drains what is queued before the process exits.
      const stopped = once(server.process, 'exit');
      server.process.kill('SIGTERM');
      await stopped;
      server = await startServer({ WRITE_BEHIND_INTERVAL_MS: '60000' });
      // It leads once the previous leader resigned, then waits a minute between batches.
      add(await views(server, 90));
      const exited = once(server.process, 'exit');
      server.process.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      expect(code).toBe(0);
      expect(await redis.xlen(stream)).toBe(0);
      expect(await storedCounts()).toEqual(expected);
    } finally {
      redis.disconnect();
      if (server.process.exitCode === null) await kill(server);
    }
  });
});
