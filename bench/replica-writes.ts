// What waiting for a replica costs a write (issue 24, failover): on a Redis Cluster of three
// masters with a replica each, `updateProduct` (refresh: the refresh and response invalidation
// scripts, each followed by WAIT) and `recordProductView` latency, one mutation at a time, on an
// instance with CACHE_REPLICA_ACKS=0 and one with the default (1, CACHE_REPLICA_WAIT_MS 50).
// Interleaved rounds, so that a noisy machine spreads over both alike.
// `npm run bench:replica-writes`; BENCH_WRITES (per scenario and round, default 150) and
// BENCH_WRITES_ROUNDS (default 3).
import { join } from 'node:path';
import { Cluster } from 'ioredis';
import mongoose from 'mongoose';
import { startEmbeddedMongo } from '../src/dev/embedded-mongo.js';
import { seedDemoData } from '../src/dev/seed.js';
import { createLogger } from '../src/logger.js';
import { ensureIndexes } from '../src/models/index.js';
import { startRedisCluster } from '../test/helpers/redis-cluster.js';
import {
  BENCH_VIEW_LIMITS,
  NODE_FLAGS,
  killAllChildren,
  projectRoot,
  startContender,
  stopAllChildren,
  type Contender,
} from './lib/contenders.js';
import { seededId } from './lib/queries.js';

const WRITES = Number(process.env.BENCH_WRITES ?? 150);
const ROUNDS = Number(process.env.BENCH_WRITES_ROUNDS ?? 3);
const UPDATE = 'mutation($id: ID!, $name: String!) { updateProduct(id: $id, input: { name: $name }) { id name } }';
const VIEW = 'mutation($id: ID!) { recordProductView(id: $id) { viewCount } }';
const READ = 'query($id: ID!) { product(id: $id) { id name priceCents viewCount } }';
const LOGIN = 'mutation { login(email: "admin@example.com", password: "admin-password") { token } }';
const PRODUCTS = Array.from({ length: 20 }, (_, i) => seededId('products', 480 + i));
const logger = createLogger({ level: 'fatal' });

interface Scenario {
  label: string;
  server: Contender;
  token: string;
  updatesMs: number[];
  viewsMs: number[];
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

function instance(label: string, mongodbUri: string, nodes: string[], namespace: string, replicaAcks: number): Promise<Contender> {
  return startContender({
    key: 'project',
    label,
    project: true,
    args: [...NODE_FLAGS, '--import', 'tsx', join(projectRoot, 'src', 'index.ts')],
    env: {
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      MONGODB_URI: mongodbUri,
      REDIS_CLUSTER_NODES: nodes.join(','),
      CACHE_NAMESPACE: namespace,
      CACHE_REPLICA_ACKS: String(replicaAcks),
      ...BENCH_VIEW_LIMITS,
    },
  });
}

async function round(scenario: Scenario, from: number): Promise<void> {
  for (let i = 0; i < WRITES; i += 1) {
    const id = PRODUCTS[i % PRODUCTS.length] ?? '';
    await post(scenario.server.url, READ, { id }); // cached before it is written
    let started = performance.now();
    await post(scenario.server.url, UPDATE, { id, name: `bench ${from + i}` }, scenario.token);
    scenario.updatesMs.push(performance.now() - started);
    started = performance.now();
    await post(scenario.server.url, VIEW, { id });
    scenario.viewsMs.push(performance.now() - started);
  }
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/**
 * How long a write exists only on its master: p50/p99 of a SET alone, and of a SET followed by
 * `WAIT 1 1000` in one pipeline (the difference is the replica's lag plus its acknowledgement).
 */
async function replicationLag(nodes: string[]): Promise<void> {
  const client = new Cluster(nodes.map((node) => ({ host: '127.0.0.1', port: Number(node.split(':')[1]) })));
  const alone: number[] = [];
  const waited: number[] = [];
  for (let i = 0; i < 2_000; i += 1) {
    const key = `lag:{${i % 50}}`;
    let started = performance.now();
    await client.set(key, String(i));
    alone.push(performance.now() - started);
    started = performance.now();
    await client.pipeline().set(key, String(i)).wait(1, 1_000).exec();
    waited.push(performance.now() - started);
  }
  client.disconnect();
  const f = (xs: number[], p: number): string =>
    percentile(
      [...xs].sort((x, y) => x - y),
      p,
    ).toFixed(3);
  console.log(`SET alone: p50 ${f(alone, 50)} ms, p99 ${f(alone, 99)} ms; SET + WAIT 1: p50 ${f(waited, 50)} ms, p99 ${f(waited, 99)} ms`);
}

async function main(): Promise<void> {
  const mongo = await startEmbeddedMongo({ logger });
  const cluster = await startRedisCluster({ replicas: 1 });
  try {
    const mongodbUri = `${mongo.uri}/bench-replica-writes`;
    await mongoose.connect(mongodbUri, { autoIndex: false });
    await ensureIndexes(logger);
    await seedDemoData({ logger, admin: { email: 'admin@example.com', password: 'admin-password' } });
    await mongoose.disconnect();
    await replicationLag(cluster.nodes);
    const without = await instance('no WAIT (CACHE_REPLICA_ACKS=0)', mongodbUri, cluster.nodes, 'rw-off', 0);
    const withWait = await instance('WAIT 1 50 (CACHE_REPLICA_ACKS=1)', mongodbUri, cluster.nodes, 'rw-on', 1);
    const token = async (c: Contender) => (await post<{ login: { token: string } }>(c.url, LOGIN)).login.token;
    const scenarios: Scenario[] = [
      { label: 'no WAIT (CACHE_REPLICA_ACKS=0)', server: without, token: await token(without), updatesMs: [], viewsMs: [] },
      { label: 'WAIT 1 50 (default)', server: withWait, token: await token(withWait), updatesMs: [], viewsMs: [] },
    ];
    for (let r = 0; r < ROUNDS; r += 1) {
      const order = r % 2 === 0 ? scenarios : [...scenarios].reverse();
      for (const scenario of order) await round(scenario, r * WRITES);
    }
    console.log(`one at a time, ${WRITES * ROUNDS} of each per scenario in ${ROUNDS} interleaved rounds, 3 masters + 3 replicas:`);
    console.log('| scenario | updateProduct p50 ms | p99 ms | recordProductView p50 ms | p99 ms |\n|---|---:|---:|---:|---:|');
    for (const s of scenarios) {
      const u = [...s.updatesMs].sort((x, y) => x - y);
      const v = [...s.viewsMs].sort((x, y) => x - y);
      const f = (n: number): string => n.toFixed(2);
      console.log(`| ${s.label} | ${f(percentile(u, 50))} | ${f(percentile(u, 99))} | ${f(percentile(v, 50))} | ${f(percentile(v, 99))} |`);
    }
  } finally {
    await stopAllChildren();
    await cluster.stop();
    await mongo.stop();
  }
}

process.on('exit', killAllChildren);
await main();
