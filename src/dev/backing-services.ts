import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { startEmbeddedMongo, type EmbeddedMongo } from './embedded-mongo.js';
import { redisServerAvailable, startEmbeddedRedis, type EmbeddedRedis } from './embedded-redis.js';

/** Where MongoDB and Redis are, and how to stop the ones started here. */
export interface BackingServices {
  mongodbUri: string;
  /** Null: no Redis, the server runs without a cache. */
  redisUrl: string | null;
  /** Which servers were started here (for the start-up banner). */
  embedded: { mongodb: EmbeddedMongo['kind'] | null; redis: boolean };
  /** Stops what was started here (not servers given by URL). */
  stop(): Promise<void>;
}

/**
 * MongoDB and Redis from the configuration, or, outside production when unset, embedded ones:
 * a MongoDB-compatible server (database `app`) and a private redis-server with AOF and a memory
 * bound (or none, with a warning, when redis-server is not installed).
 */
export async function startBackingServices(config: Config, logger: Logger): Promise<BackingServices> {
  const started: { stop(): Promise<void> }[] = [];
  const stop = async (): Promise<void> => {
    await Promise.allSettled(started.reverse().map((s) => s.stop()));
  };
  try {
    let mongodbUri = config.mongodbUri;
    let mongoKind: EmbeddedMongo['kind'] | null = null;
    if (!mongodbUri) {
      const mongo = await startEmbeddedMongo({ logger, ferretdbBin: config.ferretdbBin, prefer: config.embeddedMongodb });
      started.push(mongo);
      mongodbUri = `${mongo.uri}/app`;
      mongoKind = mongo.kind;
    }
    let redisUrl = config.redisUrl ?? null;
    let embeddedRedis: EmbeddedRedis | null = null;
    if (config.redisClusterNodes) {
      redisUrl = null; // the cache uses the cluster
    } else if (!redisUrl && !config.production) {
      if (redisServerAvailable()) {
        embeddedRedis = await startEmbeddedRedis({ maxMemory: config.embeddedRedisMaxMemory });
        started.push(embeddedRedis);
        redisUrl = embeddedRedis.url;
      } else {
        logger.warn('REDIS_URL is unset and redis-server is not installed: running without a cache');
      }
    } else if (!redisUrl) {
      logger.warn('REDIS_URL is unset: running without a cache');
    }
    return { mongodbUri, redisUrl, embedded: { mongodb: mongoKind, redis: embeddedRedis !== null }, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
