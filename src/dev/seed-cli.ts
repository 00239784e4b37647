import { ConfigError, loadConfig } from '../config.js';
import { connectMongo } from '../db.js';
import { createLogger } from '../logger.js';
import { createMetrics } from '../metrics.js';
import { ensureIndexes } from '../models/index.js';
import { seedDemoData } from './seed.js';

// `npm run seed`: the idempotent demo seed, on demand, into MONGODB_URI.
let config;
try {
  config = loadConfig();
} catch (error) {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(1);
}
const logger = createLogger({ level: config.logLevel });
if (!config.mongodbUri) {
  logger.error('npm run seed needs MONGODB_URI (npm start seeds its embedded database by itself)');
  process.exit(1);
}
try {
  const db = await connectMongo({ uri: config.mongodbUri, logger, metrics: createMetrics() });
  try {
    await ensureIndexes(logger);
    await seedDemoData({ logger, admin: config.seedAdmin });
  } finally {
    await db.close();
  }
} catch (error) {
  logger.fatal({ reason: error instanceof Error ? error.message : String(error) }, `seeding ${config.mongodbUri} failed`);
  process.exit(1);
}
