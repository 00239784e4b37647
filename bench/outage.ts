// npm run bench:outage — MongoDB stopped for BENCH_OUTAGE_SECONDS (default 30) with every entry
// past its TTL (issue 24, "What it must show"). The project (production, its own FerretDB and
// Redis, L1 off: see below) is warmed with a mix of reads (products by id, the catalog page,
// users(ids)), every entry is aged past its TTL, FerretDB is stopped (SIGSTOP, or SIGKILL and
// restarted afterwards: BENCH_OUTAGE_SIGNAL=SIGSTOP|SIGKILL|both, default SIGSTOP), and
// BENCH_CONNECTIONS (default 10) connections read the mix in closed loops for the whole outage.
// Every answer is compared with what the warm server answered just before the stop (which is
// checked against what MongoDB held: no write runs during the bench). Twice per signal: with
// grace (CACHE_GRACE_SECONDS=120) and without (CACHE_GRACE_SECONDS=0), for contrast.
//
// The L1 is off (CACHE_L1=false): entries are aged by shortening their PTTL in Redis, which an
// L1 copy (kept up to a minute for a response or a catalog page) would not see; served from
// it, a read would be answered without grace and count for nothing here.
import { startEmbeddedRedis } from '../src/dev/embedded-redis.js';
import { startOwnFerretdb, type OwnFerretdb } from '../test/helpers/ferretdb.js';
import { killAllChildren, stopAllChildren } from './lib/contenders.js';
import { closedLoop, expireAll, metric, percentile, post, seed, staleAgainstMongo, startProject } from './lib/expiry.js';
import { CATALOG, USERS_BY_ID, seededId } from './lib/queries.js';

const SECONDS = Number(process.env.BENCH_OUTAGE_SECONDS ?? 30);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const SIGNALS =
  (process.env.BENCH_OUTAGE_SIGNAL ?? 'SIGSTOP') === 'both' ? ['SIGSTOP', 'SIGKILL'] : [process.env.BENCH_OUTAGE_SIGNAL ?? 'SIGSTOP'];
const GRACE_SECONDS = 120;
/** BENCH_OUTAGE_RESPONSES=false: whole responses off (the entity and field path alone); default on, as in production. */
const RESPONSES = process.env.BENCH_OUTAGE_RESPONSES ?? 'true';
/** MONGODB_TIMEOUT_MS of the server: the production default (5000) unless BENCH_OUTAGE_TIMEOUT_MS says otherwise. */
const TIMEOUT_MS = process.env.BENCH_OUTAGE_TIMEOUT_MS;

/** The mix: 10 products by id, the catalog page, users(ids: 50). */
const PRODUCT = (n: number): string => `{ product(id: "${seededId('products', n)}") { id name priceCents reviewCount averageRating } }`;
const QUERIES = [...Array.from({ length: 10 }, (_, i) => PRODUCT(i + 1)), CATALOG, USERS_BY_ID].map((query) => JSON.stringify({ query }));

interface Row {
  signal: string;
  grace: boolean;
  entries: number;
  reads: number;
  answered: number;
  errors: number;
  stale: number;
  graceServed: number;
  codes: string;
  p50: number;
  p99: number;
}

async function run(mongo: OwnFerretdb, redisUrl: string, signal: string, grace: boolean, n: number): Promise<Row> {
  const namespace = `outage-${n}`;
  const mongodbUri = `${mongo.uri}/bench-outage`;
  const server = await startProject(`grace ${grace ? 'on' : 'off'}`, {
    MONGODB_URI: mongodbUri,
    REDIS_URL: redisUrl,
    CACHE_NAMESPACE: namespace,
    CACHE_L1: 'false',
    CACHE_RESPONSES: RESPONSES,
    CACHE_GRACE_SECONDS: String(grace ? GRACE_SECONDS : 0),
    ...(TIMEOUT_MS ? { MONGODB_TIMEOUT_MS: TIMEOUT_MS } : {}),
  });
  // Warm: every query twice (a list fills some of its children only on the second read), then
  // the answers the outage's reads must equal, each checked against MongoDB.
  for (let i = 0; i < 2; i += 1) for (const body of QUERIES) await post(server.url, body);
  const expected: string[] = [];
  for (const body of QUERIES) {
    const answer = await post(server.url, body);
    if (!answer?.data || answer.errors) throw new Error(`warm read failed: ${JSON.stringify(answer)}`);
    expected.push(JSON.stringify(answer.data));
  }
  const { stale, checked } = await staleAgainstMongo(
    mongodbUri,
    expected.map((e) => JSON.parse(e) as unknown),
  );
  if (stale.length) throw new Error(`the warm answers are stale for ${stale.join(', ')}`);
  if (checked < 100) throw new Error(`only ${checked} items checked against MongoDB`);
  const entries = await expireAll(redisUrl, namespace, grace ? GRACE_SECONDS * 1_000 : 0);
  const graceBefore = await metric(server, 'cache_grace_served_total');
  if (signal === 'SIGSTOP') mongo.pause();
  else await mongo.kill();
  let counts;
  try {
    counts = await closedLoop(server.url, QUERIES, expected, CONNECTIONS, SECONDS);
  } finally {
    if (signal === 'SIGSTOP') mongo.resume();
    else await mongo.restart();
  }
  const graceServed = (await metric(server, 'cache_grace_served_total')) - graceBefore;
  await stopAllChildren();
  return {
    signal,
    grace,
    entries,
    ...counts,
    graceServed,
    codes:
      Object.entries(counts.codes)
        .map(([code, count]) => `${code} ${count}`)
        .join(', ') || '-',
    p50: percentile(counts.latenciesMs, 50),
    p99: percentile(counts.latenciesMs, 99),
  };
}

function table(rows: readonly Row[]): string {
  const pct = (a: number, b: number): string => (b ? `${((100 * a) / b).toFixed(1)}%` : '-');
  const lines = [
    `MongoDB stopped ${SECONDS} s with every entry past its TTL, ${CONNECTIONS} connections reading ${QUERIES.length} warm queries (10 products, the catalog page, users(ids: 50)), MONGODB_TIMEOUT_MS=${TIMEOUT_MS ?? '5000 (default)'}, CACHE_RESPONSES=${RESPONSES}:`,
    '',
    '| stop | grace | reads | answered | errors | stale | grace served (metric) | error codes | p50 ms | p99 ms |',
    '|---|---|---:|---:|---:|---:|---:|---|---:|---:|',
  ];
  for (const r of rows) {
    const served = Number.isNaN(r.graceServed) ? 'n/a' : String(r.graceServed);
    lines.push(
      `| ${r.signal} | ${r.grace ? `${GRACE_SECONDS} s` : 'off (0)'} | ${r.reads} | ${r.answered} (${pct(r.answered, r.reads)}) | ${r.errors} | ${r.stale} | ${served} | ${r.codes} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const mongo = await startOwnFerretdb();
  const redis = await startEmbeddedRedis();
  const rows: Row[] = [];
  try {
    await seed(`${mongo.uri}/bench-outage`);
    let n = 0;
    for (const signal of SIGNALS) {
      for (const grace of [true, false]) {
        const row = await run(mongo, redis.url, signal, grace, (n += 1));
        rows.push(row);
        console.error(
          `${signal}, grace ${grace ? 'on' : 'off'}: ${row.answered}/${row.reads} answered, ${row.errors} errors, ${row.stale} stale`,
        );
      }
    }
    console.log(table(rows));
  } finally {
    await stopAllChildren();
    await redis.stop();
    await mongo.stop();
  }
}

process.on('exit', killAllChildren);
await main();
