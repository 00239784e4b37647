import { Cluster, Redis } from 'ioredis';
import type { CacheLogger } from './logger.js';

/** A standalone Redis or a Redis Cluster client. */
export type RedisClient = Redis | Cluster;

/** Options of {@link createRedisClient}. */
export interface RedisClientOptions {
  /** A standalone Redis; ignored when `clusterNodes` is given. */
  url: string;
  /** Seed nodes of a Redis Cluster (`host:port`); the client discovers the rest. */
  clusterNodes?: readonly string[];
  logger: CacheLogger;
  /** Fail a command that has no reply after this long, in milliseconds; default 250. */
  commandTimeoutMs?: number;
  /** Fail connecting after this long, in milliseconds; default 2000. */
  connectTimeoutMs?: number;
}

/**
 * An ioredis client tuned for a cache in front of a database: commands fail fast (a short
 * timeout, no offline queue, no retries) so that a slow or absent Redis turns into cache
 * misses served from the source rather than into slow requests; it reconnects in the background.
 */
export function createRedisClient(options: RedisClientOptions): RedisClient {
  const { logger } = options;
  const common = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: options.commandTimeoutMs ?? 250,
    connectTimeout: options.connectTimeoutMs ?? 2_000,
  };
  const backoff = (attempt: number): number => Math.min(100 * 2 ** attempt, 5_000);
  const client: RedisClient = options.clusterNodes?.length
    ? new Cluster(
        options.clusterNodes.map((node) => {
          const [host = '127.0.0.1', port = '6379'] = node.split(':');
          return { host, port: Number(port) };
        }),
        {
          lazyConnect: true,
          enableOfflineQueue: false,
          // A batch spans many slots (one per entity), so the store sends one script call per
          // slot, all at once: they share each node's connection, so a batch still costs about
          // one round trip. (ioredis's auto-pipelining refuses multi-key scripts of different
          // slots in one pipeline.)
          clusterRetryStrategy: backoff,
          redisOptions: common,
        },
      )
    : new Redis(options.url, { ...common, lazyConnect: true, retryStrategy: backoff });
  let down = false;
  client.on('error', (error: Error) => {
    if (!down) logger.warn({ err: error }, 'Redis connection error; reading from the source until it is back');
    down = true;
  });
  client.on('ready', () => {
    if (down) logger.info('Redis connection restored');
    down = false;
  });
  return client;
}

/** True when Redis answers PING within the client's command timeout. */
export async function pingRedis(client: RedisClient | null): Promise<boolean> {
  if (!client) return false;
  try {
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  }
}
