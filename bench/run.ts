// npm run bench — this project against its peers, side by side, on the same data and the same
// Redis (issues 10, 11 and 23). Eight contenders, each a child process on its own port (two for
// the seventh), started once:
//
//   1. this project with its entity and field cache and its L1, warm, no response cache
//      (NODE_ENV=production node dist/index.js, after npm run build; CACHE_RESPONSES=false, CACHE_L1=true)
//   2. the same with every layer: its whole-response cache too (CACHE_RESPONSES=true)
//   3. (mixed only) the same as 2 with CACHE_L1=false: the L1's reference
//   4. (mixed only) the same as 2 in two processes on the one Redis and database, the load
//      alternating between them (autocannon's connections round-robin, the writers per write)
//   5. this project without a cache (the same, no REDIS_URL)
//   6. a plain Apollo Server 5 + DataLoader peer over MongoDB (bench/peers/apollo-peer.ts)
//   7. the same peer with Apollo's response cache plugin on the same Redis
//   8. the same peer over the whole data set in process memory: the floor for executing a query
//
// Parts (BENCH_ONLY, comma-separated; default reads,cold,mixed):
//   reads  each query (BENCH_QUERIES: catalog,users,product), each contender: a calibrating round 0 (warm-up), then BENCH_ROUNDS rounds,
//          interleaved (every contender once per round, in a new order each round), each a fixed
//          number of requests sized to last about BENCH_SECONDS; the median round is reported.
//   cold   the project, one request at a time, its cache emptied before each (BENCH_COLD_REQUESTS).
//   mixed  readers and sequential writers on 5 hot products, every read checked for staleness
//          (bench/lib/mixed.ts), BENCH_MIXED_SECONDS per contender in each of BENCH_MIXED_ROUNDS
//          interleaved rounds; the median round is reported.
//   views  the write-behind views benchmark, in process (bench/views.ts); not run by default.
//   varnish  varnishd with the shipped VCL in front of the response-cache contender, the catalog
//          as a GET for BENCH_SECONDS: Varnish's hit rate and req/s (bench/lib/varnish.ts);
//          skipped without varnishd; not run by default.
//
// Then prints the tables and writes bench/results.md and bench/results.svg (unless
// BENCH_WRITE_RESULTS=0). One embedded FerretDB/MongoDB and one embedded Redis for the whole run,
// seeded once with the demo data; MONGODB_URI / REDIS_URL to use your own. Loopback only.
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { cpus, totalmem, type as osType, release } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import mongoose from 'mongoose';
import { startEmbeddedMongo } from '../src/dev/embedded-mongo.js';
import { startEmbeddedRedis } from '../src/dev/embedded-redis.js';
import { seedDemoData } from '../src/dev/seed.js';
import { createLogger } from '../src/logger.js';
import { ProductModel, ensureIndexes } from '../src/models/index.js';
import {
  CONTENDER_KEYS,
  contenderDatabaseUri,
  contenderSpecs,
  killAllChildren,
  projectRoot,
  startContender,
  stopAllChildren,
  type Contender,
  type ContenderKey,
} from './lib/contenders.js';
import { calibrate, graphql, loadAmount, median } from './lib/load.js';
import { openSessions, runMixed, type MixedResult, type Sessions, type StaleRead } from './lib/mixed.js';
import { READ_QUERIES, seededId, type ReadQuery } from './lib/queries.js';
import { runVarnishCatalog } from './lib/varnish.js';
import { MIN_REQUESTS, markdownTables, ratios, svgChart, type ColdRow, type ReadCell, type Results } from './lib/report.js';
import { runViewsBenchmark } from './views.js';

const PARTS = ['reads', 'cold', 'mixed', 'views', 'varnish'] as const;
type Part = (typeof PARTS)[number];

const settings = {
  /** Target length of one contender's run in a round, in seconds; default 2.5. */
  seconds: positiveNumber('BENCH_SECONDS', 2.5),
  /** Measured rounds per query (after the calibrating round 0); default 3. */
  rounds: positiveInteger('BENCH_ROUNDS', 3),
  /** Concurrent connections of the read load and of the mixed readers; default 10. */
  connections: positiveInteger('BENCH_CONNECTIONS', 10),
  /** The mixed workload's length per contender and round, in seconds; default 4. */
  mixedSeconds: positiveNumber('BENCH_MIXED_SECONDS', 3),
  /** Each mixed writer's interval between the starts of its writes (open loop), in milliseconds; default 100. */
  mixedWriteIntervalMs: positiveNumber('BENCH_MIXED_WRITE_INTERVAL_MS', 100),
  /** Rounds of the mixed workload, every contender once per round in a new order; default 3. */
  mixedRounds: positiveInteger('BENCH_MIXED_ROUNDS', 3),
  /** Sequential cold requests per query; default 5. */
  coldRequests: positiveInteger('BENCH_COLD_REQUESTS', 5),
  parts: parseParts(process.env.BENCH_ONLY),
  contenders: parseContenders(process.env.BENCH_CONTENDERS),
  /** The read queries (BENCH_QUERIES, comma-separated keys: catalog, users, product); default all. */
  queries: parseQueries(process.env.BENCH_QUERIES),
  /** How the project runs: dist (npm run build, then node dist/index.js; the default) or tsx (node --import tsx src/index.ts). */
  projectRuntime: parseRuntime(process.env.BENCH_PROJECT_RUNTIME),
  writeResults: process.env.BENCH_WRITE_RESULTS !== '0',
};

const PROJECT_NAMESPACE = 'bench-project';
const RESPONSE_CACHE_NAMESPACE = 'bench-apollo';
/** The five newest products: the first five of the catalog page. */
const HOT_IDS = [499, 498, 497, 496, 495].map((i) => seededId('products', i));
const logger = createLogger({ level: 'fatal' });

const stoppers: (() => Promise<unknown>)[] = [];
let cleaning: Promise<void> | null = null;
/** Stops every child process and service started here; idempotent. */
function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    await stopAllChildren();
    for (const stop of stoppers.reverse()) await stop().catch(() => undefined);
  })();
  return cleaning;
}
process.on('SIGINT', () => void cleanUp().finally(() => process.exit(130)));
process.on('SIGTERM', () => void cleanUp().finally(() => process.exit(143)));
process.on('exit', killAllChildren);

async function main(): Promise<void> {
  const started = performance.now();
  const needsContenders =
    settings.parts.has('reads') || settings.parts.has('cold') || settings.parts.has('mixed') || settings.parts.has('varnish');
  // The build runs while the services start: both mostly wait.
  const build = needsContenders && settings.projectRuntime === 'dist' ? buildProject() : Promise.resolve(settings.projectRuntime);
  const mongo = process.env.MONGODB_URI ? null : await startEmbeddedMongo({ logger });
  if (mongo) stoppers.push(() => mongo.stop());
  const redisServer = process.env.REDIS_URL ? null : await startEmbeddedRedis();
  if (redisServer) stoppers.push(() => redisServer.stop());
  const mongodbUri = process.env.MONGODB_URI ?? `${mongo?.uri}/bench`;
  const redisUrl = process.env.REDIS_URL ?? redisServer?.url ?? '';
  const redis = new Redis(redisUrl);
  stoppers.push(async () => redis.disconnect());

  // Every contender gets its own database, seeded alike (the seed is deterministic): the mixed
  // workload writes, and one contender's writes must not change another's data behind its cache.
  stoppers.push(() => mongoose.disconnect());
  for (const key of settings.contenders) {
    await mongoose.connect(contenderDatabaseUri(mongodbUri, key), { autoIndex: false });
    await ensureIndexes(logger);
    await seedDemoData({ logger, admin: { email: 'admin@example.com', password: 'admin-password' } });
    await mongoose.disconnect();
  }
  await mongoose.connect(mongodbUri, { autoIndex: false });
  await ensureIndexes(logger);
  await seedDemoData({ logger, admin: { email: 'admin@example.com', password: 'admin-password' } });
  // A rerun on your own Redis starts from empty caches (only this benchmark's namespaces).
  await deleteKeys(redis, `${PROJECT_NAMESPACE}:*`);
  await deleteKeys(redis, `${PROJECT_NAMESPACE}-responses:*`);
  await deleteKeys(redis, `${RESPONSE_CACHE_NAMESPACE}:*`);

  const results: Results = {
    meta: {
      date: new Date().toISOString(),
      command: commandLine(),
      machine: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, ${osType()} ${release()}, Node ${process.version}`,
      mongodb: await mongoServer(mongo?.kind ?? null),
      redis: `Redis ${/redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? '?'}${redisServer ? ' (embedded: AOF everysec, maxmemory 256mb volatile-lru)' : ' (REDIS_URL)'}`,
      project: '',
      settings: `${settings.connections} connections, ${settings.rounds} rounds of ~${settings.seconds} s`,
      durationSeconds: 0,
    },
    contenders: [],
    reads: [],
    cold: [],
    mixed: [],
    mixedShape:
      `${HOT_IDS.length} hot products (the newest, all on the first catalog page); ${settings.connections} readers (each product by id in turn, ` +
      `and the first catalog page of 20 every sixth read); ${HOT_IDS.length} price writers (one per hot product), one createReview writer and one ` +
      `recordProductView writer, each sequential and open loop, starting a write every ${settings.mixedWriteIntervalMs} ms ` +
      `(the same writes for every contender that keeps up); ${settings.mixedSeconds} s per contender in each of ` +
      `${settings.mixedRounds} interleaved rounds; the table shows each contender's median round (by reads/s)`,
  };

  if (needsContenders) {
    const projectRuntime = await build;
    results.meta.project = `${projectRuntime === 'dist' ? 'node dist/index.js (npm run build)' : 'node --import tsx src/index.ts'} at ${await gitDescribe()}`;
    const specs = contenderSpecs({
      mongodbUri: (key) => contenderDatabaseUri(mongodbUri, key),
      redisUrl,
      projectRuntime,
      projectNamespace: PROJECT_NAMESPACE,
      responseCacheNamespace: RESPONSE_CACHE_NAMESPACE,
    }).filter((spec) => settings.contenders.has(spec.key));
    results.contenders = specs;
    console.log(`starting ${specs.length} contenders (project: ${results.meta.project})`);
    const contenders = await Promise.all(specs.map((spec) => startContender(spec)));
    await checkAnswers(contenders);
    if (settings.parts.has('reads')) await runReads(contenders, results);
    const project = contenders.find((c) => c.spec.key === 'project');
    if (settings.parts.has('cold') && project) await runCold(project, redis, results);
    if (settings.parts.has('mixed')) await runAllMixed(contenders, results);
    const responses = contenders.find((c) => c.spec.key === 'project-responses');
    if (settings.parts.has('varnish') && responses) await runVarnish(responses);
    await stopAllChildren();
  }
  if (settings.parts.has('views')) {
    // The views benchmark runs the app in this process: its connectMongo must open mongoose's
    // connection itself (with command monitoring, which its counts read), not find this one open.
    await mongoose.disconnect();
    await runViewsBenchmark({ mongodbUri, redisUrl, seconds: Math.max(settings.seconds, 5), connections: settings.connections, logger });
  }
  results.meta.durationSeconds = Math.round((performance.now() - started) / 1_000);
  if (needsContenders) await report(results);
}

/** The catalog GET through Varnish in front of the response-cache contender: its hit rate and req/s, printed. */
async function runVarnish(contender: Contender): Promise<void> {
  const result = await runVarnishCatalog({ contender, seconds: settings.seconds, connections: settings.connections });
  if (!result) return;
  console.log(
    `varnish, catalog GET through Varnish in front of ${contender.spec.label}: ${Math.round(result.reqPerSec)} req/s ` +
      `(${result.requests} in ${result.seconds.toFixed(1)} s), hit rate ${(result.hitRate * 100).toFixed(2)} % ` +
      `(${result.hits} hits, ${result.misses} misses)`,
  );
}

/** Every contender must answer every read query exactly as the in-memory floor (or the first contender) does. */
async function checkAnswers(contenders: Contender[]): Promise<void> {
  for (const { label, query } of settings.queries) {
    const answers = await Promise.all(contenders.map(async (c) => JSON.stringify(await graphql(c.url, query))));
    const reference = answers[contenders.findIndex((c) => c.spec.key === 'apollo-memory')] ?? answers[0];
    const differing = contenders.filter((_, i) => answers[i] !== reference).map((c) => c.spec.label);
    if (differing.length) throw new Error(`${label}: ${differing.join(', ')} answer differently from the others`);
  }
}

/** The read rounds: per query, a calibrating round 0, then interleaved rounds in a new order each time. */
async function runReads(all: Contender[], results: Results): Promise<void> {
  const { connections, seconds, rounds } = settings;
  const contenders = all.filter((c) => !c.spec.mixedOnly);
  for (const query of settings.queries) {
    const body = JSON.stringify({ query: query.query });
    const cells = new Map<ContenderKey, ReadCell>();
    const costs = new Map<ContenderKey, { requests: number; mongo: number; redis: number }>();
    const estimates = new Map<ContenderKey, number>();
    for (const c of contenders) {
      estimates.set(c.spec.key, await calibrate({ url: c.url, body, connections, seconds: Math.min(1, seconds) }));
      cells.set(c.spec.key, { rounds: [], mongoPerRequest: null, redisPerRequest: null });
    }
    for (let round = 0; round < rounds; round += 1) {
      for (const c of roundOrder(contenders, round)) {
        const cell = cells.get(c.spec.key) as ReadCell;
        const before = c.spec.project ? await scrapeCosts(c) : null;
        let result;
        let amount;
        do {
          // A run far shorter than planned (the estimate was off) is run again, sized by its own speed.
          amount = Math.max(connections, Math.round((estimates.get(c.spec.key) ?? 1) * seconds));
          result = await loadAmount({ url: c.url, body, connections, amount, capSeconds: Math.max(30, seconds * 10) });
          estimates.set(c.spec.key, result.reqPerSec);
        } while (result.seconds < seconds / 4 && Math.round(result.reqPerSec * seconds) > amount);
        if (before) {
          const after = await scrapeCosts(c);
          const total = costs.get(c.spec.key) ?? { requests: 0, mongo: 0, redis: 0 };
          costs.set(c.spec.key, {
            requests: total.requests + after.requests - before.requests,
            mongo: total.mongo + after.mongo - before.mongo,
            redis: total.redis + after.redis - before.redis,
          });
        }
        cell.rounds.push(result);
        estimates.set(c.spec.key, median(cell.rounds.map((r) => r.reqPerSec)));
        console.log(
          `${query.label}, round ${round + 1}/${rounds}, ${c.spec.label}: ${result.reqPerSec.toFixed(1)} req/s ` +
            `(${result.requests} in ${result.seconds.toFixed(1)} s${result.capped ? ', capped' : ''}), p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms`,
        );
      }
    }
    for (const [key, total] of costs) {
      const cell = cells.get(key) as ReadCell;
      cell.mongoPerRequest = total.mongo / Math.max(total.requests, 1);
      cell.redisPerRequest = total.redis / Math.max(total.requests, 1);
    }
    results.reads.push({ query, cells });
  }
}

/** `12.3 reads/s`, or, when fewer than MIN_REQUESTS completed, `too few reads to time (3)`. */
function perSecond(rate: number, completed: number, unit: string): string {
  return completed >= MIN_REQUESTS ? `${rate.toFixed(1)} ${unit}/s` : `too few ${unit} to time (${completed})`;
}

/** Round r: the contenders rotated by 2r, every other round reversed, so that no one always follows the same neighbour. */
function roundOrder<T>(items: readonly T[], round: number): T[] {
  const shift = (2 * round) % items.length;
  const rotated = [...items.slice(shift), ...items.slice(0, shift)];
  return round % 2 ? rotated.reverse() : rotated;
}

/** The project alone, one request at a time, its cache entries (`<namespace>:v<n>:…`) deleted before each. */
async function runCold(project: Contender, redis: Redis, results: Results): Promise<void> {
  for (const query of settings.queries) {
    const latencies: number[] = [];
    const before = await scrapeCosts(project);
    for (let i = 0; i < settings.coldRequests; i += 1) {
      await deleteKeys(redis, `${PROJECT_NAMESPACE}:v[0-9]*:*`);
      // And its in-process L1: the fleet's hash gone, the project registers afresh at its next
      // renewal (a quarter of its 1.5 s lease), which empties the L1.
      await redis.del(`${PROJECT_NAMESPACE}:{fleet}`);
      await new Promise((resolve) => setTimeout(resolve, 600));
      const start = performance.now();
      await graphql(project.url, query.query);
      latencies.push(performance.now() - start);
    }
    const after = await scrapeCosts(project);
    const requests = Math.max(after.requests - before.requests, 1);
    const row: ColdRow = {
      query,
      requests: latencies.length,
      p50Ms: median(latencies),
      meanMs: latencies.reduce((sum, ms) => sum + ms, 0) / latencies.length,
      mongoPerRequest: (after.mongo - before.mongo) / requests,
      redisPerRequest: (after.redis - before.redis) / requests,
    };
    results.cold.push(row);
    console.log(`${query.label}, cold: p50 ${row.p50Ms.toFixed(1)} ms, ${row.mongoPerRequest.toFixed(1)} MongoDB cmds/req`);
  }
}

/** The project's stale reads in the mixed workload, any round (there should be none). */
const projectStale: StaleRead[] = [];

/**
 * The mixed workload: every contender once per round, in a new order each round (as the reads),
 * prices growing across all of them; each contender's median round (by reads/s) is reported.
 */
async function runAllMixed(contenders: Contender[], results: Results): Promise<void> {
  const hot = await ProductModel.find({ _id: { $in: HOT_IDS } }, { priceCents: 1 }).lean<{ priceCents: number }[]>();
  let price = Math.max(1_000_000, ...hot.map((p) => p.priceCents)) + 1;
  const nextPrice = () => price++;
  const sessions = new Map<Contender, Sessions>();
  for (const contender of contenders) sessions.set(contender, await openSessions(contender, 3));
  const rounds = new Map<Contender, MixedResult[]>(contenders.map((contender) => [contender, []]));
  const responses = new Map<Contender, { hits: number; misses: number }>();
  for (let round = 1; round <= settings.mixedRounds; round += 1) {
    for (const contender of roundOrder(contenders, round)) {
      const before = contender.spec.key === 'project-responses' ? await scrapeResponses(contender) : null;
      const costsBefore = contender.spec.project ? await scrapeCosts(contender) : null;
      const result = await runMixed({
        contender,
        sessions: sessions.get(contender) as Sessions,
        hotIds: HOT_IDS,
        readers: settings.connections,
        seconds: settings.mixedSeconds,
        writeIntervalMs: settings.mixedWriteIntervalMs,
        nextPrice,
      });
      rounds.get(contender)?.push(result);
      if (costsBefore) {
        const after = await scrapeCosts(contender);
        const requests = Math.max(after.requests - costsBefore.requests, 1);
        result.costs = {
          mongoPerRequest: (after.mongo - costsBefore.mongo) / requests,
          redisPerRequest: (after.redis - costsBefore.redis) / requests,
        };
      }
      if (before) {
        const after = await scrapeResponses(contender);
        const total = responses.get(contender) ?? { hits: 0, misses: 0 };
        responses.set(contender, { hits: total.hits + after.hits - before.hits, misses: total.misses + after.misses - before.misses });
      }
      const written = result.writes.price + result.writes.review + result.writes.view;
      console.log(
        `mixed, round ${round}/${settings.mixedRounds}, ${contender.spec.label}: ${perSecond(result.readsPerSec, result.reads, 'reads')}, ` +
          `${perSecond(result.writesPerSec, written, 'writes')} (${written} of ${result.writesDue} due), ${result.stale.reads} stale reads of ${result.reads}` +
          (result.costs
            ? `, per request ${result.costs.mongoPerRequest.toFixed(2)} MongoDB cmds and ${result.costs.redisPerRequest.toFixed(2)} Redis round trips`
            : '') +
          `${result.errors.first ? `; first error: ${result.errors.first}` : ''}`,
      );
    }
  }
  for (const contender of contenders) {
    const all = rounds.get(contender) ?? [];
    const byRate = [...all].sort((a, b) => a.readsPerSec - b.readsPerSec);
    const median = byRate[Math.floor(byRate.length / 2)];
    if (!median) continue;
    results.mixed.push({
      spec: contender.spec,
      result: median,
      roundsReadsPerSec: all.map((r) => r.readsPerSec),
      roundsReads: all.map((r) => r.reads),
      allRounds: { reads: all.reduce((sum, r) => sum + r.reads, 0), stale: all.reduce((sum, r) => sum + r.stale.reads, 0) },
      ...(responses.has(contender) ? { responses: responses.get(contender) } : {}),
    });
    const staleRound = all.find((r) => r.stale.reads > 0);
    if (contender.spec.project && staleRound) projectStale.push(...staleRound.examples);
  }
}

async function report(results: Results): Promise<void> {
  const tables = markdownTables(results);
  console.log(`\n${tables}\n`);
  const pairs = ratios(results);
  if (pairs.length) console.log(pairs.map(([label, value]) => `${label}: ${value.toFixed(2)}×`).join('\n'));
  if (projectStale.length) console.log(`\nSTALE READS OF THE PROJECT: ${JSON.stringify(projectStale)}`);
  console.log(`\n${results.meta.durationSeconds} s in all`);
  if (!settings.writeResults) return;
  const { meta } = results;
  const markdown = [
    '# Benchmark results',
    '',
    `- Date: ${meta.date}`,
    `- Command: \`${meta.command}\``,
    `- Machine: ${meta.machine} (shared, noisy: figures move by tens of percent between runs; the ratios hold better)`,
    `- Data: the demo seed (200 users, 500 products, 5,000 reviews) in ${meta.mongodb}; ${meta.redis}`,
    `- The project: ${meta.project}, NODE_ENV=production, its own CACHE_NAMESPACE`,
    `- Load: autocannon, ${meta.settings}; each run a fixed number of requests timed to the last answer; the table shows the median round`,
    `- The whole run took ${meta.durationSeconds} s`,
    '',
    '![Read throughput per query and contender](results.svg)',
    '',
    tables,
    '',
  ].join('\n');
  await writeFile(join(projectRoot, 'bench', 'results.md'), markdown);
  await writeFile(join(projectRoot, 'bench', 'results.svg'), svgChart(results));
  console.log('wrote bench/results.md and bench/results.svg');
}

/**
 * The project's requests, MongoDB commands and Redis round trips so far (its /metrics). MongoDB
 * commands are the process's (`mongodb_commands_total`): in production only requests that may
 * write count theirs per request (REQUEST_TRACE); background jobs add a few a minute.
 */
async function scrapeCosts(contender: Contender): Promise<{ requests: number; mongo: number; redis: number }> {
  const text = (await Promise.all(contender.metricsUrls.map(async (url) => (await fetch(`${url}/metrics`)).text()))).join('\n');
  const value = (name: string) =>
    [...text.matchAll(new RegExp(`^${name} (\\S+)$`, 'gm'))].reduce((sum, match) => sum + Number(match[1]), 0);
  const mongo = [...text.matchAll(/^mongodb_commands_total\{[^}]*\} (\S+)$/gm)].reduce((sum, match) => sum + Number(match[1]), 0);
  return {
    requests: value('graphql_request_redis_round_trips_count'),
    mongo,
    redis: value('graphql_request_redis_round_trips_sum'),
  };
}

/** The project's whole-response hits and misses so far (its /metrics). */
async function scrapeResponses(contender: Contender): Promise<{ hits: number; misses: number }> {
  const text = await (await fetch(`${contender.metricsUrl}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name}\\{name="Response"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return { hits: value('cache_hits_total'), misses: value('cache_misses_total') };
}

/** Deletes the keys matching `pattern` with SCAN and UNLINK (never KEYS or FLUSHDB). */
async function deleteKeys(redis: Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1_000);
    if (keys.length) await redis.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
}

/** `npm run build`; on failure (the sources mid-edit), the project runs from its sources with tsx instead. */
async function buildProject(): Promise<'dist' | 'tsx'> {
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn('npm', ['run', 'build', '--silent'], { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('exit', (exitCode) => {
      if (exitCode !== 0) console.warn(`npm run build failed; running the project with tsx instead:\n${output.slice(-2_000)}`);
      resolve(exitCode);
    });
  });
  return code === 0 ? 'dist' : 'tsx';
}

async function mongoServer(kind: 'mongod' | 'ferretdb' | null): Promise<string> {
  const info = (await mongoose.connection.db?.admin().command({ buildInfo: 1 })) as
    { version?: string; ferretdbVersion?: string } | undefined;
  const name = info?.ferretdbVersion ? `FerretDB ${info.ferretdbVersion} (SQLite)` : `MongoDB ${info?.version ?? '?'}`;
  return `${name}${kind ? ', embedded' : ' (MONGODB_URI)'}`;
}

async function gitDescribe(): Promise<string> {
  const git = (args: string[]) =>
    new Promise<string>((resolve) => {
      const child = spawn('git', args, { cwd: projectRoot, stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.on('exit', () => resolve(out.trim()));
      child.on('error', () => resolve(''));
    });
  const [commit, dirty] = await Promise.all([git(['rev-parse', '--short', 'HEAD']), git(['status', '--porcelain', '--', 'src'])]);
  return `${commit || 'unknown commit'}${dirty ? ' with uncommitted changes in src/' : ''}`;
}

function commandLine(): string {
  const env = Object.entries(process.env)
    .filter(([name]) => name.startsWith('BENCH_') || name === 'MONGODB_URI' || name === 'REDIS_URL')
    .map(([name, value]) => `${name}=${value}`);
  return [...env, 'npm run bench'].join(' ');
}

function positiveNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new TypeError(`${name} must be a positive number (got ${JSON.stringify(raw)})`);
  return value;
}

function positiveInteger(name: string, fallback: number): number {
  const value = positiveNumber(name, fallback);
  if (!Number.isInteger(value)) throw new TypeError(`${name} must be a positive integer (got ${JSON.stringify(process.env[name])})`);
  return value;
}

function parseParts(raw: string | undefined): Set<Part> {
  if (!raw) return new Set<Part>(['reads', 'cold', 'mixed']);
  const parts = raw.split(',').map((part) => part.trim());
  const unknown = parts.filter((part) => !(PARTS as readonly string[]).includes(part));
  if (unknown.length) throw new TypeError(`BENCH_ONLY takes ${PARTS.join(', ')}, comma-separated (got ${JSON.stringify(raw)})`);
  return new Set(parts as Part[]);
}

function parseContenders(raw: string | undefined): Set<ContenderKey> {
  const all = CONTENDER_KEYS;
  if (!raw) return new Set(all);
  const keys = raw.split(',').map((key) => key.trim());
  const unknown = keys.filter((key) => !(all as readonly string[]).includes(key));
  if (unknown.length) throw new TypeError(`BENCH_CONTENDERS takes ${all.join(', ')}, comma-separated (got ${JSON.stringify(raw)})`);
  return new Set(keys as ContenderKey[]);
}

function parseQueries(raw: string | undefined): readonly ReadQuery[] {
  if (!raw) return READ_QUERIES;
  const keys = raw.split(',').map((key) => key.trim());
  const unknown = keys.filter((key) => !READ_QUERIES.some((query) => query.key === key));
  if (unknown.length)
    throw new TypeError(`BENCH_QUERIES takes ${READ_QUERIES.map((q) => q.key).join(', ')}, comma-separated (got ${JSON.stringify(raw)})`);
  return READ_QUERIES.filter((query) => keys.includes(query.key));
}

function parseRuntime(raw: string | undefined): 'dist' | 'tsx' {
  if (raw === undefined || raw === '' || raw === 'dist' || raw === 'tsx') return raw === 'tsx' ? 'tsx' : 'dist';
  throw new TypeError(`BENCH_PROJECT_RUNTIME must be dist or tsx (got ${JSON.stringify(raw)})`);
}

try {
  await main();
  await cleanUp();
} catch (error) {
  console.error(error);
  await cleanUp();
  process.exitCode = 1;
}
process.exit();
