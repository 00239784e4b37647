import type { PendingEntry } from './redis-store.js';

/** Options of {@link KnownPending}. */
export interface KnownPendingOptions {
  /** The most write-behind hashes remembered (least recently seen forgotten first); default 10000. */
  maxKeys?: number;
  /** The most entries remembered per hash; default 1000 (the queue refuses more per entity). */
  maxEntriesPerKey?: number;
}

interface Known {
  change: Buffer;
  /** When this process learned that Redis had the entry (ms since the epoch). */
  seenAt: number;
}

/**
 * What this process knows of the write-behind changes still queued in Redis, per entity hash:
 * the changes it queued itself, and the newest snapshot each read brought back. It answers
 * only when Redis cannot (a timeout, an open breaker), so that a read served from the source then
 * still shows the changes whose mutations returned: acknowledged changes live in Redis until
 * the worker flushes them, and the database alone does not have them.
 *
 * Remembering too much is harmless: a change already flushed is skipped by the document's
 * `wbSeq`, and one also written synchronously by its `wbDone` (see write-behind/target.ts). So a
 * snapshot only forgets entries that Redis had before the snapshot was asked for and no longer
 * has; an entry this process queued after that is kept, whatever the order of the replies.
 *
 * Exact for the changes queued through this process. Changes queued by another instance are
 * known here only once a read of this process has seen them.
 */
export class KnownPending {
  readonly #maxKeys: number;
  readonly #maxEntries: number;
  /** In least-recently-seen order (a Map keeps insertion order; a touch re-inserts). */
  readonly #byKey = new Map<string, Map<string, Known>>();

  constructor(options: KnownPendingOptions = {}) {
    this.#maxKeys = options.maxKeys ?? 10_000;
    this.#maxEntries = options.maxEntriesPerKey ?? 1_000;
    if (!(Number.isInteger(this.#maxKeys) && this.#maxKeys > 0))
      throw new TypeError(`maxKeys must be a positive integer, got ${this.#maxKeys}`);
    if (!(Number.isInteger(this.#maxEntries) && this.#maxEntries > 0))
      throw new TypeError(`maxEntriesPerKey must be a positive integer, got ${this.#maxEntries}`);
  }

  /** How many hashes are remembered (for tests and metrics). */
  get size(): number {
    return this.#byKey.size;
  }

  /** Records an entry this process queued (its enqueue returned). */
  queued(key: string, entry: PendingEntry): void {
    const known = this.#touch(key) ?? new Map<string, Known>();
    known.set(entry.id, { change: entry.change, seenAt: Date.now() });
    this.#store(key, known);
  }

  /**
   * Records what a read found in the hash `key`, read by a call sent at `askedAt` (ms since the
   * epoch): every entry found is kept; an entry it did not find is forgotten if it was known
   * before the call was sent (it has been settled since).
   */
  observed(key: string, entries: readonly PendingEntry[], askedAt: number): void {
    const before = this.#byKey.get(key);
    if (!before && entries.length === 0) return;
    const known = new Map<string, Known>();
    for (const entry of entries) known.set(entry.id, { change: entry.change, seenAt: askedAt });
    for (const [id, entry] of before ?? []) if (!known.has(id) && entry.seenAt >= askedAt) known.set(id, entry);
    this.#byKey.delete(key);
    if (known.size > 0) this.#store(key, known);
  }

  /** The entries remembered for `key`, in stream order (empty when none). */
  get(key: string): PendingEntry[] {
    const known = this.#byKey.get(key);
    if (!known) return [];
    return [...known].map(([id, entry]) => ({ id, change: entry.change })).sort((a, b) => compareStreamIds(a.id, b.id));
  }

  #touch(key: string): Map<string, Known> | undefined {
    const known = this.#byKey.get(key);
    if (known) this.#byKey.delete(key);
    return known;
  }

  #store(key: string, known: Map<string, Known>): void {
    while (known.size > this.#maxEntries) {
      const oldest = [...known.keys()].sort(compareStreamIds)[0];
      if (oldest === undefined) break;
      known.delete(oldest);
    }
    this.#byKey.set(key, known);
    while (this.#byKey.size > this.#maxKeys) {
      const lru = this.#byKey.keys().next();
      if (lru.done) break;
      this.#byKey.delete(lru.value);
    }
  }
}

/** Orders stream entry ids `<ms>-<n>` as Redis does. */
function compareStreamIds(a: string, b: string): number {
  const [am = '0', an = '0'] = a.split('-');
  const [bm = '0', bn = '0'] = b.split('-');
  return Number(am) - Number(bm) || Number(an) - Number(bn);
}
