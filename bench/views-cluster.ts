// What a replica's acknowledgement costs per view (npm run bench:views-cluster): recordProductView
// under load on a Redis Cluster of 3 masters and 3 replicas, written behind, with
// CACHE_REPLICA_ACKS=0 (acknowledged once the master has the change) and =1 (`WAIT 1`
// after each enqueue: also a replica has it). Views/s, p50 and p99, and how many views fell back
// to a synchronous write (a replica not answering within CACHE_REPLICA_WAIT_MS). In process
// (startApp), over an embedded FerretDB/MongoDB (MONGODB_URI to use your own). BENCH_SECONDS
// (default 10) and BENCH_CONNECTIONS (default 10). Then the enqueue alone (the cache's queue, no
// HTTP, no MongoDB), with and without WAIT: what the acknowledgement adds to each view's Redis call.
import autocannon from 'autocannon';
import { createCache, createRedisClient } from 'graphql-lease-cache';
import mongoose from 'mongoose';
import { startApp, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { startEmbeddedMongo } from '../src/dev/embedded-mongo.js';
import { seedDemoData } from '../src/dev/seed.js';
import { createLogger } from '../src/logger.js';
import { ensureIndexes } from '../src/models/index.js';
import { startRedisCluster } from '../test/helpers/redis-cluster.js';
import { BENCH_VIEW_LIMITS } from './lib/contenders.js';

const VIEWED_PRODUCTS = 50;
const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 10);
const logger = createLogger({ level: 'warn' });

/** One scenario's figures. */
interface Row {
  scenario: string;
  views: number;
  'views/s': number;
  'p50 ms': number;
  'p99 ms': number;
  'written behind': number;
  'synchronous fallbacks': number;
}

async function main(): Promise<void> {
  const mongo = process.env.MONGODB_URI ? null : await startEmbeddedMongo({ logger });
  const mongodbUri = process.env.MONGODB_URI ?? `${mongo?.uri}/bench-views-cluster`;
  const cluster = await startRedisCluster({ replicas: 1 });
  try {
    await mongoose.connect(mongodbUri, { autoIndex: false });
    await ensureIndexes(logger);
    await seedDemoData({ logger, admin: { email: 'admin@example.com', password: 'admin-password' } });
    await mongoose.disconnect();
    const rows: Row[] = [];
    // Each twice, alternating, so that a warming machine does not favour one.
    for (const round of [1, 2]) {
      for (const replicas of ['0', '1']) rows.push(await scenario(mongodbUri, cluster.nodes, replicas, round));
    }
    console.log(`\nrecordProductView over ${VIEWED_PRODUCTS} products, ${seconds} s, ${connections} connections, 3 masters + 3 replicas`);
    console.table(rows);
    const enqueues: EnqueueRow[] = [];
    for (const round of [1, 2]) {
      for (const replicas of [0, 1]) enqueues.push(await enqueueLoad(cluster.nodes, replicas, round));
    }
    console.log(`\n${ENQUEUES} enqueues over ${VIEWED_PRODUCTS} products, ${connections} concurrent, 3 masters + 3 replicas`);
    console.table(enqueues);
  } finally {
    await cluster.stop();
    await mongo?.stop();
  }
}

async function scenario(mongodbUri: string, nodes: readonly string[], replicas: string, round: number): Promise<Row> {
  const config = loadConfig({
    NODE_ENV: 'production',
    METRICS_PORT: '0',
    ...BENCH_VIEW_LIMITS,
    PORT: '0',
    LOG_LEVEL: 'warn',
    MONGODB_URI: mongodbUri,
    REDIS_CLUSTER_NODES: nodes.join(','),
    CACHE_NAMESPACE: `bench-views-cluster-${replicas}-${round}`,
    CACHE_REPLICA_ACKS: replicas,
  });
  const app = await startApp({ config, logger, mongodbUri, redisUrl: null });
  try {
    return await viewLoad(app, `WAIT ${replicas === '0' ? 'off' : '1'} (round ${round})`);
  } finally {
    await app.stop();
  }
}

async function viewLoad(app: App, scenario: string): Promise<Row> {
  const counted = async (kind: 'enqueued' | 'fallback'): Promise<number> =>
    (await app.cacheMetrics.writeBehind[kind].get()).values.filter((v) => v.labels.type === 'Product').reduce((sum, v) => sum + v.value, 0);
  const before = { enqueued: await counted('enqueued'), fallback: await counted('fallback') };
  let next = 0;
  const result = await autocannon({
    url: `${app.url}/graphql`,
    connections,
    duration: seconds,
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        setupRequest: (request) => {
          const id = `5eed0001${((next++ % VIEWED_PRODUCTS) + 1).toString(16).padStart(16, '0')}`;
          return {
            ...request,
            body: JSON.stringify({ query: 'mutation($id: ID!) { recordProductView(id: $id) { viewCount } }', variables: { id } }),
          };
        },
      },
    ],
  });
  if (result.non2xx || result.errors) throw new Error(`${scenario}: ${result.non2xx} non-2xx responses, ${result.errors} errors`);
  const views = result.requests.total;
  return {
    scenario,
    views,
    'views/s': Math.round(views / Math.max(result.duration, 1e-3)),
    'p50 ms': result.latency.p50,
    'p99 ms': result.latency.p99,
    'written behind': (await counted('enqueued')) - before.enqueued,
    'synchronous fallbacks': (await counted('fallback')) - before.fallback,
  };
}

const ENQUEUES = 5_000;

/** The figures of one run of enqueues. */
interface EnqueueRow {
  scenario: string;
  'enqueues/s': number;
  'p50 ms': number;
  'p99 ms': number;
  refused: number;
}

/** {@link ENQUEUES} enqueues of a view from `connections` concurrent callers, each call timed. */
async function enqueueLoad(nodes: readonly string[], replicas: number, round: number): Promise<EnqueueRow> {
  const redis = createRedisClient({ url: '', clusterNodes: nodes, logger });
  await redis.connect();
  const cache = createCache({
    redis,
    settings: { namespace: `bench-enqueue-${replicas}-${round}` },
    writeBehindTypes: ['Product'],
    replicaAcks: { replicas },
    writeBehindMaxPending: 1_000_000,
  });
  const latencies: number[] = [];
  let refused = 0;
  let next = 0;
  const started = performance.now();
  try {
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (next < ENQUEUES) {
          const id = `p${next++ % VIEWED_PRODUCTS}`;
          const at = performance.now();
          await cache.writeBehind.enqueue('Product', id, { inc: { viewCount: 1 }, at: Date.now() }).catch(() => (refused += 1));
          latencies.push(performance.now() - at);
        }
      }),
    );
  } finally {
    cache.close();
    redis.disconnect();
  }
  const seconds = (performance.now() - started) / 1_000;
  latencies.sort((a, b) => a - b);
  const quantile = (q: number): number => Math.round((latencies[Math.floor(q * (latencies.length - 1))] ?? 0) * 100) / 100;
  return {
    scenario: `enqueue, WAIT ${replicas === 0 ? 'off' : replicas} (round ${round})`,
    'enqueues/s': Math.round(ENQUEUES / seconds),
    'p50 ms': quantile(0.5),
    'p99 ms': quantile(0.99),
    refused,
  };
}

await main();
