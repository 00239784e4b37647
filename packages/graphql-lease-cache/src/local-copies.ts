import { deepFreeze } from './freeze.js';

/** Options of {@link LocalCopies}. */
export interface LocalCopiesOptions {
  /** The most copies kept (the oldest dropped first); default 20000. */
  maxEntries?: number;
  /**
   * Deep-freeze each copy (plain objects and arrays), so that code that mutates a value it was
   * given fails loudly instead of changing what other requests read; for development and tests.
   * Default false.
   */
  freeze?: boolean;
}

/** A decoded copy of a stored value and the etag that names its bytes. */
export interface LocalCopy {
  etag: string;
  value: unknown;
  /** The size of the stored payload it was decoded from, in bytes (0 when not known). */
  bytes: number;
}

/**
 * Decoded copies of values stored in Redis, each named by its etag (see redis-store.ts). A copy
 * is never served on its own say: a read sends its etag in the same get-or-lease call as always,
 * and uses the copy only when Redis answers that the stored value is still the one with that
 * etag. So it saves the transfer and the decoding of a warm value, not the round trip, and
 * changes nothing of what a read may return. Copies are shared by every request of the process:
 * they must not be mutated (`freeze` catches it in tests).
 */
export class LocalCopies {
  readonly #maxEntries: number;
  readonly #freeze: boolean;
  /** In insertion order: the first is the oldest (dropped first; a hit does not reorder, which costs less). */
  readonly #copies = new Map<string, LocalCopy>();

  constructor(options: LocalCopiesOptions = {}) {
    this.#maxEntries = options.maxEntries ?? 20_000;
    if (!(Number.isInteger(this.#maxEntries) && this.#maxEntries > 0)) {
      throw new TypeError(`maxEntries must be a positive integer, got ${String(options.maxEntries)}`);
    }
    this.#freeze = options.freeze ?? false;
  }

  /** How many copies are kept. */
  get size(): number {
    return this.#copies.size;
  }

  /** The copy of `key`, if any. */
  get(key: string): LocalCopy | undefined {
    return this.#copies.get(key);
  }

  /** Keeps `value` as the copy of `key` stored with `etag`, decoded from `bytes` bytes (default 0: not known). */
  set(key: string, etag: string, value: unknown, bytes = 0): void {
    if (this.#freeze) deepFreeze(value);
    this.#copies.delete(key);
    this.#copies.set(key, { etag, value, bytes });
    if (this.#copies.size > this.#maxEntries) {
      const oldest = this.#copies.keys().next();
      if (!oldest.done) this.#copies.delete(oldest.value);
    }
  }

  /** Drops the copies of `keys` (they would no longer match anyway: this frees them sooner). */
  delete(keys: readonly string[]): void {
    for (const key of keys) this.#copies.delete(key);
  }
}
