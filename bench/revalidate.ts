// The cost of a revalidation (issue 22): `npm run bench:revalidate`.
//
// A browser told `Cache-Control: no-cache` revalidates every reuse, so a `304` from the stored
// response becomes the common answer. This measures what one costs next to a `200` hit of the
// same stored catalog GET (about 75 KB): CPU per request (process.cpuUsage, user + system, of
// this process, which runs the server and the client both) and Redis commands per request (INFO
// commandstats: EVALSHA calls, the round trips, and all commands, those run inside a script
// included; a background XREADGROUP of the write-behind worker shows as a few hundredths). REVALIDATE_REQUESTS (default 2000) of each, in
// REVALIDATE_ROUNDS (default 4) interleaved rounds, one at a time on a keep-alive connection. In
// process (startApp, NODE_ENV=production), on embedded FerretDB and a redis-server of its own
// unless MONGODB_URI is given.
import { Agent, request } from 'node:http';
import { Redis } from 'ioredis';
import mongoose from 'mongoose';
import { startApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { startEmbeddedMongo } from '../src/dev/embedded-mongo.js';
import { startEmbeddedRedis } from '../src/dev/embedded-redis.js';
import { seedDemoData } from '../src/dev/seed.js';
import { createLogger } from '../src/logger.js';

const REQUESTS = Number(process.env.REVALIDATE_REQUESTS ?? 2_000);
const ROUNDS = Number(process.env.REVALIDATE_ROUNDS ?? 4);
const CATALOG =
  'query Catalog { products(first: 100) { edges { cursor node { id name description priceCents category stock viewCount reviewCount averageRating createdAt updatedAt } } } }';

const logger = createLogger({ level: 'warn' });

/** Totals of one kind of request. */
interface Tally {
  /** Redis calls by command name. */
  byName: Map<string, number>;
  requests: number;
  cpuMicros: number;
  evalsha: number;
  commands: number;
  bytes: number;
}

async function main(): Promise<void> {
  const mongo = process.env.MONGODB_URI ? null : await startEmbeddedMongo({ logger });
  const mongodbUri = process.env.MONGODB_URI ?? `${mongo?.uri}/bench-revalidate`;
  const redis = await startEmbeddedRedis({ appendOnly: false });
  const config = loadConfig({
    NODE_ENV: 'production',
    METRICS_PORT: '0',
    PORT: '0',
    LOG_LEVEL: 'warn',
    MONGODB_URI: mongodbUri,
    REDIS_URL: redis.url,
    CACHE_NAMESPACE: 'bench-revalidate',
    // No background sampling in the Redis counts.
    CACHE_AUDIT_PER_MINUTE: '0',
  });
  const app = await startApp({ config, logger, mongodbUri, redisUrl: redis.url });
  const inspect = new Redis(redis.url);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    await seedDemoData({
      logger,
      admin: { email: 'admin@example.com', password: 'admin-password' },
      users: 10,
      products: 200,
      reviews: 0,
      orders: 0,
    });
    const url = new URL(`${app.url}/graphql?query=${encodeURIComponent(CATALOG)}`);
    const get = (headers: Record<string, string>) => send(agent, url, { 'apollo-require-preflight': 'true', ...headers });

    // Warm: computed and stored, then a hit, which gives the ETag to revalidate with.
    await get({});
    const warm = await get({});
    const etag = warm.etag;
    if (warm.status !== 200 || !etag) throw new Error(`warm-up: ${warm.status}, ETag ${etag}`);
    const revalidated = await get({ 'if-none-match': etag });
    if (revalidated.status !== 304) throw new Error(`a revalidation with the ETag answered ${revalidated.status}, not 304`);

    const stats = async () => {
      const text = await inspect.info('commandstats');
      const calls = (name: string) => Number(new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(text)?.[1] ?? 0);
      const all = [...text.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)].filter(([, name]) => name !== 'info');
      return {
        evalsha: calls('evalsha'),
        commands: all.reduce((sum, [, , n]) => sum + Number(n), 0),
        byName: new Map(all.map(([, name, n]) => [name ?? '', Number(n)])),
      };
    };
    const tallies = {
      '304 revalidation': { byName: new Map(), requests: 0, cpuMicros: 0, evalsha: 0, commands: 0, bytes: 0 },
      '200 hit': { byName: new Map(), requests: 0, cpuMicros: 0, evalsha: 0, commands: 0, bytes: 0 },
    } satisfies Record<string, Tally>;
    const perRound = Math.ceil(REQUESTS / ROUNDS);
    for (let round = 0; round < ROUNDS; round += 1) {
      for (const [kind, headers, expected] of [
        ['304 revalidation', { 'if-none-match': etag }, 304],
        ['200 hit', {}, 200],
      ] as const) {
        const tally: Tally = tallies[kind];
        const redisBefore = await stats();
        const cpuBefore = process.cpuUsage();
        for (let i = 0; i < perRound; i += 1) {
          const answer = await get(headers);
          if (answer.status !== expected) throw new Error(`${kind}: answered ${answer.status}`);
          tally.bytes += answer.bytes;
        }
        const cpu = process.cpuUsage(cpuBefore);
        const redisAfter = await stats();
        tally.requests += perRound;
        tally.cpuMicros += cpu.user + cpu.system;
        tally.evalsha += redisAfter.evalsha - redisBefore.evalsha;
        // The INFO call between the two snapshots is left out above; nothing else runs.
        tally.commands += redisAfter.commands - redisBefore.commands;
        for (const [name, n] of redisAfter.byName)
          tally.byName.set(name, (tally.byName.get(name) ?? 0) + n - (redisBefore.byName.get(name) ?? 0));
      }
    }
    const round2 = (n: number) => Math.round(n * 100) / 100;
    console.log(`\nRevalidation cost: ${REQUESTS} catalog GETs of each kind in ${ROUNDS} interleaved rounds, one at a time`);
    console.table(
      Object.fromEntries(
        Object.entries(tallies).map(([kind, t]) => [
          kind,
          {
            requests: t.requests,
            'CPU µs/request (server + client)': Math.round(t.cpuMicros / t.requests),
            'EVALSHA/request (round trips)': round2(t.evalsha / t.requests),
            'Redis commands/request (incl. in scripts)': round2(t.commands / t.requests),
            'body bytes/request': Math.round(t.bytes / t.requests),
            'commands/request by name': [...t.byName]
              .filter(([, n]) => n / t.requests >= 0.01)
              .map(([name, n]) => `${name} ${round2(n / t.requests)}`)
              .join(', '),
          },
        ]),
      ),
    );
  } finally {
    agent.destroy();
    inspect.disconnect();
    await app.stop();
    await mongoose.connection.dropDatabase().catch(() => undefined);
    await redis.stop();
    await mongo?.stop();
  }
}

/** One GET on the keep-alive agent: its status, ETag and body size. */
function send(agent: Agent, url: URL, headers: Record<string, string>): Promise<{ status: number; etag?: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, headers }, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => (bytes += chunk.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, etag: res.headers.etag, bytes }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

await main();
