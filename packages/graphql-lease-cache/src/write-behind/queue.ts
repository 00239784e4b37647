import { Cluster } from 'ioredis';
import type { Keyspace } from '../keys.js';
import type { KnownPending } from '../known-pending.js';
import type { RedisStore } from '../redis-store.js';
import type { Change } from './change.js';
import type { CacheEvents } from '../events.js';
import { defineQueueCommands } from './scripts/index.js';

/** Options of {@link WriteBehindQueue}. */
export interface WriteBehindQueueOptions {
  /** Null (no Redis) or a Cluster: the queue is unavailable and callers write synchronously. */
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
  /** Told of every change queued, for reads while Redis cannot be asked. */
  knownPending?: KnownPending;
  /**
   * Awaited after each change queued, with the entity and the change: what reads show of the
   * entity changed (they apply the queue), so the whole responses that show it must go. Never throws.
   */
  afterEnqueue?: (type: string, id: string, change: Change) => Promise<void>;
}

/** The producer side: queues a change, or says it cannot (then the caller writes the database itself). */
export class WriteBehindQueue {
  readonly #store: RedisStore | null;
  readonly #client: ReturnType<typeof defineQueueCommands> | null;
  readonly #keys: Keyspace;
  readonly #events: CacheEvents;
  readonly #maxPending: number;
  readonly #deadlineMs: number;
  readonly #afterEnqueue: ((type: string, id: string, change: Change) => Promise<void>) | undefined;
  readonly #knownPending: KnownPending | undefined;

  constructor(options: WriteBehindQueueOptions) {
    // The change and its stream entry are written by one script, so they must share a node:
    // on a Cluster they cannot (the stream has one slot, entities have theirs).
    this.#store = options.store && !(options.store.client instanceof Cluster) ? options.store : null;
    this.#client = this.#store && defineQueueCommands(this.#store.client);
    this.#keys = options.keys;
    this.#events = options.events;
    this.#maxPending = options.maxPendingPerEntity ?? 1_000;
    this.#deadlineMs = options.enqueueDeadlineMs ?? 250;
    this.#knownPending = options.knownPending;
    this.#afterEnqueue = options.afterEnqueue;
  }

  /** False without Redis or on a Cluster: write-behind mutations then write synchronously. */
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
   * open) or the queue is unavailable. Either way the caller then writes the database itself.
   */
  async enqueue(type: string, id: string, change: Change): Promise<string | null> {
    const [store, client] = [this.#store, this.#client];
    if (!store || !client) throw new Error('write-behind is unavailable (no Redis, or a Redis Cluster)');
    const encoded = JSON.stringify(change);
    const hash = this.#keys.pending(type, id);
    const entry = await store.call('enqueue', () =>
      client.glcEnqueue(
        this.#keys.writeQueue.stream,
        hash,
        this.#keys.entity(type, id),
        type,
        id,
        encoded,
        String(this.#maxPending),
        String(Date.now() + this.#deadlineMs),
      ),
    );
    if (entry !== null) {
      this.#events.writeBehind('enqueued', type);
      this.#knownPending?.queued(hash, { id: entry, change: Buffer.from(encoded) });
      await this.#afterEnqueue?.(type, id, change);
    }
    return entry;
  }
}
