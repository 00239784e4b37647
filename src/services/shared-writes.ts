import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Leadership, type Cache, type RedisClient } from 'graphql-lease-cache';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { createDocumentLock, type DocumentLock } from './document-lock.js';

/** Options of {@link startDocumentLock}. */
export interface StartDocumentLockOptions {
  /** The server is FerretDB (db.isFerretdb): writes need the lock. */
  isFerretdb: boolean;
  /** FERRETDB_DOCUMENT_LOCK. */
  mode: Config['ferretdbDocumentLock'];
  redis: RedisClient | null;
  cache: Cache;
  logger: Logger;
  /** How long a write waits for another process's lock, in milliseconds (MONGODB_TIMEOUT_MS). */
  waitMs: number;
  /** The sole-writer lease (`process` mode), in milliseconds; renewed every third. */
  leaseTtlMs: number;
}

/** The document lock of a process, and what it holds in Redis. */
export interface StartedDocumentLock {
  documentLock: DocumentLock;
  /** Gives up the sole-writer lease, if held. */
  stop(): Promise<void>;
}

/** Thrown when `process` mode finds another process writing the same FerretDB through the same Redis. */
export class AnotherWriterError extends Error {}

/**
 * The document lock this process's writes take, by FERRETDB_DOCUMENT_LOCK (see document-lock.ts):
 * off on MongoDB; on FerretDB with Redis, shared through Redis (`redis`), or in-process only
 * (`process`), which holds a Redis lease naming this process the only writer and fails with
 * {@link AnotherWriterError} when another holds it. Without Redis there is nothing to share a
 * lock through: in-process, and the deployment must be one instance.
 */
export async function startDocumentLock(options: StartDocumentLockOptions): Promise<StartedDocumentLock> {
  const { isFerretdb, redis, cache, logger } = options;
  if (!isFerretdb) return { documentLock: createDocumentLock(false), stop: async () => undefined };
  if (!redis || !cache.store) {
    logger.warn('FerretDB without Redis: document writes are serialized in this process only; run one instance');
    return { documentLock: createDocumentLock(true), stop: async () => undefined };
  }
  if (options.mode === 'redis') {
    const documentLock = createDocumentLock(true, { redis, keyOf: (name) => cache.keys.lock(name), waitMs: options.waitMs, logger });
    return { documentLock, stop: async () => undefined };
  }
  const lease = new Leadership({
    store: cache.store,
    key: cache.keys.lock('ferretdb-writer'),
    holder: `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`,
    ttlMs: options.leaseTtlMs,
  });
  const reply = await lease.acquire().catch((error: unknown) => {
    // Declared the only writer, and nothing to check it with: it is taken at its word.
    logger.warn({ err: error }, 'FERRETDB_DOCUMENT_LOCK=process: Redis did not answer, so no other writer could be ruled out');
    return 'unknown' as const;
  });
  if (reply === 'lost') {
    throw new AnotherWriterError(
      'FERRETDB_DOCUMENT_LOCK=process: another server instance or worker already writes this FerretDB through this Redis; ' +
        'two processes serialized in-process only lose updates. Set FERRETDB_DOCUMENT_LOCK=redis on all of them.',
    );
  }
  const renewal = setInterval(() => {
    lease
      .acquire()
      .then((renewed) => {
        if (renewed === 'lost') logger.error('FERRETDB_DOCUMENT_LOCK=process: another process holds the sole-writer lease');
      })
      .catch(() => undefined); // Redis down: tried again in a third of the lease
  }, options.leaseTtlMs / 3);
  renewal.unref();
  return {
    documentLock: createDocumentLock(true),
    async stop() {
      clearInterval(renewal);
      await lease.resign();
    },
  };
}
