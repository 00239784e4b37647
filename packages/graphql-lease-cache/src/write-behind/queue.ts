import calculateSlot from 'cluster-key-slot';
import { Cluster } from 'ioredis';
import type { Keyspace } from '../keys.js';
import type { KnownPending } from '../known-pending.js';
import type { RedisStore } from '../redis-store.js';
import type { Change } from './change.js';
import type { CacheEvents } from '../events.js';
import { defineQueueCommands } from './scripts/index.js';
import { ReplicaGroupCommit } from './group-commit.js';

/** Options of {@link WriteBehindQueue}. */
export interface WriteBehindQueueOptions {
  /** Null (no Redis): the queue is unavailable and callers write synchronously. */
  store: RedisStore | null;
  keys: Keyspace;
  /** Where enqueues and fallbacks are reported. */
  events: CacheEvents;
  /** The most changes one entity may have queued; default 1000 (see {@link WriteBehindQueue.enqueue}). */
  maxPendingPerEntity?: number;
  /**
   * How long after the call Redis may still apply an enqueue, in milliseconds: the caller's
   * timeout, after which it writes the database itself. Default 250 (the Redis command timeout).
   */
  enqueueDeadlineMs?: number;
  /**
   * Replicas that must have an enqueue before it counts (`WAIT <n>` after it, on its node), so
   * that a failover of the master cannot lose it. When fewer acknowledge within
   * {@link replicaWaitMs}, the enqueue throws and the caller writes synchronously (the queued copy
   * is then skipped, see {@link Change.u}). Default `auto`: on a Cluster, 1 for an entity whose
   * slot's master has a replica (as the client's slot map says: no round trip), else 0; on one
   * Redis, 0.
   */
  replicaAcks?: number | 'auto';
  /** How long an enqueue waits for {@link replicaAcks} replicas, in milliseconds; default 50. */
  replicaWaitMs?: number;
  /** Told of every change queued, for reads while Redis cannot be asked. */
  knownPending?: KnownPending;
  /**
   * Awaited after each change queued, with the entity and the change: what reads show of the
   * entity changed (they apply the queue), so the whole responses that show it must go. Never throws.
   */
  afterEnqueue?: (type: string, id: string, change: Change) => Promise<void>;
}

/** An enqueue that fewer replicas than asked acknowledged in time: the change is written synchronously. */
export class ReplicaAckError extends Error {
  readonly code = 'WRITE_BEHIND_UNREPLICATED';
  constructor(
    readonly acks: number,
    readonly wanted: number,
  ) {
    super(`write-behind enqueue acknowledged by ${acks} of ${wanted} replicas in time`);
    this.name = 'ReplicaAckError';
  }
}

/**
 * The producer side: queues a change, or says it cannot (then the caller writes the database itself).
 *
 * On a Cluster, an entity's change goes to the stream of its own slot
 * ({@link Keyspace.writeQueue}`.ofEntity`), so that one script still writes the entity's hash and
 * the stream entry; the first enqueue of this process into a stream also adds the stream to the
 * registry the worker reads (a hint: the worker's SCAN finds a stream whose registration was lost).
 */
export class WriteBehindQueue {
  readonly #store: RedisStore | null;
  readonly #client: ReturnType<typeof defineQueueCommands> | null;
  readonly #cluster: boolean;
  readonly #keys: Keyspace;
  readonly #events: CacheEvents;
  readonly #maxPending: number;
  readonly #deadlineMs: number;
  readonly #replicaAcks: number | 'auto';
  readonly #replicaWaitMs: number;
  readonly #afterEnqueue: ((type: string, id: string, change: Change) => Promise<void>) | undefined;
  readonly #knownPending: KnownPending | undefined;
  /** Enqueues with WAIT, on their own connection (opened on first use). */
  readonly #replicated: ReplicaGroupCommit | null;
  /** The slot streams this process has registered. */
  readonly #registered = new Set<string>();

  constructor(options: WriteBehindQueueOptions) {
    this.#store = options.store;
    this.#client = this.#store && defineQueueCommands(this.#store.client);
    this.#cluster = options.store?.client instanceof Cluster;
    this.#keys = options.keys;
    this.#events = options.events;
    this.#maxPending = options.maxPendingPerEntity ?? 1_000;
    this.#deadlineMs = options.enqueueDeadlineMs ?? 250;
    const acks = options.replicaAcks ?? 'auto';
    this.#replicaAcks = acks === 'auto' ? acks : nonNegative('replicaAcks', acks);
    this.#replicaWaitMs = nonNegative('replicaWaitMs', options.replicaWaitMs ?? 50);
    this.#knownPending = options.knownPending;
    this.#afterEnqueue = options.afterEnqueue;
    this.#replicated = options.store && new ReplicaGroupCommit(options.store.client, this.#replicaWaitMs);
  }

  /** Closes the connection of enqueues that wait for replicas, if one was opened. */
  close(): void {
    this.#replicated?.close();
  }

  /** False without Redis: write-behind mutations then write synchronously. */
  get available(): boolean {
    return this.#store !== null;
  }

  /** Reports a change of `type` written to the database synchronously because it could not be queued. */
  countFallback(type: string): void {
    this.#events.writeBehind('fallback', type);
  }

  /**
   * Queues `change` of entity `type:id` and returns its stream entry id, or null when the
   * entity already has `maxPendingPerEntity` changes queued (the worker has fallen behind; its
   * reads would grow without bound). Throws when Redis does not answer (unreachable, breaker
   * open), the queue is unavailable, or fewer replicas than `replicaAcks` acknowledged it
   * ({@link ReplicaAckError}). Either way the caller then writes the database itself.
   */
  async enqueue(type: string, id: string, change: Change): Promise<string | null> {
    const [store, client, replicated] = [this.#store, this.#client, this.#replicated];
    if (!store || !client || !replicated) throw new Error('write-behind is unavailable (no Redis)');
    const encoded = JSON.stringify(change);
    const hash = this.#keys.pending(type, id);
    const stream = this.#cluster ? this.#keys.writeQueue.ofEntity(type, id).stream : this.#keys.writeQueue.stream;
    const args = [
      stream,
      hash,
      this.#keys.entity(type, id),
      type,
      id,
      encoded,
      String(this.#maxPending),
      String(Date.now() + this.#deadlineMs),
    ];
    const wanted = this.#wantedAcks(hash);
    const [[entry, acks]] = await Promise.all([
      store.call('enqueue', () =>
        wanted > 0 ? replicated.enqueue(args, wanted) : client.glcEnqueue(...args).then((e) => [e, 0] as const),
      ),
      this.#register(stream),
    ]);
    // Checked outside the store's call: replicas lagging is no reason to open the breaker.
    if (entry !== null && acks < wanted) throw new ReplicaAckError(acks, wanted);
    if (entry !== null) {
      this.#events.writeBehind('enqueued', type);
      this.#knownPending?.queued(hash, { id: entry, change: Buffer.from(encoded) });
      await this.#afterEnqueue?.(type, id, change);
    }
    return entry;
  }

  /** The replicas that must acknowledge an enqueue into the slot of `key` (see {@link WriteBehindQueueOptions.replicaAcks}). */
  #wantedAcks(key: string): number {
    if (this.#replicaAcks !== 'auto') return this.#replicaAcks;
    const client = this.#store?.client;
    // The client's slot map: per slot, its master's node then its replicas'.
    return client instanceof Cluster && (client.slots[calculateSlot(key)]?.length ?? 0) > 1 ? 1 : 0;
  }

  /** Adds a slot stream to the registry, once per process; a failure is left to the worker's SCAN. */
  async #register(stream: string): Promise<void> {
    if (!this.#cluster || this.#registered.has(stream) || !this.#store) return;
    const store = this.#store;
    try {
      await store.call('wb-register', () => store.client.sadd(this.#keys.writeQueue.registry, stream));
      this.#registered.add(stream);
    } catch {
      // Registered by a later enqueue, or found by the worker's SCAN.
    }
  }
}

function nonNegative(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0) throw new TypeError(`${name}: a non-negative integer, got ${String(value)}`);
  return value;
}
