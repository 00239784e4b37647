import mongoose from 'mongoose';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import { currentTrace } from './trace.js';

/** Options of {@link connectMongo}. */
export interface ConnectMongoOptions {
  uri: string;
  logger: Logger;
  metrics: Metrics;
  /**
   * The most one operation waits for MongoDB before failing, in milliseconds; default 5000.
   * See {@link driverTimeouts}.
   */
  timeoutMs?: number;
}

/**
 * The driver options that bound one operation by `timeoutMs`, a hung server included (one that
 * accepts connections and never answers). The driver's client-side operation timeout
 * (`timeoutMS`) would be the tool, but the driver mongoose 9 ships (7.8) made it a no-op, so
 * the budget is split: half of it to select a server or check out a pooled connection, half
 * for each attempt's connect and reply; the driver makes at most two attempts (its retryable
 * reads and writes, and one retry of a connection that could not be established). A command
 * with no reply in half the budget fails with a MongoNetworkTimeoutError and its connection is
 * closed, so a legitimately slow command must stay under that.
 */
export function driverTimeouts(timeoutMs: number) {
  const attemptMs = Math.ceil(timeoutMs / 2);
  return {
    serverSelectionTimeoutMS: attemptMs,
    waitQueueTimeoutMS: attemptMs,
    connectTimeoutMS: attemptMs,
    socketTimeoutMS: attemptMs,
    maxAdaptiveRetries: 1,
  };
}

/** Commands that may change documents: what a failed request counts to know whether it wrote. */
const WRITE_COMMANDS = new Set(['insert', 'update', 'delete', 'findAndModify', 'bulkWrite']);

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
 * counting every command in the metrics and in the current request's trace, and the write
 * commands that MongoDB did not refuse in the trace's `mongoWrites`.
 */
export async function connectMongo(options: ConnectMongoOptions): Promise<Database> {
  const { logger, metrics } = options;
  mongoose.set('strictQuery', true);
  await mongoose.connect(options.uri, {
    monitorCommands: true,
    ...driverTimeouts(options.timeoutMs ?? 5_000),
    autoIndex: false,
  });
  let commands = 0;
  const client = mongoose.connection.getClient();
  client.on('commandStarted', (event) => {
    commands += 1;
    metrics.mongoCommands.inc({ command: event.commandName });
    const trace = currentTrace();
    if (!trace) return;
    trace.mongoCommands += 1;
    if (WRITE_COMMANDS.has(event.commandName)) trace.mongoWrites += 1;
  });
  // A write the server answered with an error was not applied; one that got no answer (a
  // network error, a timeout) may have been, and stays counted.
  client.on('commandFailed', (event) => {
    const trace = currentTrace();
    if (trace && WRITE_COMMANDS.has(event.commandName) && event.failure instanceof mongoose.mongo.MongoServerError) trace.mongoWrites -= 1;
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
