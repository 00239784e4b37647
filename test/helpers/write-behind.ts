import { Redis } from 'ioredis';
import { inject } from 'vitest';
import { WriteBehindWorker, type WriteBehindWorkerOptions } from '../../src/cache/write-behind/index.js';
import { createLogger } from '../../src/logger.js';
import { mongoWriteTargets, responsesAfterSettle } from '../../src/services/write-behind-target.js';
import type { TestApp } from './test-app.js';

/** A worker for `t` that runs only when the test calls `runOnce` (start the app with WRITE_BEHIND_WORKER=false). */
export function manualWorker(t: TestApp, options: Partial<WriteBehindWorkerOptions> = {}): WriteBehindWorker {
  const { store, keys, writeBehind } = t.app.cache;
  if (!store) throw new Error('the test app has no Redis');
  return new WriteBehindWorker({
    store,
    keys,
    targets: mongoWriteTargets(t.app.documentLock),
    metrics: writeBehind.metrics,
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

/** The value of a counter of the app's metrics registry for one label set (0 when never counted). */
export async function metricValue(t: TestApp, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = t.app.metrics.registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want))
    .reduce((sum, v) => sum + v.value, 0);
}

/** Waits until `check` is true, polling; fails after `timeoutMs`. */
export async function until(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
