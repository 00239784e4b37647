import type { KeyValueCache, KeyValueCacheSetOptions } from '@apollo/utils.keyvaluecache';
import type { Keyspace } from './keys.js';
import type { CacheMetrics } from './metrics.js';
import type { RedisStore } from './redis-store.js';

/** Options of {@link createPersistedQueryCache}. */
export interface PersistedQueryCacheOptions {
  store: RedisStore;
  keys: Keyspace;
  metrics: CacheMetrics;
  /** Used when Apollo gives no TTL, in seconds; default one day. */
  defaultTtlSeconds?: number;
}

/**
 * Apollo's automatic persisted queries, kept in the cache's Redis (so every server instance
 * knows every registered hash). A Redis failure is a miss: Apollo answers
 * PERSISTED_QUERY_NOT_FOUND and the client sends the full query again.
 */
export function createPersistedQueryCache(options: PersistedQueryCacheOptions): KeyValueCache<string> {
  const { store, keys, metrics } = options;
  const defaultTtlMs = (options.defaultTtlSeconds ?? 86_400) * 1_000;
  return {
    async get(key) {
      try {
        const value = await store.get(keys.persistedQuery(key));
        (value ? metrics.hits : metrics.misses).inc({ name: 'PersistedQuery' });
        return value?.toString();
      } catch {
        metrics.errors.inc({ op: 'apq-get' });
        return undefined;
      }
    },
    async set(key, value, setOptions?: KeyValueCacheSetOptions) {
      try {
        const ttl = setOptions?.ttl;
        await store.set(keys.persistedQuery(key), value, ttl === null ? 0 : ttl === undefined ? defaultTtlMs : ttl * 1_000);
      } catch {
        metrics.errors.inc({ op: 'apq-set' });
      }
    },
    async delete() {
      // Apollo never deletes persisted queries; they expire.
      return false;
    },
  };
}
