import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import mongoose from 'mongoose';
import { inject } from 'vitest';
import { startEmbeddedRedis } from '../../src/dev/embedded-redis.js';
import { seedDemoData } from '../../src/dev/seed.js';
import { createLogger } from '../../src/logger.js';
import { startPrivateRedis, type PrivateRedis } from './redis.js';
import { startServerProcess, type ServerProcess } from './server-process.js';
import { ADMIN } from './test-app.js';

// The fleet's fault tests (test/integration/fleet-faults*.test.ts): server processes (what
// SIGSTOP and SIGKILL reach) on a private redis-server (what a test pauses, kills or restarts)
// and a database of their own, and timed GraphQL requests that never throw.

/** The id of seeded product `n` (seedDemoData's ids, from 0). */
export const productId = (n: number): string => `5eed0001${String(n).padStart(16, '0')}`;

/** The product's name and price, as every fleet test reads it. */
export const PRODUCT = 'query($id: ID!) { product(id: $id) { id name priceCents } }';
/** Writes a product's name and/or price (as an admin). */
export const UPDATE = 'mutation($id: ID!, $input: UpdateProductInput!) { updateProduct(id: $id, input: $input) { id name priceCents } }';
const LOGIN = 'mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }';

/** What a request got: its data or why it failed, when it was sent and how long it took (ms). */
export interface Answer<T> {
  data: T | null;
  /** A GraphQL error's message, an HTTP status, or why the request failed (timeout, reset). */
  error: string | null;
  /**
   * True when the server refused the request saying nothing was changed: a GraphQL error whose
   * `reason` is not OUTCOME_UNKNOWN (e.g. DATABASE_UNAVAILABLE with LOCK_UNAVAILABLE). False for
   * an outcome unknown, a timeout or a reset, after which a write may have been applied.
   */
  refused: boolean;
  cache: { response?: string; hits?: number; misses?: number; mongoCommands?: number | null } | null;
  /** performance.now() when it was sent, and how long until the answer, ms. */
  sentAt: number;
  ms: number;
}

/** POSTs `query` to `server`; never throws (a failure is in `error`). Gives up after `timeoutMs` (default 15000). */
export async function ask<T = Record<string, unknown>>(
  server: ServerProcess,
  query: string,
  variables: Record<string, unknown>,
  options: { token?: string; timeoutMs?: number } = {},
): Promise<Answer<T>> {
  const sentAt = performance.now();
  const done = (part: Omit<Answer<T>, 'sentAt' | 'ms'>): Answer<T> => ({ ...part, sentAt, ms: performance.now() - sentAt });
  try {
    const res = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(options.token ? { authorization: `Bearer ${options.token}` } : {}) },
      body: JSON.stringify({ query, variables }),
      signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
    });
    const body = (await res.json()) as {
      data?: T | null;
      errors?: { message: string; extensions?: { code?: string; reason?: string } }[];
      extensions?: { cache?: Answer<T>['cache'] };
    };
    const first = body.errors?.[0];
    const error = first
      ? `${first.extensions?.code ?? 'ERROR'}${first.extensions?.reason ? `/${first.extensions.reason}` : ''}: ${first.message}`
      : res.ok
        ? null
        : `HTTP ${res.status}`;
    const refused = first !== undefined && first.extensions?.code !== undefined && first.extensions.reason !== 'OUTCOME_UNKNOWN';
    return done({ data: body.data ?? null, error, refused, cache: body.extensions?.cache ?? null });
  } catch (error) {
    return done({
      data: null,
      error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
      refused: false,
      cache: null,
    });
  }
}

/** A database and a private Redis of one test, and its server processes. */
export interface FleetWorld {
  dbName: string;
  mongodbUri: string;
  redis: PrivateRedis;
  /** The pid of the redis-server running now (a new one after {@link FleetWorld.restartRedisEmpty}). */
  redisPid(): number;
  /** Starts a server process on this world (env over the defaults: NODE_ENV=test, no seeding, no audit). */
  start(env?: Record<string, string>): Promise<ServerProcess>;
  /** Logs the admin in on `server`. */
  adminToken(server: ServerProcess): Promise<string>;
  /** Restarts Redis empty on the same port: SIGKILL, then a new redis-server without persistence. */
  restartRedisEmpty(): Promise<void>;
  /** How many intents are recorded in MongoDB (`cacheintents`). */
  intents(): Promise<number>;
  /** Kills the server processes, stops Redis and drops the database. */
  close(): Promise<void>;
}

/** A fresh database (seeded with `products` products) and a private Redis; mongoose connects to the database. */
export async function fleetWorld(seed: { products: number; users?: number } = { products: 3 }): Promise<FleetWorld> {
  const dbName = `t_${randomBytes(6).toString('hex')}`;
  const mongodbUri = `${inject('mongoBaseUri')}/${dbName}`;
  await mongoose.connect(mongodbUri);
  await seedDemoData({
    logger: createLogger({ level: 'silent' }),
    admin: ADMIN,
    users: seed.users ?? 2,
    products: seed.products,
    reviews: 0,
    orders: 0,
  });
  const redis = await startPrivateRedis();
  const servers: ServerProcess[] = [];
  const restarted: { stop(): Promise<void> }[] = [];
  let redisPid = redis.pid;
  return {
    dbName,
    mongodbUri,
    redis,
    redisPid: () => redisPid,
    async start(env = {}) {
      const server = await startServerProcess({
        NODE_ENV: 'test',
        MONGODB_URI: mongodbUri,
        REDIS_URL: redis.url,
        CACHE_NAMESPACE: dbName,
        SEED_ON_START: 'false',
        CACHE_AUDIT_PER_MINUTE: '0',
        WRITE_BEHIND_LEADER_TTL_MS: '1500',
        JOBS_LEASE_TTL_MS: '1500',
        ...env,
      });
      servers.push(server);
      return server;
    },
    async adminToken(server) {
      const res = await ask<{ login: { token: string } }>(server, LOGIN, { e: ADMIN.email, p: ADMIN.password });
      if (!res.data) throw new Error(`admin login failed: ${res.error}`);
      return res.data.login.token;
    },
    async restartRedisEmpty() {
      process.kill(redisPid, 'SIGKILL');
      const last = restarted.pop();
      await (last ?? redis).stop(); // its directory (and AOF) go: the new server starts empty
      const next = await startEmbeddedRedis({ port: redis.port, appendOnly: false });
      restarted.push(next);
      redisPid = next.pid;
    },
    intents: () => mongoose.connection.collection('cacheintents').countDocuments(),
    async close() {
      try {
        process.kill(redisPid, 'SIGCONT'); // a test that failed with Redis paused
      } catch {
        // already gone
      }
      for (const server of servers) await kill(server);
      await redis.stop();
      for (const r of restarted) await r.stop();
      await mongoose.connection.db?.dropDatabase().catch(() => undefined);
      await mongoose.disconnect();
    },
  };
}

/** SIGKILLs `server` and resolves once it is gone. */
export async function kill(server: ServerProcess): Promise<void> {
  if (server.process.exitCode !== null || server.process.signalCode !== null) return;
  const exited = once(server.process, 'exit');
  server.process.kill('SIGKILL');
  await exited;
}

/** SIGTERMs `server` (its graceful shutdown) and resolves once it is gone. */
export async function terminate(server: ServerProcess): Promise<void> {
  if (server.process.exitCode !== null || server.process.signalCode !== null) return;
  const exited = once(server.process, 'exit');
  server.process.kill('SIGTERM');
  await exited;
}

/** SIGSTOPs (`true`) or SIGCONTs (`false`) a process. */
export function freeze(pid: number, frozen: boolean): void {
  process.kill(pid, frozen ? 'SIGSTOP' : 'SIGCONT');
}

/** True when `answer` was served from the cache: a stored response, or entities read with no MongoDB command (extensions.cache, NODE_ENV=test). */
export function fromCache(answer: Answer<unknown>): boolean {
  const cache = answer.cache;
  if (!cache) return false;
  return (
    cache.response === 'HIT' ||
    cache.response === 'HIT_L1' ||
    (cache.response !== 'MISS' && (cache.hits ?? 0) > 0 && cache.mongoCommands === 0)
  );
}

/** What {@link readFor} tallied: reads, the stale ones, the failed ones, those served from the cache. */
export interface ReadTally<T> {
  reads: number;
  stale: Answer<T>[];
  errors: number;
  cached: number;
}

/** Reads with `read`, one after another, for `forMs`, and tallies what came back (a failed read is never stale). */
export async function readFor<T>(
  forMs: number,
  read: () => Promise<Answer<T>>,
  isStale: (answer: Answer<T>) => boolean,
): Promise<ReadTally<T>> {
  const end = performance.now() + forMs;
  const tally: ReadTally<T> = { reads: 0, stale: [], errors: 0, cached: 0 };
  while (performance.now() < end) {
    const answer = await read();
    tally.reads += 1;
    if (answer.error !== null) tally.errors += 1;
    else if (isStale(answer)) tally.stale.push(answer);
    if (fromCache(answer)) tally.cached += 1;
  }
  return tally;
}

/** The Redis client connections `pid` holds to the Redis on `redisPort` (`ip:port` as CLIENT LIST's addr says), by `ss`. */
export function connectionsOf(pid: number, redisPort: number): string[] {
  const out = execFileSync('ss', ['-tnpH', 'state', 'established', `( dport = :${redisPort} )`], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((line) => line.includes(`pid=${pid},`))
    .map((line) => line.trim().split(/\s+/)[2] ?? '')
    .filter((addr) => addr !== '');
}
