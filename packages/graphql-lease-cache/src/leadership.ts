import type { RedisStore } from './redis-store.js';
import { LEAD, RESIGN } from './write-behind/scripts/leader.js';

/** Options of {@link Leadership}. */
export interface LeadershipOptions {
  store: RedisStore;
  /** The lease's key, named by the application (e.g. `keys.lock('jobs')`). */
  key: string;
  /** Who asks: a name unique to this process (e.g. host and pid). */
  holder: string;
  /** The lease, in milliseconds: a holder that stops renewing loses it after this long. */
  ttlMs: number;
}

/** What {@link Leadership.acquire} found: newly this holder's, renewed, or another's. */
export type LeadershipReply = 'won' | 'renewed' | 'lost';

interface LeadCommands {
  glcLead(key: string, holder: string, ttlMs: number): Promise<number>;
  glcResign(key: string, holder: string): Promise<number>;
}

/**
 * A Redis-held lease that one holder at a time has (the write-behind worker's leader lease is
 * one, under its own key): taken with SET PX when absent, renewed by its holder, given up with
 * a compare-and-delete. The caller renews it well within `ttlMs` (a third is usual) and acts as
 * holder only while the last call said so; a holder paused past its lease may act once more.
 */
export class Leadership {
  readonly #store: RedisStore;
  readonly #client: LeadershipOptions['store']['client'] & LeadCommands;
  readonly #key: string;
  readonly #holder: string;
  readonly #ttlMs: number;
  #held = false;

  constructor(options: LeadershipOptions) {
    this.#store = options.store;
    const client = options.store.client;
    // Idempotent: the worker defines the same commands on the same client.
    client.defineCommand('glcLead', { numberOfKeys: 1, lua: LEAD });
    client.defineCommand('glcResign', { numberOfKeys: 1, lua: RESIGN });
    this.#client = client as typeof client & LeadCommands;
    this.#key = options.key;
    this.#holder = options.holder;
    this.#ttlMs = options.ttlMs;
  }

  /** Who this is. */
  get holder(): string {
    return this.#holder;
  }

  /** True while this holder has the lease (as of its last {@link acquire}). */
  get held(): boolean {
    return this.#held;
  }

  /** Takes or renews the lease (one round trip); a Redis error throws and counts as not held. */
  async acquire(): Promise<LeadershipReply> {
    try {
      const reply = await this.#store.call('lead', () => this.#client.glcLead(this.#key, this.#holder, this.#ttlMs));
      this.#held = reply > 0;
      return reply === 2 ? 'won' : reply === 1 ? 'renewed' : 'lost';
    } catch (error) {
      this.#held = false;
      throw error;
    }
  }

  /** Gives the lease up, if held (best effort: it expires anyway). */
  async resign(): Promise<void> {
    if (!this.#held) return;
    this.#held = false;
    await this.#store.call('resign', () => this.#client.glcResign(this.#key, this.#holder)).catch(() => 0);
  }
}
