import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import mongoose from 'mongoose';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { CACHE_SCHEMA_VERSION } from '../../packages/graphql-lease-cache/src/create-cache.js';
import { createKeyspace } from '../../packages/graphql-lease-cache/src/keys.js';
import { seedDemoData } from '../../src/dev/seed.js';
import { createLogger } from '../../src/logger.js';
import { ProductModel } from '../../src/models/index.js';
import { startOwnFerretdb, type OwnFerretdb } from '../helpers/ferretdb.js';
import { metricValue } from '../helpers/metrics.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/redis.js';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.js';
import { ADMIN } from '../helpers/test-app.js';
import { until } from '../helpers/wait.js';

// Grace across two instances on one Redis (issue 24): MongoDB hangs with the entries past their
// TTL; a write through A fails, and B, which shares A's Redis, still answers the other warm
// reads from grace, but never serves the product A's write named (it may have landed: A
// invalidated it in Redis before answering), and never the value A tried to write.
// The L1 is on, as in production (the fleet renews through Redis alone while MongoDB is down);
// responses are off and the reads are entities, whose TTL (1 s) also bounds the L1's copies.
const GRACE_MS = 60_000;
const namespace = `t_${randomBytes(6).toString('hex')}`;
const keys = createKeyspace({ namespace, version: CACHE_SCHEMA_VERSION });
const product = (n: number): string => `5eed0001${n.toString(16).padStart(16, '0')}`;
const user = (n: number): string => `5eed0000${n.toString(16).padStart(16, '0')}`;
const READS = {
  product: `{ product(id: "${product(2)}") { id name priceCents } }`,
  users: `{ users(ids: ["${user(1)}", "${user(2)}"]) { id name } }`,
  written: `{ product(id: "${product(3)}") { id name priceCents } }`,
};
const UPDATE = 'mutation($id: ID!, $name: String!) { updateProduct(id: $id, input: { name: $name }) { id name } }';
const LOGIN = 'mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }';

interface Body {
  data?: Record<string, unknown> | null;
  errors?: { extensions?: { code?: string; reason?: string } }[];
  extensions?: { cache?: { grace?: boolean } };
}

async function post(server: ServerProcess, query: string, variables: Record<string, unknown> = {}, token?: string): Promise<Body> {
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return (await res.json()) as Body;
}

const codes = (body: Body): (string | undefined)[] => (body.errors ?? []).map((e) => e.extensions?.code);

let db: OwnFerretdb;
let redis: PrivateRedis;
let a: ServerProcess;
let b: ServerProcess;
beforeAll(async () => {
  db = await startOwnFerretdb();
  // A Redis of the test's own: its keys are inspected, and nothing else shares it.
  redis = await startPrivateRedis();
  const mongodbUri = `${db.uri}/grace2`;
  await mongoose.connect(mongodbUri);
  await seedDemoData({ logger: createLogger({ level: 'silent' }), admin: ADMIN, users: 3, products: 5, reviews: 10, orders: 0 });
  const env = {
    NODE_ENV: 'test',
    MONGODB_URI: mongodbUri,
    REDIS_URL: redis.url,
    CACHE_NAMESPACE: namespace,
    SEED_ON_START: 'false',
    MONGODB_TIMEOUT_MS: '1000',
    CACHE_TTL_SECONDS: '1',
    CACHE_GRACE_SECONDS: String(GRACE_MS / 1_000),
    CACHE_EARLY_REFRESH: '0',
    CACHE_RESPONSES: 'false',
    CACHE_L1: 'true',
    // The L1 holds a value it got as a hit from Redis for its whole max age (60 s by default),
    // not the value's remaining TTL (read-path.ts holds hits without ttlMs): a second here, so
    // that B's copies are gone once the entries are past their TTL, and B reads them in Redis.
    CACHE_L1_MAX_AGE_SECONDS: '1',
    CACHE_AUDIT_PER_MINUTE: '0',
  };
  [a, b] = await Promise.all([startServerProcess(env), startServerProcess(env)]);
}, 120_000);
afterAll(async () => {
  for (const server of [a, b]) {
    if (server?.process.exitCode === null) {
      const exited = once(server.process, 'exit');
      server.process.kill('SIGTERM');
      await exited;
    }
  }
  await mongoose.connection.db?.dropDatabase().catch(() => undefined);
  await mongoose.disconnect();
  await redis?.stop();
  await db?.stop();
});

describe('grace with two instances on one Redis', () => {
  it("B answers warm reads from grace while A's write fails, and never the product A's write named", async () => {
    const token = (await post(a, LOGIN, { e: ADMIN.email, p: ADMIN.password })).data?.login as { token: string };
    const warm: Record<string, unknown> = {};
    for (const [name, query] of Object.entries(READS)) {
      await post(a, query);
      const res = await post(b, query);
      expect(res.errors).toBeUndefined();
      warm[name] = res.data;
    }
    const entities = [
      keys.entity('Product', product(2)),
      keys.entity('Product', product(3)),
      keys.entity('User', user(1)),
      keys.entity('User', user(2)),
    ];
    // Past their TTL (1 s), kept only for grace, and half a second more: past the L1 copies B took before the TTL ended.
    await until(
      async () => (await Promise.all(entities.map((key) => redis.client.pttl(key)))).every((pttl) => pttl > 0 && pttl < GRACE_MS - 500),
      {
        what: 'the entities half a second past their TTL',
        timeoutMs: 5_000,
      },
    );
    const servedBefore = await metricValue(`${b.url}/metrics`, 'cache_grace_served_total');
    db.pause();
    try {
      const write = await post(a, UPDATE, { id: product(3), name: 'written while MongoDB hung' }, token.token);
      expect(codes(write)).toEqual(['DATABASE_UNAVAILABLE']);
      const uncertain = write.errors?.[0]?.extensions?.reason === 'OUTCOME_UNKNOWN';
      for (const name of ['product', 'users'] as const) {
        const res = await post(b, READS[name]);
        expect(res.errors, name).toBeUndefined();
        expect(res.data, name).toEqual(warm[name]);
        expect(res.extensions?.cache?.grace, name).toBe(true);
      }
      const written = await post(b, READS.written);
      expect(JSON.stringify(written.data ?? null)).not.toContain('written while MongoDB hung');
      // An uncertain write was invalidated in Redis before A answered: B has nothing to serve.
      if (uncertain) expect(codes(written)).toEqual(['DATABASE_UNAVAILABLE']);
      else expect(written.data).toEqual(warm.written);
      expect(await metricValue(`${b.url}/metrics`, 'cache_grace_served_total')).toBeGreaterThan(servedBefore);
    } finally {
      db.resume();
    }
    // Back: both instances read what MongoDB holds (with A's write applied or not: it may land late).
    const held = async (): Promise<string | undefined> =>
      (await ProductModel.collection.findOne({ _id: new mongoose.Types.ObjectId(product(3)) }))?.name as string | undefined;
    for (const server of [a, b]) {
      await until(
        async () => ((await post(server, READS.written)).data?.product as { name?: string } | undefined)?.name === (await held()),
        {
          what: 'reads to converge to MongoDB',
          timeoutMs: 15_000,
          intervalMs: 200,
        },
      );
    }
  }, 60_000);
});
