import { randomBytes } from 'node:crypto';
import type { RedisClient } from 'graphql-lease-cache';
import { AppError, ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';

/**
 * Serializes the writes made to each document, for servers that do not apply an update
 * atomically. FerretDB 1.x runs an update as "find, change in Go, write back" with no
 * isolation: 50 concurrent `$inc`s of one field leave it at about 8, a conditional
 * `{stock: {$gte: n}}` decrement can oversell, and a `$set` of one field writes back the whole
 * document it read, undoing another writer's `$inc` of another field. MongoDB applies each
 * single-document update atomically, so there the lock is off and costs nothing.
 *
 * Within a process, writers of a document queue in memory. Across processes (two server
 * instances, or a server and `npm run worker`, on one FerretDB) that is not enough: with
 * `shared`, the holder of the in-process lock also takes the document's lock in Redis before
 * it writes (see {@link SharedLockOptions}).
 */
export interface DocumentLock {
  /** True when writes are serialized (the server is FerretDB). */
  readonly enabled: boolean;
  /** True when they are serialized across processes too, by locks in Redis. */
  readonly shared: boolean;
  /**
   * Runs `fn` holding the locks of `keys` (e.g. `products:<id>`), taken in sorted order so that
   * two callers locking overlapping sets cannot deadlock. Runs `fn` at once when disabled.
   * Shared: throws DATABASE_UNAVAILABLE (reason LOCK_UNAVAILABLE, nothing written) when Redis
   * does not answer or another process holds a lock for longer than `waitMs`.
   */
  run<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T>;
  /** True while a write of this process holds or awaits the lock `key` (always false when disabled). */
  held(key: string): boolean;
}

/**
 * The cross-process side of a {@link DocumentLock}: per document, a Redis key holding the
 * holder's random token with a TTL. Taking locks is one script call per attempt that sets, in
 * sorted order, each key that is free (SET NX PX) and stops at the first that is not, so a
 * waiter holds a prefix of its keys and the order rules out deadlocks; releasing is one
 * compare-and-delete script call. A holder renews its keys every third of the TTL, so the TTL
 * only bounds how long a crashed holder blocks others. Cost: two Redis round trips per locked
 * write when no other process holds the document, more while one does (waits poll with backoff).
 */
export interface SharedLockOptions {
  redis: RedisClient;
  /** The Redis key of a lock (e.g. `cache.keys.lock`); all keys in one Cluster slot. */
  keyOf(name: string): string;
  /** How long a write waits for locks other processes hold, in milliseconds; then it fails. */
  waitMs: number;
  /** A lock's TTL in milliseconds, renewed while held; default {@link DOCUMENT_LOCK_TTL_MS}. */
  ttlMs?: number;
  logger: Logger;
}

/** The default TTL of a document's lock in Redis, in milliseconds (renewed every third while held). */
export const DOCUMENT_LOCK_TTL_MS = 10_000;

// KEYS: the locks, sorted. ARGV[1]: the token; ARGV[2]: the TTL in ms. Reply: how many of
// KEYS (a prefix) are now the token's, stopping at the first another holds; those the token
// held already (an earlier attempt's) are renewed.
const LOCK = `
for i, key in ipairs(KEYS) do
  if not redis.call('SET', key, ARGV[1], 'NX', 'PX', ARGV[2]) then
    if redis.call('GET', key) ~= ARGV[1] then return i - 1 end
    redis.call('PEXPIRE', key, ARGV[2])
  end
end
return #KEYS
`;
// KEYS: the locks. ARGV[1]: the token. Reply: how many of them held the token (and are deleted).
const UNLOCK = `
local n = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) n = n + 1 end
end
return n
`;
// KEYS: the locks. ARGV[1]: the token; ARGV[2]: the TTL in ms. Reply: how many were renewed.
const RENEW = `
local n = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('PEXPIRE', key, ARGV[2]) n = n + 1 end
end
return n
`;

interface LockCommands {
  gfcDocLock(numKeys: number, ...args: (string | number)[]): Promise<number>;
  gfcDocUnlock(numKeys: number, ...args: (string | number)[]): Promise<number>;
  gfcDocRenew(numKeys: number, ...args: (string | number)[]): Promise<number>;
}

/** The first wait between attempts at a busy lock, and the longest, in milliseconds. */
const FIRST_POLL_MS = 2;
const LONGEST_POLL_MS = 50;

/** A {@link DocumentLock}; `enabled: false` makes `run` a plain call; `shared` makes it cross-process. */
export function createDocumentLock(enabled: boolean, shared: SharedLockOptions | null = null): DocumentLock {
  const tails = new Map<string, Promise<void>>();

  async function acquire(key: string): Promise<() => void> {
    const previous = tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const current = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => current);
    tails.set(key, tail);
    await previous;
    return () => {
      release();
      // The last holder removes the entry, so the map holds only keys being written.
      if (tails.get(key) === tail) tails.delete(key);
    };
  }

  const remote = shared && enabled ? sharedLocks(shared) : null;
  return {
    enabled,
    shared: remote !== null,
    held: (key) => tails.has(key),
    async run(keys, fn) {
      if (!enabled) return fn();
      const sorted = [...new Set(keys)].sort();
      const releases: (() => void | Promise<void>)[] = [];
      try {
        for (const key of sorted) releases.push(await acquire(key));
        if (remote) releases.push(await remote(sorted));
        return await fn();
      } finally {
        for (const release of releases.reverse()) await release();
      }
    },
  };
}

/** Takes the Redis locks of `names` (sorted), waiting for other holders; resolves to their release. */
function sharedLocks(options: SharedLockOptions): (names: readonly string[]) => Promise<() => Promise<void>> {
  const { logger, waitMs } = options;
  const ttlMs = options.ttlMs ?? DOCUMENT_LOCK_TTL_MS;
  const redis = options.redis;
  redis.defineCommand('gfcDocLock', { lua: LOCK });
  redis.defineCommand('gfcDocUnlock', { lua: UNLOCK });
  redis.defineCommand('gfcDocRenew', { lua: RENEW });
  const client = redis as RedisClient & LockCommands;
  const unavailable = (message: string, cause?: unknown): AppError =>
    new AppError(ErrorCode.DatabaseUnavailable, message, { reason: 'LOCK_UNAVAILABLE', httpStatus: 503, cause });

  return async (names) => {
    const keys = names.map((name) => options.keyOf(name));
    const token = randomBytes(12).toString('base64url');
    const deadline = Date.now() + waitMs;
    // All keys, also after an attempt whose reply was lost: a key not holding the token is left alone.
    const unlock = (): Promise<number> => client.gfcDocUnlock(keys.length, ...keys, token);
    try {
      for (let poll = FIRST_POLL_MS; ; poll = Math.min(poll * 2, LONGEST_POLL_MS)) {
        // The keys already taken are passed again: the script keeps (and renews) them.
        const held = await client.gfcDocLock(keys.length, ...keys, token, ttlMs);
        if (held === keys.length) break;
        if (Date.now() + poll > deadline) {
          throw unavailable(`Another server instance has held a document this write needs for over ${waitMs} ms; nothing was written.`);
        }
        await new Promise((resolve) => setTimeout(resolve, poll * (0.5 + Math.random())));
      }
    } catch (error) {
      await unlock().catch(() => 0);
      if (error instanceof AppError) throw error;
      logger.warn({ err: error }, 'the documents lock in Redis could not be taken: the write is refused');
      throw unavailable(
        'Redis, which serializes writes to the database across server instances, did not answer; nothing was written.',
        error,
      );
    }
    const renewal = setInterval(() => {
      client.gfcDocRenew(keys.length, ...keys, token, ttlMs).catch((error: unknown) => {
        logger.warn({ err: error, keys: names }, 'renewing a document lock in Redis failed');
      });
    }, ttlMs / 3);
    renewal.unref();
    return async () => {
      clearInterval(renewal);
      const released = await unlock().catch((error: unknown) => {
        // It expires within the TTL.
        logger.warn({ err: error, keys: names }, 'releasing a document lock in Redis failed');
        return keys.length;
      });
      if (released < keys.length) {
        logger.error({ keys: names, released }, 'a document lock in Redis expired while held: another process may have written meanwhile');
      }
    };
  };
}
