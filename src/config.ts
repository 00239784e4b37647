import { z } from 'zod';
import { cacheArea, writeBehindArea } from './config-cache.js';
import { sharedCacheArea } from './config-shared-cache.js';
import { booleanString, port } from './config-values.js';
import type { RateLimitSettings } from './services/rate-limits.js';

/** Where production serves /metrics when METRICS_PORT is unset (the port Prometheus's Node exporters use). */
const DEFAULT_PRODUCTION_METRICS_PORT = 9464;

/**
 * The environment by area: one sub-schema each, with the variables of that area (a variable is in
 * exactly one: checked below) and what they become in {@link Config}. scripts/config-docs.ts
 * writes docs/configuration.md from this declaration, one table per area, in this order (and
 * takes from it the value of a default that is not written as a literal).
 */
export const configAreas = {
  /** The HTTP server: where it listens, what it serves, sessions, logging and the demo seed. */
  server: z
    .object({
      NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
      /** HTTP port; default 4000 (0 picks a free one). */
      PORT: port.default(4000),
      /** Interface to listen on; default 127.0.0.1 (the container image sets 0.0.0.0). */
      HOST: z.string().min(1).default('127.0.0.1'),
      /**
       * Serve GET /metrics (and a detailed GET /readyz) on this port only, not on PORT (0 picks a
       * free one). Default: 9464 in production, where the app's port is public; unset elsewhere
       * (/metrics on PORT).
       */
      METRICS_PORT: port.optional(),
      /** The interface of METRICS_PORT; default HOST. */
      METRICS_HOST: z.string().min(1).optional(),
      LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      /** Seed demo data at start-up when the database is empty; default true outside production. */
      SEED_ON_START: booleanString.optional(),
      SEED_ADMIN_EMAIL: z.email().default('admin@example.com'),
      SEED_ADMIN_PASSWORD: z.string().min(8).default('admin-password'),
      /** Serve schema introspection; default true outside production. */
      GRAPHQL_INTROSPECTION: booleanString.optional(),
      /**
       * Serve GraphiQL at GET /explorer, entirely from this server (Apollo Sandbox at GET /graphql
       * needs internet); default true outside production. In production it works only as far as
       * GRAPHQL_INTROSPECTION allows (no schema docs without it) and shows no `extensions.cache`.
       */
      EXPLORER: booleanString.optional(),
      /**
       * Send a cacheable public GET with the hints' `max-age=N, public` (a browser or shared cache
       * reuses it for N seconds without asking, so it may show a value a mutation has replaced),
       * rather than `no-cache, public` (every reuse is revalidated: a 304 while it still matches).
       * Default false: never stale.
       */
      HTTP_CACHE_MAX_AGE: booleanString.default(false),
      /**
       * Which requests count their MongoDB commands (trace.ts): `all`, or only those that may write
       * (`writes`: mutations, and requests whose text is not sent), which spares the others the cost
       * of AsyncLocalStorage. Default: `writes` in production, `all` elsewhere.
       */
      REQUEST_TRACE: z.enum(['all', 'writes']).optional(),
      /** Session lifetime in seconds, renewed on use (sliding); default 7 days. */
      SESSION_TTL_SECONDS: z.coerce
        .number()
        .int()
        .min(60)
        .default(7 * 24 * 3600),
      /**
       * Express's `trust proxy`: which proxies' `X-Forwarded-For` gives the client address that the
       * rate limits count. `false` (default: the socket's address), `true` (any: only behind a proxy
       * that overwrites the header), a hop count (`1`), or addresses and subnets (`loopback, 10.0.0.0/8`).
       */
      TRUST_PROXY: z
        .string()
        .regex(
          /^(true|false|\d+|[\w.:/-]+(\s*,\s*[\w.:/-]+)*)$/,
          'must be true, false, a hop count, or comma-separated addresses or subnets',
        )
        .transform((value): boolean | number | string =>
          value === 'true' ? true : value === 'false' ? false : /^\d+$/.test(value) ? Number(value) : value,
        )
        .default(false),
      /** Largest automatic persisted query stored, in bytes (larger ones run, unstored); default 16384. */
      PERSISTED_QUERY_MAX_BYTES: z.coerce.number().int().min(256).default(16_384),
      /** How long an automatic persisted query stays stored, in seconds; default 3600. */
      PERSISTED_QUERY_TTL_SECONDS: z.coerce.number().int().min(1).default(3_600),
      /**
       * The lease of the background jobs (order and review-count recovery, the review-count
       * backfill, the session sweep), which one instance on a Redis runs, in milliseconds: how soon
       * another takes over from a dead one; default 10000.
       */
      JOBS_LEASE_TTL_MS: z.coerce.number().int().min(100).default(10_000),
      /**
       * The secret that authorises POST /cache/invalidate in header `x-cache-invalidation-key`
       * (at least 16 characters), for scripts and other services; unset: only an ADMIN session does.
       */
      CACHE_INVALIDATION_KEY: z.string().min(16).optional(),
    })
    .transform((env) => {
      const production = env.NODE_ENV === 'production';
      return {
        nodeEnv: env.NODE_ENV,
        production,
        port: env.PORT,
        host: env.HOST,
        metrics: {
          port: env.METRICS_PORT ?? (production ? DEFAULT_PRODUCTION_METRICS_PORT : null),
          host: env.METRICS_HOST ?? env.HOST,
        },
        logLevel: env.LOG_LEVEL,
        seedOnStart: env.SEED_ON_START ?? !production,
        seedAdmin: { email: env.SEED_ADMIN_EMAIL.toLowerCase(), password: env.SEED_ADMIN_PASSWORD },
        introspection: env.GRAPHQL_INTROSPECTION ?? !production,
        explorer: env.EXPLORER ?? !production,
        httpCacheMaxAge: env.HTTP_CACHE_MAX_AGE,
        requestTrace: env.REQUEST_TRACE ?? (production ? 'writes' : 'all'),
        sessionTtlSeconds: env.SESSION_TTL_SECONDS,
        trustProxy: env.TRUST_PROXY,
        persistedQueries: { maxBytes: env.PERSISTED_QUERY_MAX_BYTES, ttlSeconds: env.PERSISTED_QUERY_TTL_SECONDS },
        jobsLeaseTtlMs: env.JOBS_LEASE_TTL_MS,
        cacheInvalidationKey: env.CACHE_INVALIDATION_KEY ?? null,
      };
    }),
  /** MongoDB (or FerretDB): where, how long an operation may take, how many reads run at once. */
  mongo: z
    .object({
      /** MongoDB connection string; unset outside production starts an embedded server. */
      MONGODB_URI: z
        .string()
        .regex(/^mongodb(\+srv)?:\/\//, 'must start with mongodb:// or mongodb+srv://')
        .optional(),
      /**
       * The deadline of one MongoDB operation, in milliseconds (server selection, connecting and the
       * reply, retries included: see db.ts driverTimeouts); default 5000. A hung server fails it
       * with DATABASE_UNAVAILABLE.
       */
      MONGODB_TIMEOUT_MS: z.coerce.number().int().min(100).default(5_000),
      /**
       * MongoDB reads of queries (the loaders' batches) running at once in this process; default 8.
       * More wait (MONGODB_READ_QUEUE_MS, MONGODB_MAX_QUEUED_READS), then fail with SERVER_BUSY.
       * Writes do not count: a storm of reads leaves them the rest of the driver's pool.
       */
      MONGODB_MAX_CONCURRENT_READS: z.coerce.number().int().min(1).default(8),
      /** How long a read beyond MONGODB_MAX_CONCURRENT_READS waits for a slot, in milliseconds, before SERVER_BUSY; default 1000. */
      MONGODB_READ_QUEUE_MS: z.coerce.number().int().min(0).default(1_000),
      /** Reads that may wait for a slot at once; one more fails with SERVER_BUSY without waiting; default 64, 0 for none. */
      MONGODB_MAX_QUEUED_READS: z.coerce.number().int().min(0).default(64),
      /**
       * On FerretDB (whose updates are not atomic), how document writes are serialized. `redis`
       * (default): per document, in this process and by a lock in Redis shared by every instance
       * and `npm run worker`, about two Redis round trips per write; while Redis does not answer, a
       * write fails with DATABASE_UNAVAILABLE (reason LOCK_UNAVAILABLE) and writes nothing.
       * `process`: in this process only, which declares it the only writer: writes go on while Redis
       * is down, and a second instance (or worker) on the same Redis refuses to start while this one
       * runs. No effect on MongoDB.
       */
      FERRETDB_DOCUMENT_LOCK: z.enum(['redis', 'process']).default('redis'),
    })
    .transform((env) => ({
      mongodbUri: env.MONGODB_URI,
      mongodbTimeoutMs: env.MONGODB_TIMEOUT_MS,
      mongodbReads: {
        capacity: env.MONGODB_MAX_CONCURRENT_READS,
        queueMs: env.MONGODB_READ_QUEUE_MS,
        maxQueued: env.MONGODB_MAX_QUEUED_READS,
      },
      ferretdbDocumentLock: env.FERRETDB_DOCUMENT_LOCK,
    })),
  /** Redis: the cache's, the rate limits' state, a Cluster, and how long a command may take. */
  redis: z
    .object({
      /** Redis URL; unset outside production starts a private redis-server (or runs without cache). */
      REDIS_URL: z
        .string()
        .regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')
        .optional(),
      /**
       * The Redis of state that must survive memory pressure (the rate limits' counters): one with
       * `maxmemory-policy noeviction`, or no maxmemory. Default: the cache's Redis, where under
       * memory pressure an evicting policy may drop counters (and so lift a lockout).
       */
      REDIS_STATE_URL: z
        .string()
        .regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')
        .optional(),
      /** Redis Cluster seed nodes, `host:port,host:port`; when set, the cache uses the cluster (REDIS_URL is not needed). */
      REDIS_CLUSTER_NODES: z
        .string()
        .regex(/^[\w.-]+:\d+(,[\w.-]+:\d+)*$/, 'must look like 10.0.0.1:7000,10.0.0.2:7000')
        .optional(),
      /** Per-command Redis timeout in milliseconds; default 250. */
      REDIS_COMMAND_TIMEOUT_MS: z.coerce.number().int().min(1).default(250),
    })
    .transform((env) => ({
      redisUrl: env.REDIS_URL,
      redisStateUrl: env.REDIS_STATE_URL,
      redisClusterNodes: env.REDIS_CLUSTER_NODES?.split(',') ?? null,
      redisCommandTimeoutMs: env.REDIS_COMMAND_TIMEOUT_MS,
    })),
  /** The entity, field and response caches, and the write policy of each entity type. Defaults are the package's (DEFAULT_CACHE_SETTINGS), but for CACHE_RESPONSES. */
  cache: cacheArea,
  /** The write-behind worker: in this process or `npm run worker`, its batches, retries and drain. */
  writeBehind: writeBehindArea,
  /** A CDN or reverse proxy in front: the surrogate keys of GET responses, and purges on invalidation. */
  sharedCache: sharedCacheArea,
  /** The limits of one GraphQL operation. */
  limits: z
    .object({
      /** Deepest selection nesting a query may have; default 12. */
      GRAPHQL_MAX_DEPTH: z.coerce.number().int().min(2).max(100).default(12),
      /** Largest estimated query cost (graphql-armor cost limit); default 20000. */
      GRAPHQL_MAX_COST: z.coerce.number().int().min(100).default(20_000),
      /** Most aliases in one operation; default 30. */
      GRAPHQL_MAX_ALIASES: z.coerce.number().int().min(1).default(30),
      /** Most tokens in one document (blocks oversized queries before parsing); default 5000. */
      GRAPHQL_MAX_TOKENS: z.coerce.number().int().min(100).default(5_000),
    })
    .transform((env) => ({
      limits: {
        maxDepth: env.GRAPHQL_MAX_DEPTH,
        maxCost: env.GRAPHQL_MAX_COST,
        maxAliases: env.GRAPHQL_MAX_ALIASES,
        maxTokens: env.GRAPHQL_MAX_TOKENS,
      },
    })),
  /** The rate limits of logins, sign-ups, new sessions and product views, per client address or account. */
  rateLimits: z
    .object({
      /** The window of the login limits, in seconds (fixed: counting starts at the first attempt); default 900 (15 minutes). */
      LOGIN_WINDOW_SECONDS: z.coerce.number().int().min(1).default(900),
      /** Failed logins per email from one client address per window (a success resets it); default 5. */
      LOGIN_MAX_FAILURES_PER_EMAIL_AND_IP: z.coerce.number().int().min(1).default(5),
      /**
       * Failed logins per email per window from addresses the account has not logged in from within
       * LOGIN_KNOWN_ADDRESS_DAYS (past it, such addresses are refused; known ones never); default 10.
       */
      LOGIN_MAX_FAILURES_PER_EMAIL: z.coerce.number().int().min(1).default(10),
      /** How long an address an account logged in from stays exempt from its per-email failure limit, in days; default 30. */
      LOGIN_KNOWN_ADDRESS_DAYS: z.coerce.number().int().min(1).max(365).default(30),
      /** Login attempts, failed or not, per client address per window; default 100. */
      LOGIN_MAX_ATTEMPTS_PER_IP: z.coerce.number().int().min(1).default(100),
      /** The window of the sign-up limit, in seconds; default 3600 (an hour). */
      SIGNUP_WINDOW_SECONDS: z.coerce.number().int().min(1).default(3_600),
      /** Sign-ups (`createUser`) per client address per window; default 20. */
      SIGNUP_MAX_PER_IP: z.coerce.number().int().min(1).default(20),
      /** The window of the new-session limit, in seconds; default 86400 (a day). */
      SESSION_NEW_WINDOW_SECONDS: z.coerce.number().int().min(1).default(86_400),
      /** New sessions (successful logins) per user per window; default 50. */
      SESSION_MAX_NEW_PER_USER: z.coerce.number().int().min(1).default(50),
      /** `recordProductView` calls per client address per minute (past it: RATE_LIMITED); default 120. */
      VIEWS_PER_CLIENT_PER_MINUTE: z.coerce.number().int().min(1).default(120),
      /**
       * A client address's views of one product count once per this window, in seconds (repeats are
       * answered, not counted); default 60, 0 counts every view (a load test from one address).
       */
      VIEW_DEDUP_WINDOW_SECONDS: z.coerce.number().int().min(0).default(60),
      /** POST /cache/invalidate calls per client address per minute, authorised or not (past it: 429); default 60. */
      CACHE_INVALIDATIONS_PER_MINUTE: z.coerce.number().int().min(1).default(60),
    })
    .transform((env) => ({
      rateLimits: {
        loginWindowSeconds: env.LOGIN_WINDOW_SECONDS,
        loginFailuresPerEmailAndIp: env.LOGIN_MAX_FAILURES_PER_EMAIL_AND_IP,
        loginFailuresPerEmail: env.LOGIN_MAX_FAILURES_PER_EMAIL,
        loginKnownAddressSeconds: env.LOGIN_KNOWN_ADDRESS_DAYS * 86_400,
        loginAttemptsPerIp: env.LOGIN_MAX_ATTEMPTS_PER_IP,
        signUpWindowSeconds: env.SIGNUP_WINDOW_SECONDS,
        signUpsPerIp: env.SIGNUP_MAX_PER_IP,
        sessionWindowSeconds: env.SESSION_NEW_WINDOW_SECONDS,
        sessionsPerUser: env.SESSION_MAX_NEW_PER_USER,
        viewsPerClientPerMinute: env.VIEWS_PER_CLIENT_PER_MINUTE,
        viewDedupWindowSeconds: env.VIEW_DEDUP_WINDOW_SECONDS,
        invalidationsPerClientPerMinute: env.CACHE_INVALIDATIONS_PER_MINUTE,
      } satisfies RateLimitSettings,
    })),
  /** The embedded MongoDB and Redis started outside production when MONGODB_URI or REDIS_URL is unset. */
  embedded: z
    .object({
      /** A ferretdb binary to use as the embedded MongoDB-compatible server. */
      FERRETDB_BIN: z.string().min(1).optional(),
      /** `maxmemory` of the embedded Redis (REDIS_URL unset), e.g. `512mb`; default 256mb (policy volatile-lru). */
      EMBEDDED_REDIS_MAXMEMORY: z
        .string()
        .regex(/^\d+(kb|mb|gb)?$/i, 'must look like 256mb (a number of bytes, kb, mb or gb)')
        .default('256mb'),
      /** Which embedded MongoDB to start when MONGODB_URI is unset; default auto (mongod, else FerretDB). */
      EMBEDDED_MONGODB: z.enum(['auto', 'mongodb-memory-server', 'ferretdb']).default('auto'),
    })
    .transform((env) => ({
      ferretdbBin: env.FERRETDB_BIN,
      embeddedMongodb: env.EMBEDDED_MONGODB,
      embeddedRedisMaxMemory: env.EMBEDDED_REDIS_MAXMEMORY,
    })),
};

type Area = keyof typeof configAreas;
type AreaConfig<A extends Area> = z.output<(typeof configAreas)[A]>;

/** The process configuration, parsed once from the environment by {@link loadConfig}: every area's. */
export type Config = AreaConfig<'server'> &
  AreaConfig<'mongo'> &
  AreaConfig<'redis'> &
  AreaConfig<'cache'> &
  AreaConfig<'writeBehind'> &
  AreaConfig<'sharedCache'> &
  AreaConfig<'limits'> &
  AreaConfig<'rateLimits'> &
  AreaConfig<'embedded'>;

// Two areas that named one variable would each read it, and the docs list it twice.
const areaOf = new Map<string, Area>();
for (const [area, schema] of Object.entries(configAreas) as [Area, (typeof configAreas)[Area]][]) {
  for (const variable of Object.keys(schema.in.shape)) {
    const other = areaOf.get(variable);
    if (other) throw new Error(`config.ts: ${variable} is in two areas, ${other} and ${area}`);
    areaOf.set(variable, area);
  }
}

/** Thrown by {@link loadConfig}; its message names every bad variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * Parses and validates the environment once. Throws a {@link ConfigError} naming each bad
 * variable and why, so that start-up stops before anything connects.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const lines: string[] = [];
  const parts: Partial<Config>[] = [];
  // Every area is parsed, so that the message names every bad variable, not those of the first bad area.
  for (const schema of Object.values(configAreas)) {
    const result = schema.safeParse(cleaned);
    if (result.success) {
      parts.push(result.data);
      continue;
    }
    for (const issue of result.error.issues) {
      const variable = issue.path.join('.') || 'environment';
      const raw = cleaned[String(issue.path[0])];
      lines.push(`  ${variable}: ${issue.message}${raw === undefined ? '' : ` (got ${JSON.stringify(raw)})`}`);
    }
  }
  const config = Object.assign({}, ...parts) as Config;
  if (lines.length === 0 && config.production && !config.mongodbUri) {
    lines.push('  MONGODB_URI: is required when NODE_ENV=production (no embedded services there)');
  }
  if (lines.length > 0) throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  return config;
}
