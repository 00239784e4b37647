import { Cluster } from 'ioredis';
import { SILENT_LOGGER, type CacheLogger } from './logger.js';
import { createCodec, type Compression, type Reviver } from './codec.js';
import { CacheCore } from './core.js';
import { EntityCache, type Versioned } from './entity-cache.js';
import { createKeyspace, type Keyspace } from './keys.js';
import { KeyedValues } from './keyed-values.js';
import { KnownPending } from './known-pending.js';
import { L1Cache, type L1Gate } from './l1-cache.js';
import { LocalCopies } from './local-copies.js';
import { CacheEvents } from './events.js';
import { Fleet, type FleetL1, type FleetOptions } from './fleet/fleet.js';
import type { IntentLog } from './fleet/intents.js';
import type { FleetLeaseSettings } from './fleet/lease.js';
import { ResponseStore, responseBucketOf } from './response-store.js';
import { RedisStore, type RedisClient } from './redis-store.js';
import type { ReplicaAcksOptions } from './replica-acks.js';
import { createStore, replicaOptions } from './create-store.js';
import { CacheStats } from './stats.js';
import { WriteBehindQueue, type Change } from './write-behind/index.js';

export type { Versioned };
export { EntityCache };

/** The cache settings; each one not given is taken from {@link DEFAULT_CACHE_SETTINGS}. */
export interface CacheSettings {
  /** Key namespace, e.g. `app`. */
  namespace: string;
  /** Default document TTL, in milliseconds (every duration of the cache is). */
  ttlMs: number;
  /** TTL overrides per entity type, in milliseconds. */
  ttlByTypeMs: Record<string, number>;
  /** TTL of cached absences, in milliseconds. */
  negativeTtlMs: number;
  /** Fill lease lifetime, in milliseconds. */
  leaseTtlMs: number;
  compression: Compression;
  /** Compress values of at least this many bytes. */
  compressionThresholdBytes: number;
  /** Decoded copies kept in process (validated by etag on every read); 0 for none. */
  localEntries: number;
  /** Consecutive Redis failures that open the circuit breaker. */
  breakerThreshold: number;
  /** How long the breaker stays open before a probe, in milliseconds. */
  breakerOpenMs: number;
  /** Whole responses that are never stale (response-store.ts; served by graphql-lease-cache/apollo and /envelop). */
  responses: boolean;
  /** Bytes of decoded values and responses the in-process L1 holds (served with no round trip while `l1Gate` allows); 0 for no L1. */
  l1MaxBytes: number;
  /** How long the L1 serves a value at most, in milliseconds (less when its TTL is shorter). */
  l1MaxAgeMs: number;
  /** Entities, field values and responses are kept this long past their TTL, in milliseconds, and served while the source is unavailable; 0: none. Only with `isSourceUnavailable` (without it, none). */
  graceMs: number;
  /** A hit in this last part of its TTL (a fraction in [0, 1)) is served and reloaded in the background; 0: never. */
  earlyRefresh: number;
}

/** The application's cache: one core, its keyspace, and the entity caches built on it. */
export interface Cache {
  core: CacheCore;
  keys: Keyspace;
  /** What this cache reports (subscribe on CACHE_CHANNELS; its events carry `events.id`). */
  events: CacheEvents;
  /** Hits and misses per entity type and field coordinate since start (`events.stats`). */
  stats: CacheStats;
  /** The Redis store, or null when running without Redis. */
  store: RedisStore | null;
  /** The in-process L1 (`settings.l1MaxBytes` > 0 and Redis), else null; it serves only while `l1Gate` allows. */
  l1: L1Cache | null;
  /** Queues write-behind changes (unavailable without Redis or on a Cluster). */
  writeBehind: WriteBehindQueue;
  /**
   * Per entity type, the GraphQL fields whose changes void responses field by field: a response
   * that selects one records `<entity key>#<field>` for each entity of the type it read.
   */
  responseFields: ReadonlyMap<string, ReadonlySet<string>>;
  /**
   * The response dependencies a change of `fields` of entity `type:id` voids: those fields'
   * (`<entity key>#<GraphQL field>`) when every one is declared in `responseFields`, else the entity's key.
   */
  responseDependencies(type: string, id: string, fields: readonly string[]): string[];
  /** The entity cache of a type (one per type, shared by all requests). */
  entity<T extends Versioned>(type: string): EntityCache<T>;
  /** Values of one kind by id that are not entities (sessions, say): see {@link KeyedValues}. */
  values<T>(kind: string): KeyedValues<T>;
  /** This process as a member of the fleet (fleet/), or null without Redis or with `fleet: false`. */
  fleet: Fleet | null;
  /** Stops background retries, the fleet's renewals and its subscription. */
  close(): void;
}

/** Options of the fleet protocol (see fleet/fleet.ts); every duration in milliseconds. */
export interface CacheFleetOptions extends Partial<FleetLeaseSettings> {
  /** Where undeliverable invalidations are recorded, to survive this process (the app: MongoDB). Default none. */
  intents?: IntentLog;
  /** A connection for the fleet's pub/sub; default a duplicate of `redis`. */
  subscriber?: RedisClient;
  /** This member's name; default host, pid and random bytes. */
  member?: string;
  /** What the fleet empties and drops from; default the cache's own L1. */
  l1?: FleetL1;
}

/** Options of {@link createCache}. */
export interface CreateCacheOptions {
  /** Null runs without a cache: every read goes to the source. */
  redis: RedisClient | null;
  /** What is not given is taken from {@link DEFAULT_CACHE_SETTINGS}. */
  settings?: Partial<CacheSettings>;
  /** Default: none (nothing is logged). */
  logger?: CacheLogger;
  /** Entity types that can be written behind: their reads apply queued changes. */
  writeBehindTypes?: readonly string[];
  /**
   * Benchmarks and tests only, not an API: true runs with no write-behind queue even with
   * Redis, so that write-behind updates take the synchronous path. Default false.
   */
  __testing__withoutWriteBehindQueue?: boolean;
  /** The most write-behind changes one entity may have queued (more are written synchronously). */
  writeBehindMaxPending?: number;
  /** The Redis command timeout, in milliseconds: an enqueue Redis runs later than this after the call is refused. Default 250. */
  redisCommandTimeoutMs?: number;
  /**
   * Replicas that must have each invalidation, refresh, response invalidation (replica-acks.ts)
   * and write-behind enqueue before it counts (`WAIT <replicas> <timeoutMs>` after it, on its
   * node): an invalidation not acknowledged in time is kept pending and fenced, an enqueue
   * written synchronously, so that a failover cannot undo what a mutation returned. Default
   * `replicas`: 1 on a Cluster where a master has a replica, else 0; `timeoutMs` 50, below the command timeout.
   */
  replicaAcks?: Partial<ReplicaAcksOptions>;
  /** Deep-freeze the local copies, so that a mutation of a shared value throws (development and tests); default false. */
  freezeLocalCopies?: boolean;
  /**
   * Per entity type, stored field → the GraphQL fields that show it: a queued write-behind
   * change of these fields only voids the responses that selected them. Default none.
   */
  responseFields?: Readonly<Record<string, Readonly<Record<string, readonly string[]>>>>;
  /** The classes of values the codec keeps across JSON besides Dates (the app's ObjectIds); default none. */
  revivers?: readonly Reviver[];
  /**
   * Told the keys and tags of every invalidation of whole responses once it is delivered (after
   * the entities and responses are void), to purge a shared HTTP cache that keys responses by
   * them; default none. Must not throw. Only with `settings.responses`.
   */
  onResponsesInvalidated?(dependencies: readonly string[]): void;
  /**
   * The fleet protocol (leases, acknowledged invalidations, recorded intents), on by default with
   * Redis: false turns it off (the guarantee then ends at the process, and no L1 may serve).
   */
  fleet?: CacheFleetOptions | false;
  /**
   * Whether the L1 may serve now. Default: the fleet's say (this member's lease holds); without a
   * fleet, never (the L1 then holds nothing). Tests and single-process setups only.
   */
  l1Gate?: L1Gate;
  /**
   * True when an error of a load (the app's source of truth) means the source cannot answer (a
   * timeout, a refused connection, a breaker open): reads of values past their TTL and in their
   * grace (`settings.graceMs`) are then served those values instead of the error. Default: never.
   */
  isSourceUnavailable?: (error: unknown) => boolean;
}

/** The settings a cache takes where none are given. */
export const DEFAULT_CACHE_SETTINGS: Readonly<CacheSettings> = Object.freeze({
  namespace: 'app',
  ttlMs: 300_000,
  ttlByTypeMs: {},
  negativeTtlMs: 30_000,
  leaseTtlMs: 3_000,
  compression: 'gzip',
  compressionThresholdBytes: 1_024,
  localEntries: 20_000,
  breakerThreshold: 5,
  breakerOpenMs: 5_000,
  responses: false,
  l1MaxBytes: 64 * 1024 * 1024,
  l1MaxAgeMs: 60_000,
  graceMs: 300_000,
  earlyRefresh: 0.1,
});

/** Dependency buckets per response shard: a needless miss when two dependencies share one. */
const RESPONSE_DEPENDENCY_BUCKETS = 16_384;

/** Stored-shape version: bump when what the cache stores changes shape (old keys are then never read). */
export const CACHE_SCHEMA_VERSION = 2;

/**
 * A connection of the fleet's own, with `client`'s settings but a longer command timeout (2 s):
 * neither a renewal nor a subscription is on a request's path, and a loaded machine must not
 * lose a lease to the cache's short timeout (a renewal Redis runs late is refused by the script
 * itself). `subscriber`: for pub/sub, which runs no other commands.
 */
function connectionOf(client: RedisClient, subscriber: boolean): RedisClient {
  if (client instanceof Cluster)
    return client.duplicate(undefined, { redisOptions: { ...client.options.redisOptions, commandTimeout: 2_000 } });
  return client.duplicate({ lazyConnect: !subscriber && client.options.lazyConnect, enableOfflineQueue: true, commandTimeout: 2_000 });
}

/** This process as a member of the fleet (with Redis, unless `options.fleet` is false). */
function createFleet(
  options: CreateCacheOptions & { logger: CacheLogger },
  parts: { keys: Keyspace; events: CacheEvents; l1: L1Cache | null; deliver: FleetOptions['deliver'] },
): Fleet | null {
  if (!options.redis || options.fleet === false) return null;
  return new Fleet({
    ...options.fleet,
    client: connectionOf(options.redis, false),
    subscriber: options.fleet?.subscriber ?? connectionOf(options.redis, true),
    keys: parts.keys.fleet,
    l1: options.fleet?.l1 ?? parts.l1,
    intents: options.fleet?.intents ?? null,
    deliver: parts.deliver,
    events: parts.events,
    logger: options.logger,
  });
}

/** Wires keyspace, codec, breaker, store and core together. */
export function createCache(given: CreateCacheOptions): Cache {
  const settings: CacheSettings = { ...DEFAULT_CACHE_SETTINGS, ...given.settings };
  const options = { ...given, settings, logger: given.logger ?? SILENT_LOGGER };
  const { logger } = options;
  const keys = createKeyspace({ namespace: settings.namespace, version: CACHE_SCHEMA_VERSION });
  const events = new CacheEvents(settings.namespace, new CacheStats());
  // What this process knows to be queued for the database: reads apply it when Redis cannot answer.
  const knownPending = new KnownPending({ maxEntriesPerKey: options.writeBehindMaxPending });
  const store = createStore(options, keys, events);
  let deliver: (keys: readonly string[], tags: readonly string[]) => Promise<void> = () => Promise.resolve();
  let fleet: Fleet | null = null;
  // The L1 serves only while this member's fleet lease holds (a gate given in the options wins).
  const l1 = createL1(options, store, events, { l1Servable: () => fleet?.servable() ?? false });
  fleet = createFleet(options, { keys, events, l1, deliver: (k, t) => deliver(k, t) });
  const core = createCore(options, { keys, events, store, knownPending, fleet, l1 });
  deliver = (k, t) => core.deliver(k, t);
  void fleet?.start();
  // A reconnect is the moment to deliver what could not be delivered while Redis was away.
  options.redis?.on('ready', () => void core.deliverPending());
  const writeBehind = new WriteBehindQueue({
    store: options.__testing__withoutWriteBehindQueue ? null : store,
    keys,
    events,
    maxPendingPerEntity: options.writeBehindMaxPending,
    ...replicaOptions(options),
    enqueueDeadlineMs: options.redisCommandTimeoutMs,
    knownPending,
    afterEnqueue: (type, id, change) =>
      core.invalidateResponses(changedDependencies(keys, options.responseFields, type, id, fieldsOf(change))),
  });
  return {
    core,
    keys,
    events,
    stats: events.stats,
    store,
    l1,
    writeBehind,
    responseFields: new Map(
      Object.entries(options.responseFields ?? {}).map(([type, fields]) => [type, new Set(Object.values(fields).flat())]),
    ),
    responseDependencies: (type, id, fields) => changedDependencies(keys, options.responseFields, type, id, fields),
    entity: entityCaches(core, keys, settings, new Set(options.writeBehindTypes ?? []), logger),
    values: <T>(kind: string) => new KeyedValues<T>({ core, keys, kind }),
    fleet,
    close: () => {
      core.close();
      fleet?.close();
      writeBehind.close();
      store?.acks?.close();
    },
  };
}

/** The core, with its codec, its local copies and (when enabled) the response store. */
function createCore(
  options: CreateCacheOptions & { settings: CacheSettings; logger: CacheLogger },
  parts: {
    keys: Keyspace;
    events: CacheEvents;
    store: RedisStore | null;
    knownPending: KnownPending;
    fleet: Fleet | null;
    l1: L1Cache | null;
  },
): CacheCore {
  const { settings } = options;
  const { keys, store } = parts;
  // One shard is enough on one Redis; on a Cluster, 16 spread the responses over its nodes.
  const responses =
    store && settings.responses
      ? new ResponseStore({
          store,
          keys,
          shards: options.redis instanceof Cluster ? 16 : 1,
          buckets: RESPONSE_DEPENDENCY_BUCKETS,
          ...(parts.l1 ? { l1: parts.l1 } : {}),
          ...(options.onResponsesInvalidated ? { onInvalidated: options.onResponsesInvalidated } : {}),
        })
      : undefined;
  return new CacheCore({
    store,
    codec: createCodec({
      compression: settings.compression,
      thresholdBytes: settings.compressionThresholdBytes,
      revivers: options.revivers ?? [],
    }),
    events: parts.events,
    logger: options.logger,
    leaseTtlMs: settings.leaseTtlMs,
    graceMs: settings.graceMs,
    earlyRefresh: settings.earlyRefresh,
    ...(options.isSourceUnavailable ? { isSourceUnavailable: options.isSourceUnavailable } : {}),
    knownPending: parts.knownPending,
    ...(responses ? { responses } : {}),
    ...(parts.fleet ? { fleet: parts.fleet } : {}),
    ...(parts.l1 ? { l1: parts.l1 } : {}),
    ...(settings.localEntries > 0
      ? { localCopies: new LocalCopies({ maxEntries: settings.localEntries, freeze: options.freezeLocalCopies ?? false }) }
      : {}),
  });
}

/** The L1 of `settings.l1MaxBytes` (null when 0, or without Redis: nothing would invalidate it), indexed by response bucket. */
function createL1(
  options: CreateCacheOptions & { settings: CacheSettings },
  store: RedisStore | null,
  events: CacheEvents,
  fleetGate: L1Gate,
): L1Cache | null {
  const { settings } = options;
  if (!store || settings.l1MaxBytes <= 0) return null;
  return new L1Cache({
    maxBytes: settings.l1MaxBytes,
    maxAgeMs: settings.l1MaxAgeMs,
    bucketOf: (dependency) => responseBucketOf(dependency, RESPONSE_DEPENDENCY_BUCKETS),
    freeze: options.freezeLocalCopies ?? false,
    events,
    gate: options.l1Gate ?? fleetGate,
  });
}

/** `Cache.entity`: one entity cache per type, made on first use and shared by all requests. */
function entityCaches(
  core: CacheCore,
  keys: Keyspace,
  settings: CacheSettings,
  writeBehindTypes: ReadonlySet<string>,
  logger: CacheLogger,
): Cache['entity'] {
  const entities = new Map<string, EntityCache<Versioned>>();
  return <T extends Versioned>(type: string): EntityCache<T> => {
    let cache = entities.get(type);
    if (!cache) {
      cache = new EntityCache<Versioned>({
        core,
        keys,
        type,
        ttlMs: settings.ttlByTypeMs[type] ?? settings.ttlMs,
        negativeTtlMs: settings.negativeTtlMs,
        writeBehind: writeBehindTypes.has(type),
        logger,
      });
      entities.set(type, cache);
    }
    return cache as unknown as EntityCache<T>;
  };
}

/**
 * The response dependencies a change of `fields` of `type:id` voids: the entity's fields that
 * show them when every one is declared in `responseFields`, else the entity.
 */
export function changedDependencies(
  keys: Keyspace,
  responseFields: CreateCacheOptions['responseFields'],
  type: string,
  id: string,
  fields: readonly string[],
): string[] {
  const entityKey = keys.entity(type, id);
  const shown = responseFields && Object.hasOwn(responseFields, type) ? responseFields[type] : undefined;
  if (!shown || fields.length === 0 || !fields.every((field) => Object.hasOwn(shown, field))) return [entityKey];
  const names = new Set(fields.flatMap((field) => shown[field] ?? []));
  return [...names].map((name) => keys.fieldDependency(entityKey, name));
}

/** The fields a write-behind change sets or adds to. */
function fieldsOf(change: Pick<Change, 'set' | 'inc'>): string[] {
  return [...Object.keys(change.set ?? {}), ...Object.keys(change.inc ?? {})];
}
