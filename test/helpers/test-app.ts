import { randomBytes } from 'node:crypto';
import mongoose from 'mongoose';
import { inject } from 'vitest';
import { startApp, type App } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import { seedDemoData, type SeedReport } from '../../src/dev/seed.js';
import { createLogger } from '../../src/logger.js';

/** The admin every test database is seeded with. */
export const ADMIN = { email: 'admin@example.com', password: 'admin-password' } as const;
/** The password of the seeded demo users (user1@example.com …). */
export const USER_PASSWORD = 'password123';

/** A GraphQL response as the tests read it. */
export interface GqlResponse<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: {
    data?: T | null;
    errors?: { message: string; path?: (string | number)[]; extensions?: { code?: string; [key: string]: unknown } }[];
    extensions?: { cache?: { hits: number; misses: number; mongoCommands: number | null; redisRoundTrips: number; response?: string } };
  };
}

/** recordProductView limits that count every view a test sends from its one address. */
export const TEST_VIEW_LIMITS = { VIEW_DEDUP_WINDOW_SECONDS: '0', VIEWS_PER_CLIENT_PER_MINUTE: '1000000' } as const;

/** Options of {@link startTestApp}. */
export interface TestAppOptions {
  /** Extra environment for loadConfig (NODE_ENV defaults to test). */
  env?: Record<string, string>;
  /** A Redis of the test's own (to count its commands, or to stop it); default the shared one. */
  redisUrl?: string;
  /** How much demo data; false for an empty database. Default: a small catalog. */
  seed?: false | { users: number; products: number; reviews: number; orders: number };
}

/** A server on a free port over its own fresh database, with request helpers. */
export interface TestApp {
  app: App;
  config: Config;
  url: string;
  seeded: SeedReport | null;
  /** POSTs a GraphQL operation; `token` goes in the Authorization header. */
  gql<T = Record<string, any>>(query: string, variables?: Record<string, unknown>, token?: string): Promise<GqlResponse<T>>;
  /** Logs in and returns the session token (fails the test on error). */
  login(email: string, password: string): Promise<string>;
  /** MongoDB commands sent while `fn` ran (driver command monitoring). */
  countMongoCommands<T>(fn: () => Promise<T>): Promise<{ result: T; commands: number }>;
  /** Stops the server and drops its database. */
  stop(): Promise<void>;
}

/** Starts the whole application, as `npm start` does, against the test servers. */
export async function startTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const dbName = `t_${randomBytes(6).toString('hex')}`;
  const config = loadConfig({
    NODE_ENV: 'test',
    PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    SEED_ON_START: 'false',
    MONGODB_URI: `${inject('mongoBaseUri')}/${dbName}`,
    REDIS_URL: options.redisUrl ?? inject('redisUrl'),
    // Its own key namespace too: test files share one Redis.
    CACHE_NAMESPACE: dbName,
    // TEST_CACHE_RESPONSES=false runs every test app without the whole-response layer (on by default).
    ...(process.env.TEST_CACHE_RESPONSES ? { CACHE_RESPONSES: process.env.TEST_CACHE_RESPONSES } : {}),
    // The in-process L1 is off in test apps unless a test turns it on (or TEST_CACHE_L1=true for
    // all): most tests count the round trips of the Redis protocol, which is also what serves
    // whenever an L1 may not (test/integration/l1-app.test.ts and the fleet tests run with it).
    CACHE_L1: process.env.TEST_CACHE_L1 ?? 'false',
    // Tests count every view they send, from one address (views.test.ts tests the limits).
    ...TEST_VIEW_LIMITS,
    // The staleness audit reads MongoDB and Redis on its own: off, so that tests counting commands
    // count only their own (cache-audit.test.ts turns it on).
    CACHE_AUDIT_PER_MINUTE: '0',
    // Production serves /metrics on a port of its own (9464 by default): any free one here.
    ...(options.env?.NODE_ENV === 'production' ? { METRICS_PORT: '0' } : {}),
    ...options.env,
  });
  const logger = createLogger({ level: config.logLevel });
  const app = await startApp({ config, logger, mongodbUri: config.mongodbUri ?? '', redisUrl: config.redisUrl ?? null });
  const seeded =
    options.seed === false
      ? null
      : await seedDemoData({
          logger,
          admin: ADMIN,
          userPassword: USER_PASSWORD,
          ...(options.seed ?? { users: 20, products: 60, reviews: 400, orders: 30 }),
        });

  const gql: TestApp['gql'] = async (query, variables, token) => {
    const response = await fetch(`${app.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query, variables }),
    });
    return { status: response.status, headers: response.headers, body: (await response.json()) as GqlResponse['body'] } as never;
  };

  return {
    app,
    config,
    url: app.url,
    seeded,
    gql,
    async login(email, password) {
      const res = await gql<{ login: { token: string } }>(
        'mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }',
        { e: email, p: password },
      );
      const token = res.body.data?.login.token;
      if (!token) throw new Error(`login failed: ${JSON.stringify(res.body.errors)}`);
      return token;
    },
    async countMongoCommands(fn) {
      const before = app.db.commandCount();
      const result = await fn();
      return { result, commands: app.db.commandCount() - before };
    },
    async stop() {
      await mongoose.connection.db?.dropDatabase().catch(() => undefined);
      await app.stop();
    },
  };
}

/** The `extensions.code` of each error of a response. */
export function errorCodes(res: GqlResponse): (string | undefined)[] {
  return (res.body.errors ?? []).map((e) => e.extensions?.code);
}
