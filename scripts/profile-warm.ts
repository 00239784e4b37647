// npm run profile -- [catalog|users|product]: a CPU profile of the warm read path. Starts embedded
// services (or MONGODB_URI / REDIS_URL), seeds the demo data, warms the cache, then loads the
// chosen query for PROFILE_SECONDS (default 15) with 10 connections while the V8 profiler runs
// in this process, and writes `profiles/<query>-<time>.cpuprofile` with a summary of the top
// self and total times. Loopback only, bounded in time.
import { Session } from 'node:inspector/promises';
import { mkdir, writeFile } from 'node:fs/promises';
import autocannon from 'autocannon';
import { startApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { startEmbeddedMongo } from '../src/dev/embedded-mongo.js';
import { startEmbeddedRedis } from '../src/dev/embedded-redis.js';
import { seedDemoData } from '../src/dev/seed.js';
import { createLogger } from '../src/logger.js';
import { summarize, summarizeAllocations } from './cpuprofile-summary.js';

const QUERIES: Record<string, string> = {
  catalog:
    '{ products(first: 50) { edges { node { id name priceCents reviewCount averageRating reviews(first: 3) { rating author { name } } } } } }',
  users: `{ users(ids: [${Array.from({ length: 50 }, (_, i) => `"5eed0000${(i + 1).toString(16).padStart(16, '0')}"`).join(', ')}]) { id name role } }`,
  product:
    '{ product(id: "5eed00010000000000000001") { id name priceCents reviewCount averageRating reviews(first: 10) { id rating body author { name } } } }',
};

const which = process.argv[2] ?? 'catalog';
const query = QUERIES[which];
if (!query) throw new Error(`unknown query ${which}: one of ${Object.keys(QUERIES).join(', ')}`);
const seconds = Number(process.env.PROFILE_SECONDS ?? 15);
const logger = createLogger({ level: 'warn' });

const mongo = process.env.MONGODB_URI ? null : await startEmbeddedMongo({ logger });
const redis = process.env.REDIS_URL ? null : await startEmbeddedRedis();
const mongodbUri = process.env.MONGODB_URI ?? `${mongo?.uri}/profile`;
const redisUrl = process.env.REDIS_URL ?? redis?.url ?? '';
const config = loadConfig({
  NODE_ENV: 'production',
  PORT: '0',
  LOG_LEVEL: 'warn',
  MONGODB_URI: mongodbUri,
  REDIS_URL: redisUrl,
  CACHE_NAMESPACE: 'profile',
  // The entity and field path (issue 10); CACHE_RESPONSES=true profiles whole-response hits.
  CACHE_RESPONSES: 'false',
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('CACHE_'))),
});
const app = await startApp({ config, logger, mongodbUri, redisUrl });
try {
  await seedDemoData({ logger, admin: config.seedAdmin });
  const post = () =>
    fetch(`${app.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) });
  for (let i = 0; i < 3; i += 1) await (await post()).json();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  // PROFILE_HEAP=1: also where the load allocates (sampled), to see what feeds the collector.
  const heap = process.env.PROFILE_HEAP === '1';
  if (heap) await session.post('HeapProfiler.startSampling', { samplingInterval: 4096 });
  const result = await autocannon({
    url: `${app.url}/graphql`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query }),
    connections: 10,
    duration: seconds,
  });
  const { profile } = await session.post('Profiler.stop');
  if (heap) {
    const { profile: allocations } = await session.post('HeapProfiler.stopSampling');
    console.log(summarizeAllocations(allocations, 30));
  }
  session.disconnect();
  await mkdir('profiles', { recursive: true });
  const file = `profiles/${which}-${Date.now()}.cpuprofile`;
  await writeFile(file, JSON.stringify(profile));
  console.log(
    `${which}: ${Math.round(result.requests.average)} req/s (in-process load generator), ${result.non2xx} non-2xx; profile: ${file}`,
  );
  console.log(summarize(profile, 25));
} finally {
  await app.stop();
  await mongo?.stop();
  await redis?.stop();
}
