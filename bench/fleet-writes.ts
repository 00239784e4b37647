// What the fleet protocol costs a write (issue 23): `updateProduct` latency, one mutation at a
// time, with the L1 off, with it on for one instance, and on for two instances sharing one Redis
// (the write then waits for the other instance's acknowledgement). Interleaved rounds, so that a
// noisy machine spreads over all three alike. `npm run bench:writes`; BENCH_WRITES (per scenario
// and round, default 150) and BENCH_WRITES_ROUNDS (default 3).
import { join } from 'node:path';
import mongoose from 'mongoose';
import { startEmbeddedMongo } from '../src/dev/embedded-mongo.js';
import { startEmbeddedRedis } from '../src/dev/embedded-redis.js';
import { seedDemoData } from '../src/dev/seed.js';
import { seededId } from './lib/queries.js';
import { createLogger } from '../src/logger.js';
import { ensureIndexes } from '../src/models/index.js';
import {
  BENCH_VIEW_LIMITS,
  NODE_FLAGS,
  killAllChildren,
  projectRoot,
  startContender,
  stopAllChildren,
  type Contender,
} from './lib/contenders.js';

const WRITES = Number(process.env.BENCH_WRITES ?? 150);
const ROUNDS = Number(process.env.BENCH_WRITES_ROUNDS ?? 3);
const UPDATE = 'mutation($id: ID!, $name: String!) { updateProduct(id: $id, input: { name: $name }) { id name } }';
const READ = 'query($id: ID!) { product(id: $id) { id name priceCents } }';
const LOGIN = 'mutation { login(email: "admin@example.com", password: "admin-password") { token } }';
const PRODUCTS = Array.from({ length: 20 }, (_, i) => seededId('products', 480 + i));
const logger = createLogger({ level: 'fatal' });

interface Scenario {
  label: string;
  /** The instance written through, and the others (read from, so that their L1s hold the products). */
  writer: Contender;
  others: Contender[];
  token: string;
  latenciesMs: number[];
}

async function post<T>(url: string, query: string, variables: Record<string, unknown> = {}, token?: string): Promise<T> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: T; errors?: unknown[] };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data as T;
}

function instance(key: string, mongodbUri: string, redisUrl: string, namespace: string, l1: boolean): Promise<Contender> {
  return startContender({
    key: 'project',
    label: key,
    project: true,
    args: [...NODE_FLAGS, '--import', 'tsx', join(projectRoot, 'src', 'index.ts')],
    env: {
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      MONGODB_URI: mongodbUri,
      REDIS_URL: redisUrl,
      CACHE_NAMESPACE: namespace,
      CACHE_L1: String(l1),
      ...BENCH_VIEW_LIMITS,
    },
  });
}

async function round(scenario: Scenario, from: number): Promise<void> {
  for (let i = 0; i < WRITES; i += 1) {
    const id = PRODUCTS[i % PRODUCTS.length] ?? '';
    // Every instance holds the product (its L1 too) before it is written.
    for (const other of [scenario.writer, ...scenario.others]) await post(other.url, READ, { id });
    const started = performance.now();
    await post(scenario.writer.url, UPDATE, { id, name: `bench ${from + i}` }, scenario.token);
    scenario.latenciesMs.push(performance.now() - started);
  }
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function main(): Promise<void> {
  const mongo = await startEmbeddedMongo({ logger });
  const redis = await startEmbeddedRedis();
  try {
    const mongodbUri = `${mongo.uri}/bench-writes`;
    await mongoose.connect(mongodbUri, { autoIndex: false });
    await ensureIndexes(logger);
    await seedDemoData({ logger, admin: { email: 'admin@example.com', password: 'admin-password' } });
    await mongoose.disconnect();
    const off = await instance('L1 off, one instance', mongodbUri, redis.url, 'bw-off', false);
    const one = await instance('L1 on, one instance', mongodbUri, redis.url, 'bw-one', true);
    const [a, b] = await Promise.all([0, 1].map(() => instance('L1 on, two instances', mongodbUri, redis.url, 'bw-two', true)));
    if (!a || !b) throw new Error('the two instances did not start');
    const token = async (c: Contender) => (await post<{ login: { token: string } }>(c.url, LOGIN)).login.token;
    const scenarios: Scenario[] = [
      { label: 'L1 off, one instance', writer: off, others: [], token: await token(off), latenciesMs: [] },
      { label: 'L1 on, one instance', writer: one, others: [], token: await token(one), latenciesMs: [] },
      { label: 'L1 on, two instances', writer: a, others: [b], token: await token(a), latenciesMs: [] },
    ];
    for (let r = 0; r < ROUNDS; r += 1) {
      const order = r % 2 === 0 ? scenarios : [...scenarios].reverse();
      for (const scenario of order) await round(scenario, r * WRITES);
    }
    console.log(`updateProduct latency, one at a time, ${WRITES * ROUNDS} writes per scenario in ${ROUNDS} interleaved rounds:`);
    console.log('| scenario | writes | p50 ms | p99 ms |\n|---|---:|---:|---:|');
    for (const s of scenarios) {
      const sorted = [...s.latenciesMs].sort((x, y) => x - y);
      console.log(`| ${s.label} | ${sorted.length} | ${percentile(sorted, 50).toFixed(2)} | ${percentile(sorted, 99).toFixed(2)} |`);
    }
  } finally {
    await stopAllChildren();
    await redis.stop();
    await mongo.stop();
  }
}

process.on('exit', killAllChildren);
await main();
