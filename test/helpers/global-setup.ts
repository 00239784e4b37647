import type { TestProject } from 'vitest/node';
import { startEmbeddedMongo, type EmbeddedMongoPreference } from '../../src/dev/embedded-mongo.js';
import { startEmbeddedRedis } from '../../src/dev/embedded-redis.js';
import { createLogger } from '../../src/logger.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** mongodb://host:port of the test server, without a database name. */
    mongoBaseUri: string;
    /** redis://host:port of the test Redis. */
    redisUrl: string;
  }
}

/**
 * Starts the real servers the tests talk to: TEST_MONGODB_URI / TEST_REDIS_URL when given,
 * else an embedded MongoDB (mongod through mongodb-memory-server, else FerretDB) and a
 * private redis-server, exactly as `npm start` would.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'warn' });
  const stops: (() => Promise<void>)[] = [];
  let mongoBaseUri = process.env.TEST_MONGODB_URI?.replace(/\/+$/, '');
  if (!mongoBaseUri) {
    const mongo = await startEmbeddedMongo({
      logger,
      prefer: (process.env.EMBEDDED_MONGODB as EmbeddedMongoPreference | undefined) ?? 'auto',
      ferretdbBin: process.env.FERRETDB_BIN,
    });
    stops.push(() => mongo.stop());
    mongoBaseUri = mongo.uri;
    console.log(`tests use ${mongo.kind} at ${mongo.uri}`);
  }
  let redisUrl = process.env.TEST_REDIS_URL;
  if (!redisUrl) {
    const redis = await startEmbeddedRedis();
    stops.push(() => redis.stop());
    redisUrl = redis.url;
  }
  project.provide('mongoBaseUri', mongoBaseUri);
  project.provide('redisUrl', redisUrl);
  return async () => {
    for (const stop of stops.reverse()) await stop();
  };
}
