import { z } from 'zod';

/** The process configuration, parsed once from the environment by {@link loadConfig}. */
export type Config = z.infer<typeof configSchema>;

const booleanString = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((value) => value === 'true' || value === '1' || value === 'yes');

const port = z.coerce.number().int().min(0).max(65_535);

const configSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
    /** HTTP port; default 4000 (0 picks a free one). */
    PORT: port.default(4000),
    /** Interface to listen on; default 127.0.0.1 (the container image sets 0.0.0.0). */
    HOST: z.string().min(1).default('127.0.0.1'),
    /** MongoDB connection string; unset outside production starts an embedded server. */
    MONGODB_URI: z
      .string()
      .regex(/^mongodb(\+srv)?:\/\//, 'must start with mongodb:// or mongodb+srv://')
      .optional(),
    /** Redis URL; unset outside production starts a private redis-server (or runs without cache). */
    REDIS_URL: z
      .string()
      .regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')
      .optional(),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** Seed demo data at start-up when the database is empty; default true outside production. */
    SEED_ON_START: booleanString.optional(),
    SEED_ADMIN_EMAIL: z.email().default('admin@example.com'),
    SEED_ADMIN_PASSWORD: z.string().min(8).default('admin-password'),
    /** Serve schema introspection; default true outside production. */
    GRAPHQL_INTROSPECTION: booleanString.optional(),
    /** Deepest selection nesting a query may have; default 12. */
    GRAPHQL_MAX_DEPTH: z.coerce.number().int().min(2).max(100).default(12),
    /** Largest estimated query cost (graphql-armor cost limit); default 20000. */
    GRAPHQL_MAX_COST: z.coerce.number().int().min(100).default(20_000),
    /** Most aliases in one operation; default 30. */
    GRAPHQL_MAX_ALIASES: z.coerce.number().int().min(1).default(30),
    /** Most tokens in one document (blocks oversized queries before parsing); default 5000. */
    GRAPHQL_MAX_TOKENS: z.coerce.number().int().min(100).default(5_000),
    /** Session lifetime in seconds, renewed on use (sliding); default 7 days. */
    SESSION_TTL_SECONDS: z.coerce
      .number()
      .int()
      .min(60)
      .default(7 * 24 * 3600),
    /** A ferretdb binary to use as the embedded MongoDB-compatible server. */
    FERRETDB_BIN: z.string().min(1).optional(),
    /** Which embedded MongoDB to start when MONGODB_URI is unset; default auto (mongod, else FerretDB). */
    EMBEDDED_MONGODB: z.enum(['auto', 'mongodb-memory-server', 'ferretdb']).default('auto'),
  })
  .transform((env) => {
    const production = env.NODE_ENV === 'production';
    return {
      nodeEnv: env.NODE_ENV,
      production,
      port: env.PORT,
      host: env.HOST,
      mongodbUri: env.MONGODB_URI,
      redisUrl: env.REDIS_URL,
      logLevel: env.LOG_LEVEL,
      seedOnStart: env.SEED_ON_START ?? !production,
      seedAdmin: { email: env.SEED_ADMIN_EMAIL.toLowerCase(), password: env.SEED_ADMIN_PASSWORD },
      introspection: env.GRAPHQL_INTROSPECTION ?? !production,
      limits: {
        maxDepth: env.GRAPHQL_MAX_DEPTH,
        maxCost: env.GRAPHQL_MAX_COST,
        maxAliases: env.GRAPHQL_MAX_ALIASES,
        maxTokens: env.GRAPHQL_MAX_TOKENS,
      },
      sessionTtlSeconds: env.SESSION_TTL_SECONDS,
      ferretdbBin: env.FERRETDB_BIN,
      embeddedMongodb: env.EMBEDDED_MONGODB,
    };
  })
  .superRefine((config, ctx) => {
    if (config.production && !config.mongodbUri) {
      ctx.addIssue({ code: 'custom', path: ['MONGODB_URI'], message: 'is required when NODE_ENV=production (no embedded services there)' });
    }
  });

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
  const result = configSchema.safeParse(cleaned);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const variable = issue.path.join('.') || 'environment';
      const raw = cleaned[String(issue.path[0])];
      return `  ${variable}: ${issue.message}${raw === undefined ? '' : ` (got ${JSON.stringify(raw)})`}`;
    });
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return result.data;
}
