// What the outage and early-refresh benches (issue 24) share: a project server of their own
// over their own FerretDB and Redis, the ageing of every entry past its TTL, a closed-loop load
// of N connections that classifies every answer, and the metrics they read.
import { join } from 'node:path';
import { Redis } from 'ioredis';
import mongoose from 'mongoose';
// The cache's own keyspace and stored-shape version: the prefix of every entry of a namespace.
import { CACHE_SCHEMA_VERSION } from '../../packages/graphql-lease-cache/src/create-cache.js';
import { createKeyspace } from '../../packages/graphql-lease-cache/src/keys.js';
import { seedDemoData } from '../../src/dev/seed.js';
import { createLogger } from '../../src/logger.js';
import { ProductModel, UserModel, ensureIndexes } from '../../src/models/index.js';
import { metricValue } from '../../test/helpers/metrics.js';
import { BENCH_VIEW_LIMITS, NODE_FLAGS, projectRoot, startContender, type Contender } from './contenders.js';

export const benchLogger = createLogger({ level: 'fatal' });

/** Seeds the demo data (60 users, 60 products) into `mongodbUri`, through a connection of its own. */
export async function seed(mongodbUri: string): Promise<void> {
  await mongoose.connect(mongodbUri, { autoIndex: false });
  await ensureIndexes(benchLogger);
  await seedDemoData({
    logger: benchLogger,
    admin: { email: 'admin@example.com', password: 'admin-password' },
    users: 60,
    products: 60,
    reviews: 300,
    orders: 0,
  });
  await mongoose.disconnect();
}

/** The project (`node --import tsx src/index.ts`, production) with `env` over the bench's defaults. */
export function startProject(label: string, env: Record<string, string>): Promise<Contender> {
  return startContender({
    key: 'project',
    label,
    project: true,
    args: [...NODE_FLAGS, '--import', 'tsx', join(projectRoot, 'src', 'index.ts')],
    env: { NODE_ENV: 'production', LOG_LEVEL: 'warn', ...BENCH_VIEW_LIMITS, ...env },
  });
}

/** A sample of the project's /metrics (summed over labels); NaN when the server has no such metric. */
export async function metric(contender: Contender, name: string): Promise<number> {
  return metricValue(`${contender.metricsUrl}/metrics`, name).catch(() => NaN);
}

/**
 * Ages every entry of `namespace` past its TTL. An entry is stored for its TTL plus the grace, so
 * one whose remaining PTTL is under the grace has expired and is kept only for grace: keys with
 * more are shortened to just under it (with no grace, deleted). Then waits until none has more.
 */
export async function expireAll(redisUrl: string, namespace: string, graceMs: number): Promise<number> {
  const redis = new Redis(redisUrl);
  try {
    const keys = await redis.keys(`${createKeyspace({ namespace, version: CACHE_SCHEMA_VERSION }).prefix}*`);
    for (const key of keys) {
      const pttl = await redis.pttl(key);
      if (pttl <= graceMs) continue;
      if (graceMs > 100) await redis.pexpire(key, graceMs - 100);
      else await redis.del(key);
    }
    for (let i = 0; i < 100; i += 1) {
      const pttls = await Promise.all(keys.map((key) => redis.pttl(key)));
      if (pttls.every((pttl) => pttl <= graceMs)) return keys.length;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error('entries still within their TTL after 10 s');
  } finally {
    redis.disconnect();
  }
}

/** One GraphQL POST; the parsed body (or null for a network error or a body that is not JSON). */
export async function post(url: string, body: string): Promise<{ data?: unknown; errors?: { extensions?: { code?: string } }[] } | null> {
  try {
    const response = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(60_000),
    });
    return (await response.json()) as { data?: unknown; errors?: { extensions?: { code?: string } }[] };
  } catch {
    return null;
  }
}

/** Every `{ id, name, priceCents? }` in `data` that MongoDB holds otherwise (by id), and how many were checked. */
export async function staleAgainstMongo(mongodbUri: string, data: unknown): Promise<{ stale: string[]; checked: number }> {
  const found: { id: string; name?: unknown; priceCents?: unknown }[] = [];
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) return value.forEach(walk);
    if (!value || typeof value !== 'object') return;
    const record = value as Record<string, unknown>;
    if (typeof record.id === 'string' && 'name' in record) found.push(record as (typeof found)[number]);
    Object.values(record).forEach(walk);
  };
  walk(data);
  await mongoose.connect(mongodbUri, { autoIndex: false });
  try {
    const stale: string[] = [];
    for (const item of found) {
      const model = item.id.startsWith('5eed0000') ? UserModel : ProductModel;
      const doc = await model.collection.findOne({ _id: new mongoose.Types.ObjectId(item.id) });
      if (doc?.name !== item.name || (item.priceCents !== undefined && doc?.priceCents !== item.priceCents)) stale.push(item.id);
    }
    return { stale, checked: found.length };
  } finally {
    await mongoose.disconnect();
  }
}

/** What a closed-loop load counted. */
export interface LoadCounts {
  reads: number;
  answered: number;
  errors: number;
  /** Answered with data other than the expected. */
  stale: number;
  /** Error codes seen, with their counts. */
  codes: Record<string, number>;
  latenciesMs: number[];
}

/**
 * `connections` loops, each sending the next of `bodies` (round robin) as soon as its previous
 * answer came, for `seconds`; every answer compared with `expected[i]` (the JSON of its data).
 */
export async function closedLoop(
  url: string,
  bodies: readonly string[],
  expected: readonly (string | null)[],
  connections: number,
  seconds: number,
): Promise<LoadCounts> {
  const counts: LoadCounts = { reads: 0, answered: 0, errors: 0, stale: 0, codes: {}, latenciesMs: [] };
  const until = performance.now() + seconds * 1_000;
  let next = 0;
  const loop = async (): Promise<void> => {
    while (performance.now() < until) {
      const i = next++ % bodies.length;
      const started = performance.now();
      const body = await post(url, bodies[i] as string);
      counts.latenciesMs.push(performance.now() - started);
      counts.reads += 1;
      if (!body || body.errors?.length || body.data === undefined) {
        counts.errors += 1;
        const code = body?.errors?.[0]?.extensions?.code ?? (body ? 'NO_DATA' : 'NETWORK');
        counts.codes[code] = (counts.codes[code] ?? 0) + 1;
        continue;
      }
      counts.answered += 1;
      const want = expected[i];
      if (want === null || want === undefined || JSON.stringify(body.data) === want) continue;
      counts.stale += 1;
      // The first few, for a look at what differed.
      if (counts.stale <= 3) console.error(`stale answer to query ${i}:\n  got  ${JSON.stringify(body.data)}\n  want ${want}`);
    }
  };
  await Promise.all(Array.from({ length: connections }, loop));
  return counts;
}

/** The `p`th percentile of `values` (not sorted). */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}
