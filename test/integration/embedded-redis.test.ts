import { existsSync } from 'node:fs';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { startBackingServices } from '../../src/dev/backing-services.js';
import { redisServerAvailable, startEmbeddedRedis } from '../../src/dev/embedded-redis.js';
import { createLogger } from '../../src/logger.js';

/** The settings write-behind depends on, as the server reports them. */
async function settingsOf(url: string): Promise<Record<string, string>> {
  const client = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    const names = ['appendonly', 'appendfsync', 'maxmemory', 'maxmemory-policy', 'save', 'dir'];
    const settings: Record<string, string> = {};
    for (const name of names) {
      const [, value] = (await client.config('GET', name)) as [string, string];
      settings[name] = value;
    }
    return settings;
  } finally {
    client.disconnect();
  }
}

describe.runIf(redisServerAvailable())('the embedded Redis runs as the README asks of production', () => {
  it('npm start (REDIS_URL unset): AOF everysec in its temporary directory, EMBEDDED_REDIS_MAXMEMORY, volatile-lru', async () => {
    // MONGODB_URI set: only Redis is embedded here (nothing connects to that address).
    const config = loadConfig({ NODE_ENV: 'development', MONGODB_URI: 'mongodb://127.0.0.1:1/unused', EMBEDDED_REDIS_MAXMEMORY: '64mb' });
    const services = await startBackingServices(config, createLogger({ level: 'silent' }));
    try {
      expect(services.embedded.redis).toBe(true);
      const settings = await settingsOf(services.redisUrl ?? '');
      expect(settings).toMatchObject({
        appendonly: 'yes',
        appendfsync: 'everysec',
        maxmemory: String(64 * 1024 * 1024),
        'maxmemory-policy': 'volatile-lru',
        save: '',
      });
      expect(settings.dir).toMatch(/gfc-redis-/);
      expect(existsSync(settings.dir ?? '')).toBe(true);
      await services.stop();
      // The run's data, AOF included, goes with it.
      expect(existsSync(settings.dir ?? '')).toBe(false);
    } finally {
      await services.stop();
    }
  });

  it('defaults to a 256mb bound (tests and benchmarks start it the same way)', async () => {
    const redis = await startEmbeddedRedis();
    try {
      expect(await settingsOf(redis.url)).toMatchObject({
        appendonly: 'yes',
        maxmemory: String(256 * 1024 * 1024),
        'maxmemory-policy': 'volatile-lru',
      });
    } finally {
      await redis.stop();
    }
  });

  it('EMBEDDED_REDIS_MAXMEMORY is checked at start-up', () => {
    expect(() => loadConfig({ EMBEDDED_REDIS_MAXMEMORY: 'lots' })).toThrow(/EMBEDDED_REDIS_MAXMEMORY: must look like 256mb/);
  });
});
