import { Redis } from 'ioredis';
import type { Logger } from '../logger.js';

/** Options of {@link createRedisClient}. */
export interface RedisClientOptions {
  url: string;
  logger: Logger;
  /** Fail a command that has no reply after this long, in milliseconds; default 250. */
  commandTimeoutMs?: number;
  /** Fail connecting after this long, in milliseconds; default 2000. */
  connectTimeoutMs?: number;
}

/**
 * An ioredis client tuned for a cache in front of a database: commands fail fast (a short
 * timeout, no offline queue, no retries) so that a slow or absent Redis turns into cache
 * misses served from MongoDB rather than into slow requests; it reconnects in the background.
 */
export function createRedisClient(options: RedisClientOptions): Redis {
  const { logger } = options;
  const client = new Redis(options.url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: options.commandTimeoutMs ?? 250,
    connectTimeout: options.connectTimeoutMs ?? 2_000,
    retryStrategy: (attempt) => Math.min(100 * 2 ** attempt, 5_000),
  });
  let down = false;
  client.on('error', (error: Error) => {
    if (!down) logger.warn({ err: error }, 'Redis connection error; serving from MongoDB until it is back');
    down = true;
  });
  client.on('ready', () => {
    if (down) logger.info('Redis connection restored');
    down = false;
  });
  return client;
}

/** True when Redis answers PING within the client's command timeout. */
export async function pingRedis(client: Redis | null): Promise<boolean> {
  if (!client) return false;
  try {
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  }
}
