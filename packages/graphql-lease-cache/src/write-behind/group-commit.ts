import calculateSlot from 'cluster-key-slot';
import { createHash } from 'node:crypto';
import { Cluster } from 'ioredis';
import type { RedisClient } from '../redis-client.js';
import { DedicatedConnection } from '../dedicated-connection.js';
import { ENQUEUE } from './scripts/enqueue.js';

const ENQUEUE_SHA = createHash('sha1').update(ENQUEUE).digest('hex');

/** One enqueue waiting for its batch. */
interface Waiting {
  /** ENQUEUE's keys and arguments (3 keys). */
  args: readonly string[];
  wanted: number;
  resolve(result: readonly [string | null, number]): void;
  reject(error: unknown): void;
}

/**
 * Enqueues that replicas must acknowledge, committed as a group: the enqueues of one node
 * gathered during one turn of the event loop go in one pipeline, followed by one `WAIT` (it
 * covers every earlier write of its connection), so that concurrent views share a replica round
 * trip instead of queueing one WAIT each. On a connection of its own (a duplicate of the
 * cache's client): a WAIT holds up everything behind it on its connection, and the cache's
 * reads must not wait for replicas.
 *
 * The scripts go as EVALSHA, then (NOSCRIPT) as EVAL, in the pipeline, never through the
 * defined command, whose NOSCRIPT retry would run outside the pipeline, after the WAIT.
 */
export class ReplicaGroupCommit {
  readonly #source: RedisClient;
  readonly #waitMs: number;
  readonly #batches = new Map<string, Waiting[]>();
  /** Its own connection: a WAIT holds up every command behind it. */
  readonly #connection: DedicatedConnection;

  constructor(source: RedisClient, waitMs: number) {
    this.#source = source;
    this.#connection = new DedicatedConnection(source, 'write-behind');
    this.#waitMs = waitMs;
  }

  /** Runs ENQUEUE (`args`) and waits for `wanted` replicas: its reply and how many acknowledged. */
  enqueue(args: readonly string[], wanted: number): Promise<readonly [string | null, number]> {
    return new Promise((resolve, reject) => {
      const node = this.#nodeOf(args[1] ?? '');
      const batch = this.#batches.get(node);
      if (batch) batch.push({ args, wanted, resolve, reject });
      else {
        this.#batches.set(node, [{ args, wanted, resolve, reject }]);
        setImmediate(() => void this.#flush(node));
      }
    });
  }

  /** Closes its connection (the cache closing). */
  close(): void {
    this.#connection.close();
  }

  /** The master of the slot of `key`, as the client's slot map has it (one group per node). */
  #nodeOf(key: string): string {
    const client = this.#source;
    return client instanceof Cluster ? (client.slots[calculateSlot(key)]?.[0] ?? 'unknown') : 'one';
  }

  async #flush(node: string): Promise<void> {
    const batch = this.#batches.get(node) ?? [];
    this.#batches.delete(node);
    try {
      const client = await this.#connection.get();
      const wanted = Math.max(...batch.map((w) => w.wanted));
      const first = await this.#run(client, batch, 'evalsha', wanted);
      // A node without the script (restarted, promoted, flushed) ran none of them: again as EVAL.
      const missing = batch.filter((_, i) => first.replies[i]?.[0]?.message.includes('NOSCRIPT'));
      const second = missing.length > 0 ? await this.#run(client, missing, 'eval', wanted) : null;
      batch.forEach((waiting, i) => {
        const again = second ? missing.indexOf(waiting) : -1;
        settle(waiting, again >= 0 && second ? second.replies[again] : first.replies[i], again >= 0 && second ? second.wait : first.wait);
      });
    } catch (error) {
      for (const waiting of batch) waiting.reject(error);
    }
  }

  async #run(
    client: RedisClient,
    batch: readonly Waiting[],
    command: 'evalsha' | 'eval',
    wanted: number,
  ): Promise<{ replies: [Error | null, unknown][]; wait: [Error | null, unknown] }> {
    const pipeline = client.pipeline();
    for (const { args } of batch) pipeline.call(command, command === 'eval' ? ENQUEUE : ENQUEUE_SHA, 3, ...args);
    pipeline.call('wait', wanted, this.#waitMs);
    const results = await pipeline.exec();
    if (!results || results.length !== batch.length + 1) throw new Error('write-behind enqueue: the pipeline returned no reply');
    return { replies: results.slice(0, -1), wait: results.at(-1) as [Error | null, unknown] };
  }
}

function settle(waiting: Waiting, reply: [Error | null, unknown] | undefined, wait: [Error | null, unknown]): void {
  const [error, entry] = reply ?? [new Error('write-behind enqueue: no reply'), null];
  if (error) return waiting.reject(error);
  if (wait[0]) return waiting.reject(wait[0]);
  waiting.resolve([typeof entry === 'string' ? entry : null, typeof wait[1] === 'number' ? wait[1] : 0]);
}
