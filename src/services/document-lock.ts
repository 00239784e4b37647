/**
 * Serializes the writes this process makes to each document, for servers that do not apply an
 * update atomically. FerretDB 1.x runs an update as "find, change in Go, write back" with no
 * isolation: 50 concurrent `$inc`s of one field leave it at about 8, and a conditional
 * `{stock: {$gte: n}}` decrement can oversell. MongoDB applies each single-document update
 * atomically, so there the lock is off and costs nothing.
 */
export interface DocumentLock {
  /** True when writes are serialized (the server is FerretDB). */
  readonly enabled: boolean;
  /**
   * Runs `fn` holding the locks of `keys` (e.g. `products:<id>`), taken in sorted order so that
   * two callers locking overlapping sets cannot deadlock. Runs `fn` at once when disabled.
   */
  run<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T>;
}

/** A {@link DocumentLock}; `enabled: false` makes `run` a plain call. */
export function createDocumentLock(enabled: boolean): DocumentLock {
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

  return {
    enabled,
    async run(keys, fn) {
      if (!enabled) return fn();
      const releases: (() => void)[] = [];
      try {
        for (const key of [...new Set(keys)].sort()) releases.push(await acquire(key));
        return await fn();
      } finally {
        for (const release of releases.reverse()) release();
      }
    },
  };
}
