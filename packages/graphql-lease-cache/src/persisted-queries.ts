import type { KeyValueCache, KeyValueCacheSetOptions } from '@apollo/utils.keyvaluecache';
import type { Counter } from 'prom-client';
import type { Keyspace } from './keys.js';
import type { CacheMetrics } from './metrics.js';
import type { RedisStore } from './redis-store.js';

/** Options of {@link createPersistedQueryCache}. */
export interface PersistedQueryCacheOptions {
  store: RedisStore;
  keys: Keyspace;
  metrics: CacheMetrics;
  /** Used when Apollo gives no TTL, in milliseconds; default one hour (a client re-registers a query it finds gone). */
  defaultTtlMs?: number;
  /** The largest document stored, in UTF-8 bytes; default 16384. Larger ones run, unstored. */
  maxBytes?: number;
  /** Counts documents not stored, by reason (`too_large`). */
  notStored?: Counter<'reason'>;
}

/**
 * Apollo's automatic persisted queries, kept in the cache's Redis (so every server instance
 * knows every registered hash). A Redis failure is a miss: Apollo answers
 * PERSISTED_QUERY_NOT_FOUND and the client sends the full query again.
 *
 * Anyone can register a document, so what one costs is bounded: a document over `maxBytes` (a
 * query that size is a comment or padding, not a real operation) still runs but is not stored,
 * and what is stored expires (its TTL also lets `volatile-*` eviction take it under memory
 * pressure).
 */
export function createPersistedQueryCache(options: PersistedQueryCacheOptions): KeyValueCache<string> {
  const { store, keys, metrics } = options;
  const defaultTtlMs = options.defaultTtlMs ?? 3_600_000;
  const maxBytes = options.maxBytes ?? 16_384;
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
      if (Buffer.byteLength(value) > maxBytes) {
        options.notStored?.inc({ reason: 'too_large' });
        return;
      }
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
