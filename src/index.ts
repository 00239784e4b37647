import { createRequire } from 'node:module';
import { startApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { startBackingServices } from './dev/backing-services.js';
import { createLogger } from './logger.js';
import { checkPortFree, portInUseMessage } from './port-in-use.js';
import { isMongoUnavailable } from './services/mongo-errors.js';

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

// A port already taken (another `npm start`?) fails here, in one line, before services start
// and seed (and again below, should it be taken meanwhile). Other listen errors are the server's to report.
/** The one line of a taken PORT or METRICS_PORT (a listen error names its port), or null for any other error. */
const portTaken = (error: unknown): string | null =>
  config.metrics.port !== null && config.metrics.port !== 0 && (error as { port?: number } | null)?.port === config.metrics.port
    ? portInUseMessage(error, config.metrics.port, 'METRICS_PORT')
    : portInUseMessage(error, config.port);
for (const [port, host] of [
  [config.port, config.host],
  [config.metrics.port, config.metrics.host],
] as const) {
  if (port === null) continue;
  await checkPortFree(port, host).catch((error: unknown) => {
    const inUse = portTaken(error);
    if (!inUse) return;
    console.error(inUse);
    process.exit(1);
  });
}

const services = await startBackingServices(config, logger).catch((error: unknown) => {
  logger.fatal({ err: error }, 'could not start MongoDB or Redis');
  process.exit(1);
});
const app = await startApp({ config, logger, mongodbUri: services.mongodbUri, redisUrl: services.redisUrl }).catch(
  async (error: unknown) => {
    const inUse = portTaken(error);
    if (inUse) console.error(inUse);
    else if (isMongoUnavailable(error)) {
      // One line, not the driver's topology dump: what to check is the address.
      console.error(`MongoDB at ${withoutPassword(services.mongodbUri)} did not answer: check MONGODB_URI and that the server runs`);
    } else logger.fatal({ err: error }, 'start-up failed');
    await services.stop();
    process.exit(1);
  },
);

// The addresses in use, those of the embedded services included: while this runs, the same
// MONGODB_URI and REDIS_URL serve `npm run seed`, `npm run worker` or another server.
logger.info(
  {
    MONGODB_URI: withoutPassword(services.mongodbUri),
    ...(config.redisClusterNodes
      ? { REDIS_CLUSTER_NODES: config.redisClusterNodes.join(',') }
      : { REDIS_URL: services.redisUrl ? withoutPassword(services.redisUrl) : 'none (no cache)' }),
    embedded: [services.embedded.mongodb, services.embedded.redis ? 'redis-server' : null].filter(Boolean).join(', ') || 'none',
  },
  `GraphQL server ready at ${app.url}/graphql${config.production ? '' : ' (Apollo Sandbox in a browser, online)'}${
    config.explorer ? `; explorer, offline too, at ${app.url}/explorer` : ''
  }${app.server.metricsUrl ? `; metrics at ${app.server.metricsUrl}/metrics` : ''}`,
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

/** A connection string with its password, if any, replaced by `***` (for the log). */
function withoutPassword(uri: string): string {
  return uri.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/]*):[^@/]*@/i, '$1:***@');
}

function hasPinoPretty(): boolean {
  try {
    createRequire(import.meta.url).resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}
