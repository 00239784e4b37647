import { Redis } from 'ioredis';
import { inject } from 'vitest';
import { WriteBehindWorker, type WriteBehindWorkerOptions } from 'graphql-lease-cache/write-behind';
import { createLogger } from '../../src/logger.js';
import { mongoWriteTargets, responsesAfterSettle } from '../../src/services/write-behind-target.js';
import type { TestApp } from './test-app.js';

/** A worker for `t` that runs only when the test calls `runOnce` (start the app with WRITE_BEHIND_WORKER=false). */
export function manualWorker(t: TestApp, options: Partial<WriteBehindWorkerOptions> = {}): WriteBehindWorker {
  const { store, keys } = t.app.cache;
  if (!store) throw new Error('the test app has no Redis');
  return new WriteBehindWorker({
    store,
    keys,
    targets: mongoWriteTargets(t.app.documentLock),
    logger: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    leaderTtlMs: 300,
    afterSettle: responsesAfterSettle(t.app.cache),
    ...options,
  });
}

/** A plain client of the shared test Redis, to look at what the cache stored. */
export function inspectRedis(url: string = inject('redisUrl')): Redis {
  return new Redis(url, { maxRetriesPerRequest: 1 });
}
