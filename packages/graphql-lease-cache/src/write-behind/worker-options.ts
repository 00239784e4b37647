import type { CacheLogger } from '../logger.js';
import type { Keyspace } from '../keys.js';
import type { RedisStore } from '../redis-store.js';
import type { WriteTarget } from './target.js';

/** Options of {@link WriteBehindWorker}. */
export interface WriteBehindWorkerOptions {
  store: RedisStore;
  keys: Keyspace;
  targets: Readonly<Record<string, WriteTarget>>;
  logger: CacheLogger;
  /** Most changes read per batch; default 500. */
  batchSize?: number;
  /** Pause between batches when the queue is drained, in milliseconds; default 100 (changes coalesce meanwhile). */
  intervalMs?: number;
  /** Pause before trying a failed change again (its entity's other changes wait; other entities do not), in milliseconds; default 1000. */
  retryMs?: number;
  /** Failed attempts after which a change goes to the dead-letter stream; default 5. */
  maxTries?: number;
  /** The leader lease (one worker applies at a time), in milliseconds; default 10000. */
  leaderTtlMs?: number;
  /** How long the version floor left by a flush holds, in milliseconds; default 60000. */
  floorTtlMs?: number;
  /** Called after the target took a batch and before it is acknowledged (tests use it to crash there). */
  afterWrite?: () => Promise<void>;
  /** Called after the batch's documents were loaded and before they are written (tests race writes there). */
  beforeWrite?: () => Promise<void>;
  /**
   * Awaited after each batch is settled, with the entities it settled: applied (the database has the
   * changes now, and what it set besides, such as `updatedAt`, shows from the next read) or
   * dead-lettered (reads no longer apply the changes), with the fields the changes named. What
   * reads show of those entities changed, so the whole responses that show it must go.
   */
  afterSettle?: (settled: readonly SettledEntity[]) => Promise<void>;
}

/** An entity whose queued changes a batch settled (see {@link WriteBehindWorkerOptions.afterSettle}). */
export interface SettledEntity {
  type: string;
  id: string;
  /** True when the database has the changes; false when they were dead-lettered. */
  applied: boolean;
  /** The fields the settled changes set or added to. */
  fields: string[];
}

/** The result of one {@link WriteBehindWorker.runOnce}. */
export interface BatchReport {
  /** Entries read. */
  read: number;
  /** Entries acknowledged as applied (or found already applied). */
  flushed: number;
  /** Entries that failed and stay queued. */
  failed: number;
  /** Entries moved to the dead-letter stream. */
  dead: number;
  /** Entities whose version moved while the batch ran (read again next batch). */
  conflicts: number;
}
