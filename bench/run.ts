// npm run bench — the catalog query without a cache, cold, and warm: requests/s, p50 and p99
// latency, and MongoDB commands and Redis round trips per request. Loopback only, bounded in
// time. BENCH_SECONDS (default 10) and BENCH_CONNECTIONS (default 10) tune the load;
// MONGODB_URI / REDIS_URL point it at your own servers (default: embedded ones, as npm start).
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { startApp, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { startEmbeddedMongo } from '../src/dev/embedded-mongo.js';
import { startEmbeddedRedis } from '../src/dev/embedded-redis.js';
import { seedDemoData } from '../src/dev/seed.js';
import { createLogger } from '../src/logger.js';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 10);
const coldRequests = Number(process.env.BENCH_COLD_REQUESTS ?? 40);
/** `reads` or `views` runs only that part; default both. */
const only = process.env.BENCH_ONLY;
// Requests still in flight when a scenario's time is up fail as the app stops: not worth a log line.
const logger = createLogger({ level: 'fatal' });

/** The catalog page of the issues: a page of 50 products, their first reviews and their authors. */
export const CATALOG = '{ products(first: 50) { edges { node { id name priceCents reviews(first: 3) { rating author { name } } } } } }';
/** The catalog page with the field-cached aggregates of issue 4. */
export const CATALOG_FIELDS =
  '{ products(first: 50) { edges { node { id name priceCents reviewCount averageRating reviews(first: 3) { rating author { name } } } } } }';
/** 50 users by id: entity loads only. */
export const USERS_BY_ID = `{ users(ids: [${Array.from({ length: 50 }, (_, i) => `"5eed0000${(i + 1).toString(16).padStart(16, '0')}"`).join(', ')}]) { id name role } }`;

interface Row {
  scenario: string;
  'req/s': number;
  'p50 ms': number;
  'p99 ms': number;
  'MongoDB cmds/req': number;
  'Redis RTs/req': number;
}

async function main(): Promise<void> {
  const mongo = process.env.MONGODB_URI ? null : await startEmbeddedMongo({ logger });
  const redisServer = process.env.REDIS_URL ? null : await startEmbeddedRedis();
  const mongodbUri = process.env.MONGODB_URI ?? `${mongo?.uri}/bench`;
  const redisUrl = process.env.REDIS_URL ?? redisServer?.url ?? '';
  const scenarios: { name: string; query: string }[] = [
    { name: 'catalog', query: CATALOG },
    { name: 'catalog + cached fields', query: CATALOG_FIELDS },
    { name: 'users(ids: 50)', query: USERS_BY_ID },
  ];
  const rows: Row[] = [];
  const viewRows: ViewRow[] = [];
  try {
    for (const { name, query } of only === 'views' ? [] : scenarios) {
      rows.push(await withApp(mongodbUri, null, true, (app) => load(app, `${name}, no cache`, query)));
      rows.push(await withApp(mongodbUri, redisUrl, false, (app) => cold(app, `${name}, cold cache`, query)));
      rows.push(await withApp(mongodbUri, redisUrl, false, (app) => load(app, `${name}, warm cache`, query, true)));
    }
    if (only !== 'reads') {
      // recordProductView: queued (write-behind, the default) against a synchronous $inc per
      // view (the path a view takes when the queue is unavailable), both with the cache on.
      viewRows.push(await withApp(mongodbUri, redisUrl, true, (app) => viewLoad(app, 'recordProductView, write-behind')));
      viewRows.push(
        await withApp(mongodbUri, redisUrl, false, (app) => viewLoad(app, 'recordProductView, synchronous $inc'), {
          withoutWriteBehindQueue: true,
        }),
      );
    }
  } finally {
    await mongo?.stop();
    await redisServer?.stop();
  }
  if (rows.length) {
    console.log(
      `\n${seconds} s per loaded scenario, ${connections} connections; cold: ${coldRequests} sequential requests, cache emptied before each`,
    );
    console.table(rows);
  }
  for (const { name } of scenarios) {
    const noCache = rows.find((r) => r.scenario === `${name}, no cache`);
    const warm = rows.find((r) => r.scenario === `${name}, warm cache`);
    if (noCache && warm) console.log(`${name}: warm / no-cache throughput ${(warm['req/s'] / Math.max(noCache['req/s'], 1)).toFixed(1)}x`);
  }
  const [behind, sync] = viewRows;
  if (behind && sync) {
    console.log(`\nrecordProductView over ${VIEWED_PRODUCTS} products, ${seconds} s, ${connections} connections`);
    console.table(viewRows);
    console.log(`views: write-behind / synchronous $inc throughput ${(behind['req/s'] / Math.max(sync['req/s'], 1)).toFixed(1)}x`);
  }
}

interface ViewRow {
  scenario: string;
  views: number;
  'req/s': number;
  'p50 ms': number;
  'p99 ms': number;
  /** update and findAndModify commands. */
  'MongoDB write cmds': number;
  'write cmds per 1,000 views': number;
  'documents written': number;
}

const VIEWED_PRODUCTS = 50;

/** Views spread over the first products under load; MongoDB updates counted until the queue is empty. */
async function viewLoad(app: App, scenario: string): Promise<ViewRow> {
  const count = async (metric: { get(): Promise<{ values: { labels: Record<string, unknown>; value: number }[] }> }, labels: string[]) =>
    (await metric.get()).values
      .filter((v) => labels.includes(String(v.labels.command ?? v.labels.type)))
      .reduce((sum, v) => sum + v.value, 0);
  const writeCommands = () => count(app.metrics.mongoCommands, ['update', 'findAndModify']);
  // Write-behind: documents the worker updated; synchronous: one findAndModify per view.
  const documents = async () =>
    (await count(app.cache.writeBehind.metrics.writes, ['Product'])) + (await count(app.metrics.mongoCommands, ['findAndModify']));
  const before = { commands: await writeCommands(), documents: await documents() };
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
  await sleep(seconds * 500);
  // Until the worker has applied every queued view.
  const client = app.cache.store?.client;
  while (client && (await client.xlen(app.cache.keys.writeQueue.stream)) > 0) await sleep(50);
  const views = result.requests.total;
  const commands = (await writeCommands()) - before.commands;
  return {
    scenario,
    views,
    'req/s': Math.round(result.requests.average),
    'p50 ms': result.latency.p50,
    'p99 ms': result.latency.p99,
    'MongoDB write cmds': commands,
    'write cmds per 1,000 views': round((commands / Math.max(views, 1)) * 1_000),
    'documents written': (await documents()) - before.documents,
  };
}

async function withApp<T>(
  mongodbUri: string,
  redisUrl: string | null,
  seed: boolean,
  fn: (app: App) => Promise<T>,
  options: { withoutWriteBehindQueue?: boolean } = {},
): Promise<T> {
  const config = loadConfig({
    NODE_ENV: 'production',
    PORT: '0',
    LOG_LEVEL: 'warn',
    MONGODB_URI: mongodbUri,
    ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
    CACHE_NAMESPACE: 'bench',
  });
  const app = await startApp({ config, logger, mongodbUri, redisUrl, ...options });
  try {
    if (seed) await seedDemoData({ logger, admin: config.seedAdmin });
    return await fn(app);
  } finally {
    await app.stop();
  }
}

/** Requests/s and latency under load, with what each request cost. */
async function load(app: App, scenario: string, query: string, warmUp = false): Promise<Row> {
  // Twice: children read with their lists (reviews) are filled by id on the second request.
  if (warmUp) for (let i = 0; i < 2; i += 1) await post(app, query);
  const before = await counters(app);
  const result = await autocannon({
    url: `${app.url}/graphql`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query }),
    connections,
    duration: seconds,
  });
  if (result.non2xx || result.errors) throw new Error(`${scenario}: ${result.non2xx} non-2xx responses, ${result.errors} errors`);
  await sleep(seconds * 500); // let the requests still in flight finish, so that they are counted whole
  const after = await counters(app);
  const requests = after.requests - before.requests;
  return {
    scenario,
    'req/s': Math.round(result.requests.average),
    'p50 ms': result.latency.p50,
    'p99 ms': result.latency.p99,
    'MongoDB cmds/req': round((after.mongo - before.mongo) / requests),
    'Redis RTs/req': round((after.redis - before.redis) / requests),
  };
}

/** One request at a time, each after emptying the cache: what a cold request costs. */
async function cold(app: App, scenario: string, query: string): Promise<Row> {
  const client = new Redis(app.config.redisUrl ?? '');
  const latencies: number[] = [];
  let mongo = 0;
  let redis = 0;
  try {
    for (let i = 0; i < coldRequests; i += 1) {
      await emptyNamespace(client, app.cache.keys.prefix);
      const before = await counters(app);
      const start = performance.now();
      await post(app, query);
      latencies.push(performance.now() - start);
      const after = await counters(app);
      mongo += after.mongo - before.mongo;
      redis += after.redis - before.redis;
    }
  } finally {
    client.disconnect();
  }
  latencies.sort((a, b) => a - b);
  const mean = latencies.reduce((s, x) => s + x, 0) / latencies.length;
  return {
    scenario,
    'req/s': Math.round(1_000 / mean),
    'p50 ms': round(latencies[Math.floor(latencies.length * 0.5)] ?? 0),
    'p99 ms': round(latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))] ?? 0),
    'MongoDB cmds/req': round(mongo / coldRequests),
    'Redis RTs/req': round(redis / coldRequests),
  };
}

async function post(app: App, query: string): Promise<void> {
  const res = await fetch(`${app.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query }),
  });
  const body = (await res.json()) as { errors?: unknown };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
}

/** Completed requests, and the MongoDB commands and Redis round trips they made (the per-request histograms). */
async function counters(app: App): Promise<{ requests: number; mongo: number; redis: number }> {
  const [mongo, redis] = await Promise.all([app.metrics.requestMongoCommands.get(), app.metrics.requestRedisRoundTrips.get()]);
  const pick = (values: typeof mongo.values, suffix: string) => values.find((v) => v.metricName?.endsWith(suffix))?.value ?? 0;
  return { requests: pick(mongo.values, '_count'), mongo: pick(mongo.values, '_sum'), redis: pick(redis.values, '_sum') };
}

async function emptyNamespace(client: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    if (keys.length) await client.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

await main();
