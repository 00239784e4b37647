import { createRequire } from 'node:module';
import { startApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { startBackingServices } from './dev/backing-services.js';
import { createLogger } from './logger.js';

// Start-up only: configuration, services, server, signals.
let config;
try {
  config = loadConfig();
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(1);
  }
  throw error;
}
const logger = createLogger({ level: config.logLevel, pretty: !config.production && process.stdout.isTTY && hasPinoPretty() });

const services = await startBackingServices(config, logger).catch((error: unknown) => {
  logger.fatal({ err: error }, 'could not start MongoDB or Redis');
  process.exit(1);
});
const app = await startApp({ config, logger, mongodbUri: services.mongodbUri, redisUrl: services.redisUrl }).catch(
  async (error: unknown) => {
    logger.fatal({ err: error }, 'start-up failed');
    await services.stop();
    process.exit(1);
  },
);

logger.info(
  {
    mongodb: services.embedded.mongodb ?? 'MONGODB_URI',
    redis: config.redisClusterNodes
      ? 'REDIS_CLUSTER_NODES'
      : services.redisUrl
        ? services.embedded.redis
          ? 'embedded'
          : 'REDIS_URL'
        : 'none',
  },
  `GraphQL server ready at ${app.url}/graphql${config.production ? '' : ' (open it in a browser for Apollo Sandbox)'}`,
);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down');
  const force = setTimeout(() => {
    logger.error('shutdown took over 15 s; exiting');
    process.exit(1);
  }, 15_000);
  force.unref();
  await app.stop();
  await services.stop();
  logger.flush();
  process.exit(0);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));

function hasPinoPretty(): boolean {
  try {
    createRequire(import.meta.url).resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}
