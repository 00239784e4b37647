// npm run bench:expiry — early refresh of a hot key (issue 24): one product read by
// BENCH_CONNECTIONS (default 10) connections for BENCH_EXPIRY_SECONDS (default 10) per run, with
// a short entity TTL (BENCH_EXPIRY_TTL_SECONDS, default 2: five TTL boundaries per run), with
// CACHE_EARLY_REFRESH=0.1 and with 0, in BENCH_EXPIRY_ROUNDS (default 3) interleaved rounds (every
// server once per round, in a new order each round). The reference: the same read with a TTL of
// an hour (no boundary in the run), "warm". Reports p50/p99 (autocannon; the median round's, and
// all requests' p99 over rounds as the worst round), and the readers that waited on MongoDB
// (cache_source_waits_total) and MongoDB commands (mongodb_commands_total) from /metrics.
//
// The entity path: whole responses off (CACHE_RESPONSES=false), since a response hit never
// reaches the entity, and responses are recomputed from warm entities on expiry (they need no
// early refresh). The L1 is off in the main rows (each read asks Redis, where the refresh is
// decided); BENCH_EXPIRY_L1=1 adds the same pair with the L1 on (production's default), whose
// copies live up to the entry's remaining TTL.
import autocannon from 'autocannon';
import { startEmbeddedRedis } from '../src/dev/embedded-redis.js';
import { startOwnFerretdb } from '../test/helpers/ferretdb.js';
import { killAllChildren, stopAllChildren, type Contender } from './lib/contenders.js';
import { metric, post, seed, startProject } from './lib/expiry.js';
import { median } from './lib/load.js';
import { seededId } from './lib/queries.js';

const SECONDS = Number(process.env.BENCH_EXPIRY_SECONDS ?? 10);
const ROUNDS = Number(process.env.BENCH_EXPIRY_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const TTL_SECONDS = Number(process.env.BENCH_EXPIRY_TTL_SECONDS ?? 2);
const WITH_L1 = ['1', 'true'].includes(process.env.BENCH_EXPIRY_L1 ?? '');
const BODY = JSON.stringify({ query: `{ product(id: "${seededId('products', 7)}") { id name priceCents } }` });

interface Server {
  label: string;
  contender: Contender;
  rounds: ({ p50: number; p99: number; p999: number; requests: number; errors: number } & Counts)[];
}

const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);

const METRICS = {
  waits: 'cache_source_waits_total',
  early: 'cache_early_refresh_total',
  misses: 'cache_misses_total',
  mongo: 'mongodb_commands_total',
} as const;
type Counts = Record<keyof typeof METRICS, number>;

async function counts(server: Server): Promise<Counts> {
  const entries = await Promise.all(
    Object.entries(METRICS).map(async ([key, name]) => [key, await metric(server.contender, name)] as const),
  );
  return Object.fromEntries(entries) as Counts;
}

async function oneRun(server: Server): Promise<void> {
  // The other servers' runs left this one idle past its TTL: one read first, so that the run
  // starts on a live entry and counts the boundaries within it, not its own cold start.
  await post(server.contender.url, BODY);
  const before = await counts(server);
  const result = await autocannon({
    url: `${server.contender.url}/graphql`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: BODY,
    connections: CONNECTIONS,
    duration: SECONDS,
    verifyBody: (body) => String(body).startsWith('{"data":') && !String(body).includes('"errors":'),
  });
  const after = await counts(server);
  server.rounds.push({
    p50: result.latency.p50,
    p99: result.latency.p99,
    p999: result.latency.p99_9,
    requests: result.requests.total,
    errors: result.errors + result.non2xx + (result.mismatches ?? 0),
    waits: after.waits - before.waits,
    early: after.early - before.early,
    misses: after.misses - before.misses,
    mongo: after.mongo - before.mongo,
  });
}

function table(servers: readonly Server[]): string {
  const warm = servers.find((s) => s.label.startsWith('warm'));
  const warmP99 = warm ? median(warm.rounds.map((r) => r.p99)) : NaN;
  const shown = (n: number): string => (Number.isNaN(n) ? 'n/a' : String(n));
  const lines = [
    `A hot product, ${CONNECTIONS} connections, ${SECONDS} s per run, ${ROUNDS} interleaved rounds, entity TTL ${TTL_SECONDS} s (${Math.floor(SECONDS / TTL_SECONDS)} TTL boundaries a run), responses off:`,
    '',
    '| server | requests | errors | p50 ms (median round) | p99 ms (median round) | p99 ms (worst round) | p99.9 ms (median round) | p99 / warm p99 | readers that waited on MongoDB | early refreshes | cache misses | MongoDB commands |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const s of servers) {
    const p99 = median(s.rounds.map((r) => r.p99));
    lines.push(
      `| ${s.label} | ${sum(s.rounds.map((r) => r.requests))} | ${sum(s.rounds.map((r) => r.errors))} | ${median(s.rounds.map((r) => r.p50))} | ${p99} | ${Math.max(...s.rounds.map((r) => r.p99))} | ${median(s.rounds.map((r) => r.p999))} | ${(p99 / warmP99).toFixed(2)}x | ${shown(sum(s.rounds.map((r) => r.waits)))} | ${shown(sum(s.rounds.map((r) => r.early)))} | ${shown(sum(s.rounds.map((r) => r.misses)))} | ${shown(sum(s.rounds.map((r) => r.mongo)))} |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const mongo = await startOwnFerretdb();
  const redis = await startEmbeddedRedis();
  try {
    const mongodbUri = `${mongo.uri}/bench-expiry`;
    await seed(mongodbUri);
    const common = { MONGODB_URI: mongodbUri, REDIS_URL: redis.url, CACHE_RESPONSES: 'false', CACHE_L1: 'false' };
    const specs: [string, Record<string, string>][] = [
      [`early refresh 0.1, TTL ${TTL_SECONDS} s`, { CACHE_TTL_SECONDS: String(TTL_SECONDS), CACHE_EARLY_REFRESH: '0.1' }],
      [`early refresh off (0), TTL ${TTL_SECONDS} s`, { CACHE_TTL_SECONDS: String(TTL_SECONDS), CACHE_EARLY_REFRESH: '0' }],
      ['warm (TTL 1 h, no boundary)', { CACHE_TTL_SECONDS: '3600', CACHE_EARLY_REFRESH: '0' }],
      ...(WITH_L1
        ? ([
            [
              `L1 on, early refresh 0.1, TTL ${TTL_SECONDS} s`,
              { CACHE_TTL_SECONDS: String(TTL_SECONDS), CACHE_EARLY_REFRESH: '0.1', CACHE_L1: 'true' },
            ],
            [
              `L1 on, early refresh off (0), TTL ${TTL_SECONDS} s`,
              { CACHE_TTL_SECONDS: String(TTL_SECONDS), CACHE_EARLY_REFRESH: '0', CACHE_L1: 'true' },
            ],
          ] as [string, Record<string, string>][])
        : []),
    ];
    const servers: Server[] = [];
    for (const [i, [label, env]] of specs.entries()) {
      const contender = await startProject(label, { ...common, CACHE_NAMESPACE: `expiry-${i}`, ...env });
      // Warm-up: the product cached, the JIT warm.
      for (let n = 0; n < 200; n += 1) await post(contender.url, BODY);
      servers.push({ label, contender, rounds: [] });
    }
    for (let round = 0; round < ROUNDS; round += 1) {
      const order = [...servers];
      for (let i = order.length - 1; i > 0; i -= 1) {
        const j = (round * 7 + i * 3) % (i + 1);
        [order[i], order[j]] = [order[j] as Server, order[i] as Server];
      }
      for (const server of order) {
        await oneRun(server);
        const last = server.rounds.at(-1);
        console.error(`round ${round + 1}: ${server.label}: p50 ${last?.p50} ms, p99 ${last?.p99} ms, ${last?.waits} waits`);
      }
    }
    console.log(table(servers));
  } finally {
    await stopAllChildren();
    await redis.stop();
    await mongo.stop();
  }
}

process.on('exit', killAllChildren);
await main();
