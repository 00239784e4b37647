import { Cluster } from 'ioredis';
import { CircuitBreaker } from './breaker.js';
import type { CacheSettings, CreateCacheOptions } from './create-cache.js';
import type { CacheLogger } from './logger.js';
import type { Keyspace } from './keys.js';
import type { CacheEvents } from './events.js';
import { RedisStore } from './redis-store.js';
import { DEFAULT_CLUSTER_REPLICA_ACKS, ReplicaAcks } from './replica-acks.js';

/** The Redis store behind its breaker, its writes acknowledged by replicas per `options.replicaAcks` over the defaults; null without Redis. */
export function createStore(
  options: CreateCacheOptions & { settings: CacheSettings; logger: CacheLogger },
  keys: Keyspace,
  events: CacheEvents,
): RedisStore | null {
  if (!options.redis) return null;
  const { settings, logger } = options;
  const breaker = new CircuitBreaker({
    failureThreshold: settings.breakerThreshold,
    openMs: settings.breakerOpenMs,
    onStateChange: (state) => {
      events.breaker(state);
      logger.warn({ state }, `Redis circuit breaker ${state}`);
    },
  });
  const cluster = options.redis instanceof Cluster;
  const given = { replicas: cluster ? 1 : 0, timeoutMs: DEFAULT_CLUSTER_REPLICA_ACKS.timeoutMs, ...options.replicaAcks };
  const acks = new ReplicaAcks(options.redis, given, options.redisCommandTimeoutMs ?? 250);
  return new RedisStore({ client: options.redis, breaker, events, leaseSuffix: keys.lease(''), ...(acks.replicas > 0 ? { acks } : {}) });
}

/** The queue's replica acknowledgement options from the cache's (see WriteBehindQueueOptions.replicaAcks). */
export function replicaOptions(options: CreateCacheOptions): { replicaAcks: number | 'auto'; replicaWaitMs: number } {
  // The same setting: an enqueue waits as an invalidation does (its fallback: a synchronous write).
  return {
    replicaAcks: options.replicaAcks?.replicas ?? 'auto',
    replicaWaitMs: options.replicaAcks?.timeoutMs ?? DEFAULT_CLUSTER_REPLICA_ACKS.timeoutMs,
  };
}
