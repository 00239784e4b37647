import { Leadership } from '../leadership.js';
import type { CacheLogger } from '../logger.js';
import type { Keyspace } from '../keys.js';
import type { RedisStore } from '../redis-store.js';
import type { WriteBehindCommands } from './scripts/index.js';

/** The consumer group every worker reads the stream with. */
export const GROUP = 'writers';

/** Options of {@link LeaderLease}. */
export interface LeaderLeaseOptions {
  store: RedisStore;
  client: RedisStore['client'] & WriteBehindCommands;
  keys: Keyspace;
  /** This worker's consumer name in the group. */
  consumer: string;
  /** The lease, in milliseconds. */
  ttlMs: number;
  logger: CacheLogger;
  /** True (one Redis): a new leader takes over the stream's pending entries; false (Cluster): each stream's fence does. */
  takeOver: boolean;
}

/**
 * The worker's leader lease (a {@link Leadership} under `writeQueue.leader`): one worker applies the queue at a time. A
 * worker that newly holds it takes over every entry other consumers left pending before it
 * reads anything, so that the changes of an entity stay in order across leaders.
 */
export class LeaderLease {
  readonly #store: RedisStore;
  readonly #client: RedisStore['client'] & WriteBehindCommands;
  readonly #keys: Keyspace;
  readonly #consumer: string;
  readonly #logger: CacheLogger;
  readonly #lease: Leadership;
  readonly #takeOver: boolean;
  #held = false;
  /** This consumer took over what others left pending since it last won the lease. */
  #tookOver = false;

  constructor(options: LeaderLeaseOptions) {
    this.#store = options.store;
    this.#client = options.client;
    this.#keys = options.keys;
    this.#consumer = options.consumer;
    this.#logger = options.logger;
    this.#takeOver = options.takeOver;
    this.#lease = new Leadership({
      store: options.store,
      key: options.keys.writeQueue.leader,
      holder: options.consumer,
      ttlMs: options.ttlMs,
    });
  }

  /** True while this worker holds the lease (as of its last renewal or read). */
  get held(): boolean {
    return this.#held;
  }

  /** Records that the lease passed to another worker (a read found it so). */
  lost(): void {
    this.#held = false;
  }

  /** Takes or renews the lease; true when this worker holds it (and has taken over what others left pending). */
  async acquire(): Promise<boolean> {
    try {
      const reply = await this.#lease.acquire();
      if (reply !== 'renewed') this.#tookOver = false;
      // Also after a take-over that failed half-way: until it succeeds, nothing is read.
      if (reply !== 'lost' && !this.#tookOver) {
        if (this.#takeOver) {
          await this.#ensureGroup();
          await this.#claimAll();
        }
        this.#tookOver = true;
        this.#logger.info({ consumer: this.#consumer }, 'write-behind worker is the leader');
      }
      this.#held = reply !== 'lost';
    } catch (error) {
      this.#held = false;
      throw error;
    }
    return this.#held;
  }

  /** Gives the lease up, if held (best effort: it expires anyway). */
  async resign(): Promise<void> {
    if (!this.#held) return;
    this.#held = false;
    await this.#lease.resign();
  }

  async #ensureGroup(): Promise<void> {
    try {
      await this.#store.call('wb-group', () => this.#client.xgroup('CREATE', this.#keys.writeQueue.stream, GROUP, '0', 'MKSTREAM'));
    } catch (error) {
      if (!String(error).includes('BUSYGROUP')) throw error;
    }
  }

  /** Moves every pending entry of other consumers to this one (they are not the leader any more). */
  async #claimAll(): Promise<void> {
    let cursor = '0-0';
    do {
      const from = cursor;
      const reply = (await this.#store.call('wb-claim', () =>
        this.#client.xautoclaim(this.#keys.writeQueue.stream, GROUP, this.#consumer, 0, from, 'COUNT', 1000, 'JUSTID'),
      )) as [string, string[]];
      cursor = reply[0];
    } while (cursor !== '0-0');
  }
}
