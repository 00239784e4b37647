import type { KeyValueCache, KeyValueCacheSetOptions } from '@apollo/utils.keyvaluecache';
import type { Keyspace } from './keys.js';
import type { RedisStore } from './redis-store.js';

/** Options of {@link createPersistedQueryCache}. */
export interface PersistedQueryCacheOptions {
  store: RedisStore;
  keys: Keyspace;
  /** Used when Apollo gives no TTL, in milliseconds; default one hour (a client re-registers a query it finds gone). */
  defaultTtlMs?: number;
  /** The largest document stored, in UTF-8 bytes; default 16384. Larger ones run, unstored. */
  maxBytes?: number;
  /** Called for each document not stored, with the reason (`too_large`). */
  notStored?: (reason: 'too_large') => void;
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
  const { store, keys } = options;
  const events = store.events;
  const defaultTtlMs = options.defaultTtlMs ?? 3_600_000;
  const maxBytes = options.maxBytes ?? 16_384;
  return {
    async get(key) {
      try {
        const value = await store.get(keys.persistedQuery(key));
        events.lookup('PersistedQuery', value ? 1 : 0, value ? 0 : 1);
        return value?.toString();
      } catch (error) {
        events.error('apq-get', error);
        return undefined;
      }
    },
    async set(key, value, setOptions?: KeyValueCacheSetOptions) {
      if (Buffer.byteLength(value) > maxBytes) {
        options.notStored?.('too_large');
        return;
      }
      try {
        const ttl = setOptions?.ttl;
        await store.set(keys.persistedQuery(key), value, ttl === null ? 0 : ttl === undefined ? defaultTtlMs : ttl * 1_000);
      } catch (error) {
        events.error('apq-set', error);
      }
    },
    async delete() {
      // Apollo never deletes persisted queries; they expire.
      return false;
    },
  };
}
