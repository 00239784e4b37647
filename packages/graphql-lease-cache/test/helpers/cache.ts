/**
 * A cache core as one process of the application has it, on a private Redis, with the
 * fault-injecting store between the core and Redis, and the events it publishes collected.
 * Two of them on one Redis are two processes: they share the cache, not their in-flight loads.
 */
import diagnostics from 'node:diagnostics_channel';
import { CircuitBreaker, type CircuitBreakerOptions } from '../../src/breaker.js';
import { createCodec } from '../../src/codec.js';
import { CacheCore, type CacheCoreOptions } from '../../src/core.js';
import { EntityCache } from '../../src/entity-cache.js';
import { CACHE_CHANNELS, CacheEvents, type CacheEventMap } from '../../src/events.js';
import type { Keyspace } from '../../src/keys.js';
import { SILENT_LOGGER } from '../../src/logger.js';
import { createRedisClient, type RedisClient } from '../../src/redis-client.js';
import { RedisStore } from '../../src/redis-store.js';
import { CacheStats } from '../../src/stats.js';
import { FaultInjectingStore } from '../../src/testing/index.js';

/** A user document of the tests' in-memory source. */
export interface User {
  id: string;
  name: string;
  version: number;
}

/** One process's cache: its core, the store it calls (faults on demand), the Redis store below. */
export interface TestCore {
  core: CacheCore;
  store: FaultInjectingStore;
  redis: RedisStore;
  client: RedisClient;
  events: CacheEvents;
  keys: Keyspace;
  /** The entity cache of `User` documents on this core (TTL one minute). */
  users: EntityCache<User>;
  close(): void;
}

/** Options of {@link createTestCore}. */
export interface TestCoreOptions {
  redisUrl: string;
  keys: Keyspace;
  /** Core options besides store, codec, events and logger. */
  core?: Partial<Omit<CacheCoreOptions, 'store' | 'codec' | 'events' | 'logger'>>;
  breaker?: CircuitBreakerOptions;
}

/** Connects a new client and builds a core on it. */
export async function createTestCore(options: TestCoreOptions): Promise<TestCore> {
  const client = createRedisClient({ url: options.redisUrl, logger: SILENT_LOGGER });
  await client.connect();
  const events = new CacheEvents('test', new CacheStats());
  const redis = new RedisStore({ client, breaker: new CircuitBreaker(options.breaker), events, leaseSuffix: options.keys.lease('') });
  const store = new FaultInjectingStore(redis);
  const core = new CacheCore({ store, codec: createCodec(), events, logger: SILENT_LOGGER, ...options.core });
  const users = new EntityCache<User>({ core, keys: options.keys, type: 'User', ttlMs: 60_000, negativeTtlMs: 60_000 });
  return {
    core,
    store,
    redis,
    client,
    events,
    keys: options.keys,
    users,
    close() {
      store.heal();
      core.close();
      client.disconnect();
    },
  };
}

/** The events of `channel` published by the cache `events`, as they come, until `stop()`. */
export function collect<K extends keyof typeof CACHE_CHANNELS & keyof CacheEventMap>(
  channel: K,
  events: CacheEvents,
): CacheEventMap[K][] & { stop(): void } {
  const seen: CacheEventMap[K][] = [];
  const listen = (message: unknown): void => {
    const event = message as CacheEventMap[K];
    if (event.cache === events.id) seen.push(event);
  };
  diagnostics.subscribe(CACHE_CHANNELS[channel], listen);
  return Object.assign(seen, { stop: () => diagnostics.unsubscribe(CACHE_CHANNELS[channel], listen) });
}
