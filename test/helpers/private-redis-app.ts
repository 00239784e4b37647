import { afterAll, beforeAll } from 'vitest';
import { startPrivateRedis, type PrivateRedis } from './redis.js';
import { startTestApp, type TestApp, type TestAppOptions } from './test-app.js';

/** Options of {@link startPrivateRedisApp}: those of startTestApp, whose Redis is the private one. */
export type PrivateRedisAppOptions = Omit<TestAppOptions, 'redisUrl'>;

/** A test app over a redis-server of its own. */
export interface PrivateRedisApp {
  redis: PrivateRedis;
  t: TestApp;
  /** Lets a frozen Redis run again, stops the app, then the Redis. */
  stop(): Promise<void>;
}

/** Starts a private Redis, then a test app that uses it (for a test that starts and stops its own). */
export async function startPrivateRedisApp(options: PrivateRedisAppOptions = {}): Promise<PrivateRedisApp> {
  const redis = await startPrivateRedis();
  let t: TestApp;
  try {
    t = await startTestApp({ ...options, redisUrl: redis.url });
  } catch (error) {
    await redis.stop();
    throw error;
  }
  return {
    redis,
    t,
    async stop() {
      // A test may have left it frozen (SIGSTOP): the app's shutdown would wait on it.
      redis.resume();
      try {
        await t.stop();
      } finally {
        await redis.stop();
      }
    },
  };
}

/**
 * A private Redis and a test app over it for the enclosing file or describe block: started in
 * beforeAll, stopped in afterAll (see {@link PrivateRedisApp.stop}). `redis` and `t` stand for
 * them from the start, to be used once beforeAll has run; a test may stop the Redis itself.
 *
 * ```ts
 * const { redis, t } = usePrivateRedisApp({ env: { WRITE_BEHIND_WORKER: 'false' } });
 * ```
 */
export function usePrivateRedisApp(options: PrivateRedisAppOptions = {}): Pick<PrivateRedisApp, 'redis' | 't'> {
  let started: PrivateRedisApp | undefined;
  beforeAll(async () => {
    started = await startPrivateRedisApp(options);
  });
  afterAll(async () => {
    await started?.stop();
  });
  return { redis: late('redis', () => started?.redis), t: late('t', () => started?.t) };
}

/** An object that forwards to what `current` returns, which exists only once beforeAll has run. */
function late<T extends object>(name: string, current: () => T | undefined): T {
  const target = (): T => {
    const value = current();
    if (!value) throw new Error(`usePrivateRedisApp: \`${name}\` is used before its beforeAll has run`);
    return value;
  };
  return new Proxy({} as T, {
    get(_, key) {
      const object = target();
      const value: unknown = Reflect.get(object, key);
      return typeof value === 'function' ? value.bind(object) : value;
    },
    has: (_, key) => Reflect.has(target(), key),
  });
}
