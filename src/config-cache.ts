import { z } from 'zod';
import { type CacheSettings, DEFAULT_CACHE_SETTINGS } from 'graphql-lease-cache';
import { DEFAULT_WRITE_POLICIES, ENTITY_TYPES, WRITE_POLICIES, type WritePolicies } from './caching/policies.js';
import { booleanString, port } from './config-values.js';

// Two areas of configAreas (config.ts), which lists them with their doc comments: scripts/config-docs.ts
// follows them here for their variables.

/** configAreas.cache: the entity, field and response caches, and the write policy of each entity type. */
export const cacheArea = z
  .object({
    /** Cache key namespace (keys are `<namespace>:v<n>:…`); default the package's (app). */
    CACHE_NAMESPACE: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, -, _ and . only')
      .default(DEFAULT_CACHE_SETTINGS.namespace),
    /** Default entity TTL in seconds; default the package's (300). */
    CACHE_TTL_SECONDS: z.coerce
      .number()
      .int()
      .min(1)
      .default(DEFAULT_CACHE_SETTINGS.ttlMs / 1_000),
    /** Per-type TTLs in seconds, e.g. `User=600,Product=120`. */
    CACHE_TTLS: z
      .string()
      .regex(/^\s*[A-Za-z]+\s*=\s*\d+\s*(,\s*[A-Za-z]+\s*=\s*\d+\s*)*$/, 'must look like User=600,Product=120')
      .optional(),
    /** TTL of cached absences (negative caching) in seconds; default the package's (30). */
    CACHE_NEGATIVE_TTL_SECONDS: z.coerce
      .number()
      .int()
      .min(1)
      .default(DEFAULT_CACHE_SETTINGS.negativeTtlMs / 1_000),
    /** Fill lease lifetime in milliseconds; default the package's (3000). */
    CACHE_LEASE_TTL_MS: z.coerce.number().int().min(10).default(DEFAULT_CACHE_SETTINGS.leaseTtlMs),
    /** Compression of large cached values: gzip (the package's default), brotli or none. */
    CACHE_COMPRESSION: z.enum(['gzip', 'brotli', 'none']).default(DEFAULT_CACHE_SETTINGS.compression),
    /** Compress cached values of at least this many bytes; default the package's (1024). */
    CACHE_COMPRESSION_THRESHOLD_BYTES: z.coerce.number().int().min(0).default(DEFAULT_CACHE_SETTINGS.compressionThresholdBytes),
    /**
     * Decoded copies of cached values kept in process, each used only when Redis confirms in the
     * same round trip that it is still the stored value; default the package's (20000), 0 for none.
     */
    CACHE_LOCAL_ENTRIES: z.coerce.number().int().min(0).default(DEFAULT_CACHE_SETTINGS.localEntries),
    /**
     * The in-process L1: decoded values and responses served with no Redis round trip while the
     * fleet protocol says every invalidation reaches this process; default true, false for none.
     */
    CACHE_L1: booleanString.default(true),
    /** Bytes of values the L1 holds (estimated; the least recently used go first); default the package's (67108864, 64 MiB). */
    CACHE_L1_MAX_BYTES: z.coerce.number().int().min(1).default(DEFAULT_CACHE_SETTINGS.l1MaxBytes),
    /** How long the L1 serves a value at most, in seconds (less when its TTL is shorter); default the package's (60). */
    CACHE_L1_MAX_AGE_SECONDS: z.coerce
      .number()
      .int()
      .min(1)
      .default(DEFAULT_CACHE_SETTINGS.l1MaxAgeMs / 1_000),
    /**
     * How long entities, field values and whole responses are kept in Redis past their TTL, in
     * seconds, to be served while MongoDB cannot answer (a timeout, a refused connection, the
     * breaker open; docs/operations.md#mongodb-outage-grace); never sessions. Default the
     * package's (300), 0 for none.
     */
    CACHE_GRACE_SECONDS: z.coerce
      .number()
      .int()
      .min(0)
      .max(86_400)
      .default(DEFAULT_CACHE_SETTINGS.graceMs / 1_000),
    /**
     * The last part of an entity's or field value's TTL, as a fraction, in which a read is served
     * at once and reloads it from MongoDB in the background (early refresh); default the
     * package's (0.1), 0 for none.
     */
    CACHE_EARLY_REFRESH: z.coerce.number().min(0).max(0.9).default(DEFAULT_CACHE_SETTINGS.earlyRefresh),
    /** Consecutive Redis failures that open the circuit breaker; default the package's (5). */
    CACHE_BREAKER_THRESHOLD: z.coerce.number().int().min(1).default(DEFAULT_CACHE_SETTINGS.breakerThreshold),
    /** How long the breaker stays open before probing Redis again, in milliseconds; default the package's (5000). */
    CACHE_BREAKER_OPEN_MS: z.coerce.number().int().min(1).default(DEFAULT_CACHE_SETTINGS.breakerOpenMs),
    /**
     * Whole responses of queries, served with one Redis round trip and never stale (the response
     * cache, graphql-lease-cache/apollo). Default true; false leaves the entity and field caches.
     */
    CACHE_RESPONSES: booleanString.default(true),
    /** The largest response the response cache stores, in bytes (larger ones are sent, not stored); default 1048576 (1 MiB). */
    CACHE_RESPONSE_MAX_BYTES: z.coerce.number().int().min(1).default(1_048_576),
    /**
     * Bytes of stored responses one client address may cause per minute, on each server (past it,
     * its responses are sent, not stored); default 8388608 (8 MiB), 0 for no limit.
     */
    CACHE_RESPONSE_CLIENT_BYTES_PER_MINUTE: z.coerce.number().int().min(0).default(8_388_608),
    /**
     * Cached Product and User documents compared with MongoDB per minute, on each server, by the
     * staleness audit (cache_audit_* metrics; docs/operations.md); default 60, 0 for none.
     */
    CACHE_AUDIT_PER_MINUTE: z.coerce.number().int().min(0).max(60_000).default(60),
    /**
     * The fleet lease of each instance, in milliseconds (docs/cache-protocol.md#the-fleet): an
     * instance serves from its caches only while it holds one, renews it every quarter of it, and
     * a paused or unreachable instance delays other instances' writes by at most this much. A
     * write whose invalidation cannot reach Redis returns after about twice this. Default 1500.
     */
    CACHE_FLEET_LEASE_MS: z.coerce.number().int().min(200).max(60_000).default(1_500),
    /**
     * Replicas that must have each cache invalidation and write-behind enqueue before it counts
     * (`WAIT` after it): an invalidation not acknowledged in time is retried and the mutation waits
     * out the fleet's fence, an enqueue is written to MongoDB synchronously, so that a failover
     * cannot undo what a mutation returned. Default: 1 on a Cluster where a master has a replica
     * (a master with none is not waited on), 0 on one Redis.
     */
    CACHE_REPLICA_ACKS: z.coerce.number().int().min(0).max(16).optional(),
    /** How long a write (invalidation or enqueue) waits for CACHE_REPLICA_ACKS replicas, in milliseconds; below REDIS_COMMAND_TIMEOUT_MS; default 50. */
    CACHE_REPLICA_WAIT_MS: z.coerce.number().int().min(1).default(50),
    /**
     * Write policy per entity type: `invalidate`, `refresh` or `write-behind`, e.g.
     * `User=write-behind,Product=refresh`. Defaults: each type's `@entity(writePolicy:)` in the
     * schema (User=refresh, Product=refresh).
     */
    CACHE_WRITE_POLICIES: z
      .string()
      .regex(
        writePoliciesPattern(),
        `must look like User=write-behind,Product=refresh (types: ${ENTITY_TYPES.join(', ')}; policies: ${WRITE_POLICIES.join(', ')})`,
      )
      .optional(),
  })
  .transform((env) => ({
    cache: {
      namespace: env.CACHE_NAMESPACE,
      // The environment says seconds; the cache takes every duration in milliseconds.
      ttlMs: env.CACHE_TTL_SECONDS * 1_000,
      ttlByTypeMs: parseTtlsMs(env.CACHE_TTLS),
      negativeTtlMs: env.CACHE_NEGATIVE_TTL_SECONDS * 1_000,
      leaseTtlMs: env.CACHE_LEASE_TTL_MS,
      compression: env.CACHE_COMPRESSION,
      compressionThresholdBytes: env.CACHE_COMPRESSION_THRESHOLD_BYTES,
      localEntries: env.CACHE_LOCAL_ENTRIES,
      breakerThreshold: env.CACHE_BREAKER_THRESHOLD,
      breakerOpenMs: env.CACHE_BREAKER_OPEN_MS,
      responses: env.CACHE_RESPONSES,
      l1MaxBytes: env.CACHE_L1 ? env.CACHE_L1_MAX_BYTES : 0,
      l1MaxAgeMs: env.CACHE_L1_MAX_AGE_SECONDS * 1_000,
      graceMs: env.CACHE_GRACE_SECONDS * 1_000,
      earlyRefresh: env.CACHE_EARLY_REFRESH,
    } satisfies CacheSettings,
    responseStore: { maxBytes: env.CACHE_RESPONSE_MAX_BYTES, clientBytesPerMinute: env.CACHE_RESPONSE_CLIENT_BYTES_PER_MINUTE },
    writePolicies: { ...DEFAULT_WRITE_POLICIES, ...parsePairs(env.CACHE_WRITE_POLICIES) } as WritePolicies,
    cacheAuditPerMinute: env.CACHE_AUDIT_PER_MINUTE,
    cacheFleetLeaseMs: env.CACHE_FLEET_LEASE_MS,
    cacheReplicaAcks: { replicas: env.CACHE_REPLICA_ACKS ?? null, timeoutMs: env.CACHE_REPLICA_WAIT_MS },
  }));

/** configAreas.writeBehind: the write-behind worker. */
export const writeBehindArea = z
  .object({
    /** Run the write-behind worker in the server process; default true (false when `npm run worker` runs it). */
    WRITE_BEHIND_WORKER: booleanString.default(true),
    /** Most queued changes the worker applies per batch; default 500. */
    WRITE_BEHIND_BATCH_SIZE: z.coerce.number().int().min(1).max(10_000).default(500),
    /** Pause between the worker's batches when the queue is empty, in milliseconds; default 100. */
    WRITE_BEHIND_INTERVAL_MS: z.coerce.number().int().min(1).default(100),
    /** Pause before a failed change is tried again, in milliseconds; default 1000. */
    WRITE_BEHIND_RETRY_MS: z.coerce.number().int().min(1).default(1_000),
    /** Failed tries after which a change goes to the dead-letter stream; default 5. */
    WRITE_BEHIND_MAX_TRIES: z.coerce.number().int().min(1).default(5),
    /** The worker leader's lease, in milliseconds: how soon another worker takes over from a dead one; default 10000. */
    WRITE_BEHIND_LEADER_TTL_MS: z.coerce.number().int().min(100).default(10_000),
    /** The most write-behind changes one entity may have queued; more are written synchronously; default 1000. */
    WRITE_BEHIND_MAX_PENDING: z.coerce.number().int().min(1).default(1_000),
    /** How long SIGTERM waits for the queue to drain, in milliseconds; default 10000. */
    WRITE_BEHIND_DRAIN_MS: z.coerce.number().int().min(0).default(10_000),
    /** `npm run worker` only: serve Prometheus metrics at /metrics on this port (0: any free one); unset: none. */
    WORKER_METRICS_PORT: port.optional(),
  })
  .transform((env) => ({
    writeBehind: {
      worker: env.WRITE_BEHIND_WORKER,
      batchSize: env.WRITE_BEHIND_BATCH_SIZE,
      intervalMs: env.WRITE_BEHIND_INTERVAL_MS,
      retryMs: env.WRITE_BEHIND_RETRY_MS,
      maxTries: env.WRITE_BEHIND_MAX_TRIES,
      drainMs: env.WRITE_BEHIND_DRAIN_MS,
      leaderTtlMs: env.WRITE_BEHIND_LEADER_TTL_MS,
      metricsPort: env.WORKER_METRICS_PORT,
      maxPendingPerEntity: env.WRITE_BEHIND_MAX_PENDING,
    },
  }));

/**
 * `Type=policy` pairs, comma-separated, of the entity types (`@entity` in the schema) and policies of
 * src/caching/policies.ts: `^PAIR(,PAIR)*$`, PAIR being `\s*(User|Product)\s*=\s*(invalidate|refresh|write-behind)\s*`.
 */
function writePoliciesPattern(): RegExp {
  const pair = `\\s*(${ENTITY_TYPES.join('|')})\\s*=\\s*(${WRITE_POLICIES.join('|')})\\s*`;
  return new RegExp(`^${pair}(,${pair})*$`);
}

/** `a=b,c=d` (already checked by the schema's pattern) as an object. */
function parsePairs(value: string | undefined): Record<string, string> {
  if (!value) return {};
  return Object.fromEntries(value.split(',').map((pair) => pair.split('=').map((part) => part.trim()) as [string, string]));
}

/** `Type=seconds` pairs (CACHE_TTLS) as milliseconds by type. */
function parseTtlsMs(value: string | undefined): Record<string, number> {
  return Object.fromEntries(Object.entries(parsePairs(value)).map(([type, seconds]) => [type, Number(seconds) * 1_000]));
}
