// The response-cache flood of the second hostile review (issue 20), re-run: `npm run bench:flood`.
//
// A victim's login is locked (five wrong passwords from the attacker's address); then one
// anonymous client sends the catalog query (about 75 KB of answer) FLOOD_REQUESTS times with a
// random undeclared variable, and FLOOD_TEXTS times with a query text of its own (an alias), at
// 10 connections, to a server whose cache Redis has FLOOD_MAXMEMORY with `volatile-lru`. Reported
// per scenario: responses stored, the cache Redis's memory and evictions, and whether the
// victim is still locked. Scenarios: the rate limits in the cache's Redis (the default), and in
// a Redis of their own (REDIS_STATE_URL). In process (startApp), on embedded FerretDB and
// redis-servers of its own unless MONGODB_URI is given.
import { randomBytes } from 'node:crypto';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import mongoose from 'mongoose';
import { startApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { startEmbeddedMongo } from '../src/dev/embedded-mongo.js';
import { startEmbeddedRedis, type EmbeddedRedis } from '../src/dev/embedded-redis.js';
import { seedDemoData } from '../src/dev/seed.js';
import { createLogger } from '../src/logger.js';

const FLOOD_REQUESTS = Number(process.env.FLOOD_REQUESTS ?? 4_000);
const FLOOD_TEXTS = Number(process.env.FLOOD_TEXTS ?? 1_000);
const FLOOD_MAXMEMORY = process.env.FLOOD_MAXMEMORY ?? '48mb';
const CATALOG =
  'query Catalog($first: Int = 100) { products(first: $first) { edges { cursor node { id name description priceCents category stock viewCount reviewCount averageRating createdAt updatedAt } } } }';
const VICTIM = 'user7@example.com';

const logger = createLogger({ level: 'warn' });

/** One scenario's row. */
interface FloodRow {
  scenario: string;
  requests: number;
  'responses stored': number;
  'used_memory before MB': number;
  'used_memory after MB': number;
  'evicted keys': number;
  'victim, right password': string;
}

async function main(): Promise<void> {
  const mongo = process.env.MONGODB_URI ? null : await startEmbeddedMongo({ logger });
  const mongodbUri = process.env.MONGODB_URI ?? `${mongo?.uri}/bench-flood`;
  const rows: FloodRow[] = [];
  try {
    for (const separateState of [false, true]) rows.push(await scenario(mongodbUri, separateState));
  } finally {
    await mongo?.stop();
  }
  console.log(
    `\nResponse-cache flood: ${FLOOD_REQUESTS} catalog queries with a junk variable, then ${FLOOD_TEXTS} distinct texts, cache Redis ${FLOOD_MAXMEMORY} volatile-lru`,
  );
  console.table(rows);
}

async function scenario(mongodbUri: string, separateState: boolean): Promise<FloodRow> {
  const cacheRedis = await startEmbeddedRedis({ maxMemory: FLOOD_MAXMEMORY, appendOnly: false });
  const stateRedis = separateState ? await startEmbeddedRedis({ appendOnly: false }) : null;
  const config = loadConfig({
    NODE_ENV: 'production',
    METRICS_PORT: '0',
    PORT: '0',
    LOG_LEVEL: 'warn',
    MONGODB_URI: mongodbUri,
    REDIS_URL: cacheRedis.url,
    CACHE_NAMESPACE: `bench-flood-${separateState ? 'state' : 'shared'}`,
    ...(stateRedis ? { REDIS_STATE_URL: stateRedis.url } : {}),
  });
  if (stateRedis) {
    // What REDIS_STATE_URL is for: a Redis that never evicts.
    const state = new Redis(stateRedis.url);
    await state.config('SET', 'maxmemory-policy', 'noeviction');
    state.disconnect();
  }
  const app = await startApp({ config, logger, mongodbUri, redisUrl: cacheRedis.url });
  const inspect = new Redis(cacheRedis.url);
  try {
    await seedDemoData({
      logger,
      admin: { email: 'admin@example.com', password: 'admin-password' },
      users: 10,
      products: 200,
      reviews: 0,
      orders: 0,
    });
    const login = (password: string) =>
      post(app.url, {
        query: 'mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }',
        variables: { e: VICTIM, p: password },
      });
    for (let i = 0; i < 5; i += 1) await login(`wrong-${i}`);
    const memory = async () => Number(/^used_memory:(\d+)/m.exec(await inspect.info('memory'))?.[1]) / 2 ** 20;
    const before = await memory();
    await flood(app.url, FLOOD_REQUESTS, () => JSON.stringify({ query: CATALOG, variables: { junk: randomBytes(12).toString('hex') } }));
    let text = 0;
    await flood(app.url, FLOOD_TEXTS, () => JSON.stringify({ query: CATALOG.replace('products(', `p${(text += 1)}: products(`) }));
    const stored = (await inspect.keys(`${app.cache.keys.prefix}:{resp:*}:r:*`)).length;
    const after = await memory();
    const evicted = Number(/^evicted_keys:(\d+)/m.exec(await inspect.info('stats'))?.[1]);
    const answer = (await login('password123')) as { data?: unknown; errors?: { extensions?: { reason?: string; code?: string } }[] };
    const victim = answer.data
      ? 'let in (lockout lifted)'
      : `refused (${answer.errors?.[0]?.extensions?.reason ?? answer.errors?.[0]?.extensions?.code})`;
    return {
      scenario: separateState ? 'rate limits in REDIS_STATE_URL' : 'rate limits in the cache Redis (default)',
      requests: FLOOD_REQUESTS + FLOOD_TEXTS,
      'responses stored': stored,
      'used_memory before MB': Math.round(before * 10) / 10,
      'used_memory after MB': Math.round(after * 10) / 10,
      'evicted keys': evicted,
      'victim, right password': victim,
    };
  } finally {
    inspect.disconnect();
    await app.stop();
    await mongoose.connection.dropDatabase().catch(() => undefined);
    await stopAll([cacheRedis, stateRedis]);
  }
}

async function stopAll(servers: (EmbeddedRedis | null)[]): Promise<void> {
  for (const server of servers) await server?.stop();
}

async function post(url: string, body: unknown): Promise<unknown> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return response.json();
}

/** `count` POSTs at 10 connections, each body from `body()`. */
async function flood(url: string, count: number, body: () => string): Promise<void> {
  const result = await autocannon({
    url: `${url}/graphql`,
    connections: 10,
    amount: count,
    requests: [
      { method: 'POST', headers: { 'content-type': 'application/json' }, setupRequest: (request) => ({ ...request, body: body() }) },
    ],
  });
  if (result.non2xx || result.errors) throw new Error(`flood: ${result.non2xx} non-2xx responses, ${result.errors} errors`);
}

await main();
