/**
 * graphql-lease-cache: a Redis cache for GraphQL servers that is never stale after a write it
 * was told of. Its main entry (at most 30 runtime exports; `/apollo`, `/envelop`, `/write-behind`
 * and `/testing` are the others); everything not exported from an entry is internal.
 *
 * Layout (see this package's README):
 *   create-cache.ts     wires keyspace, codec, breaker, store and core: createCache()
 *   core.ts             the lease protocol every layer uses (entities, fields, responses)
 *   entity-cache.ts     documents by id, behind a DataLoader's batch function
 *   field-cache.ts      per-field results declared in the SDL (@cached)
 *   l1-cache.ts         decoded values and responses in process, served with no round trip behind a gate
 *   response-store.ts   whole responses voided by what they read
 *   persisted-queries.ts  APQ storage in the same Redis
 *   write-behind/       the durable queue, its worker and leader
 *   leadership.ts       a Redis-held lease one holder has at a time (the worker's, the app's jobs)
 *   redis-store.ts      LeaseStore on ioredis (single node or Cluster), scripts/ its Lua
 *   keys.ts             every key the cache writes, under one namespace
 *   events.ts           what the cache reports, on node:diagnostics_channel
 */
export {
  DEFAULT_CACHE_SETTINGS,
  createCache,
  type Cache,
  type CacheFleetOptions,
  type CacheSettings,
  type CreateCacheOptions,
} from './create-cache.js';
export type { Fleet, FleetKeys, FleetL1 } from './fleet/fleet.js';
export type { FleetLeaseSettings } from './fleet/lease.js';
export type { Intent, IntentLog } from './fleet/intents.js';
export type { CacheCore, FetchSpec, PeekedValue, RefreshEntry } from './core.js';
export type { EntityCache, EntityCacheOptions, PeekedEntity, Versioned } from './entity-cache.js';
export type { KeyedValueLoad, KeyedValues } from './keyed-values.js';
export {
  FieldCache,
  FieldCacheConfigError,
  defineField,
  hashArgs,
  type CacheScope,
  type FieldCacheOptions,
  type FieldDefinition,
  type FieldHandle,
  type FieldItem,
  type FieldLoader,
  type FieldOwner,
  type FieldPolicy,
  type TagRef,
} from './field-cache.js';
export type { ResponseLookup, ResponseStore, ResponseTicket } from './response-store.js';
export type { L1Cache, L1CacheOptions, L1Entry, L1Gate, L1SetOptions, L1Stats } from './l1-cache.js';
export { createPersistedQueryCache, type PersistedQueryCacheOptions } from './persisted-queries.js';
export { createKeyspace, type Keyspace, type KeyspaceOptions } from './keys.js';
export {
  ABSENT,
  CodecError,
  createCodec,
  parse,
  stringify,
  type Codec,
  type CodecOptions,
  type Compression,
  type Reviver,
} from './codec.js';
export { BreakerOpenError, type BreakerState } from './breaker.js';
export { createRedisClient, pingRedis, type RedisClient, type RedisClientOptions } from './redis-client.js';
export type { RedisStore } from './redis-store.js';
export type { GetOrLeaseOptions, LeaseReply, LeaseRequest, LeaseStore, PendingEntry, StaleValue, VersionedValue } from './lease-store.js';
export { Leadership, type LeadershipOptions, type LeadershipReply } from './leadership.js';
export { hitRate, type CacheStats, type HitMissCount } from './stats.js';
export { SILENT_LOGGER, type CacheLogger } from './logger.js';
export type { CacheTrace } from './trace.js';
export {
  CACHE_CHANNELS,
  type CacheEventMap,
  type CacheEvents,
  type BreakerEvent,
  type DepthEvent,
  type ErrorEvent,
  type ExpiryEvent,
  type FillEvent,
  type FlushEvent,
  type L1Event,
  type LeaseEvent,
  type LookupEvent,
  type PendingEvent,
  type ReadEvent,
  type StoreEvent,
  type WriteBehindEvent,
  type WriteEvent,
} from './events.js';
