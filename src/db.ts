import mongoose from 'mongoose';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import { currentTrace } from './trace.js';

/** Options of {@link connectMongo}. */
export interface ConnectMongoOptions {
  uri: string;
  logger: Logger;
  metrics: Metrics;
  /** Give up selecting a server after this long, in milliseconds; default 5000. */
  serverSelectionTimeoutMs?: number;
}

/** A connected database with a running count of the commands sent to it. */
// (DocumentLock: see services/document-lock.ts.)
export interface Database {
  connection: mongoose.Connection;
  /** True when the server is FerretDB (its buildInfo has `ferretdbVersion`), which needs {@link DocumentLock}. */
  isFerretdb: boolean;
  /** MongoDB commands sent since connecting (driver command monitoring). */
  commandCount(): number;
  /** True when a ping answers within a second. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * Connects mongoose (the models use its default connection) with command monitoring on,
 * counting every command in the metrics and in the current request's trace.
 */
export async function connectMongo(options: ConnectMongoOptions): Promise<Database> {
  const { logger, metrics } = options;
  mongoose.set('strictQuery', true);
  await mongoose.connect(options.uri, {
    monitorCommands: true,
    serverSelectionTimeoutMS: options.serverSelectionTimeoutMs ?? 5_000,
    autoIndex: false,
  });
  let commands = 0;
  const client = mongoose.connection.getClient();
  client.on('commandStarted', (event) => {
    commands += 1;
    metrics.mongoCommands.inc({ command: event.commandName });
    const trace = currentTrace();
    if (trace) trace.mongoCommands += 1;
  });
  const buildInfo = await mongoose.connection.db?.admin().command({ buildInfo: 1 });
  const isFerretdb = typeof buildInfo?.ferretdbVersion === 'string';
  logger.info(
    { db: mongoose.connection.name, server: isFerretdb ? `FerretDB ${buildInfo?.ferretdbVersion}` : `MongoDB ${buildInfo?.version}` },
    'connected to MongoDB',
  );
  return {
    connection: mongoose.connection,
    isFerretdb,
    commandCount: () => commands,
    async ping() {
      try {
        const db = mongoose.connection.db;
        if (!db) return false;
        await Promise.race([
          db.command({ ping: 1 }),
          new Promise((_, reject) => setTimeout(() => reject(new Error('ping timeout')), 1_000).unref()),
        ]);
        return true;
      } catch {
        return false;
      }
    },
    close: () => mongoose.disconnect(),
  };
}
