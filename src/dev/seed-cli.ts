import { loadConfig } from '../config.js';
import { connectMongo } from '../db.js';
import { createLogger } from '../logger.js';
import { createMetrics } from '../metrics.js';
import { ensureIndexes } from '../models/index.js';
import { seedDemoData } from './seed.js';

// `npm run seed`: the idempotent demo seed, on demand, into MONGODB_URI.
const config = loadConfig();
const logger = createLogger({ level: config.logLevel });
if (!config.mongodbUri) {
  logger.error('npm run seed needs MONGODB_URI (npm start seeds its embedded database by itself)');
  process.exit(1);
}
const db = await connectMongo({ uri: config.mongodbUri, logger, metrics: createMetrics() });
try {
  await ensureIndexes(logger);
  await seedDemoData({ logger, admin: config.seedAdmin });
} finally {
  await db.close();
}
