import { ABSENT } from './codec.js';
import type { CacheCore } from './core.js';
import type { Keyspace } from './keys.js';
import type { CacheTrace } from './trace.js';

/** How {@link KeyedValues.get} loads and keeps a value. */
export interface KeyedValueLoad<T> {
  /** Reads the value from the source of truth; null when there is none (cached as absent). */
  load(): Promise<T | null>;
  /** The value's version: a write never replaces a newer one. */
  versionOf(value: T): number;
  /** How long to keep the value (or an absence, `null`), in milliseconds. */
  ttlMs(value: T | null): number;
  /** Reset the expiry of a hit to this, in milliseconds (sliding expiration); default: leave it. */
  touchTtlMs?: number;
  /** The request the read is for (events name it; a response computed for it depends on the key). */
  trace?: CacheTrace;
}

/**
 * Values of one kind by id that are not entities behind a DataLoader (sessions, say), on the
 * same lease protocol: `get` is a lease-guarded read-through, `set` a version-checked write
 * through, and `tombstone` an absence no later write can replace, for a value that must never
 * come back (a session that was ended: a renewal racing the logout cannot revive it).
 * The key of `id` is `{prefix}:{<kind>:<id>}`, one Cluster slot.
 */
export class KeyedValues<T> {
  readonly #core: CacheCore;
  readonly #keys: Keyspace;
  readonly #kind: string;

  constructor(options: { core: CacheCore; keys: Keyspace; kind: string }) {
    this.#core = options.core;
    this.#keys = options.keys;
    this.#kind = options.kind;
    this.#keys.entity(options.kind, 'probe'); // a kind the keyspace refuses fails here, not on first use
  }

  /** The cache key of `id` (for tests and tooling; nothing else should build it). */
  key(id: string): string {
    return this.#keys.entity(this.#kind, id);
  }

  /** The value of `id`, from the cache or loaded (and filled under a lease); null when there is none. */
  async get(id: string, how: KeyedValueLoad<T>): Promise<T | null> {
    const [value] = await this.#core.fetch<T>({
      name: this.#kind,
      keys: [this.key(id)],
      load: async () => [await how.load()],
      versionOf: how.versionOf,
      ttlMs: (value) => how.ttlMs(value),
      ...(how.touchTtlMs === undefined ? {} : { touchTtlMs: how.touchTtlMs }),
      ...(how.trace ? { trace: how.trace } : {}),
    });
    return value ?? null;
  }

  /** Writes `value` of `id` through at `version` (kept unless the cache holds a newer one), for `ttlMs` milliseconds. */
  set(id: string, value: T, version: number, ttlMs: number): Promise<void> {
    return this.#core.refresh(this.#kind, [{ key: this.key(id), value, version, ttlMs }]);
  }

  /**
   * Marks `ids` as absent for good (for `ttlMs` milliseconds): an absence at the highest version,
   * which no later `set` or fill can replace. Never throws: undelivered, the keys bypass the
   * cache in this process until it is delivered.
   */
  tombstone(ids: readonly string[], ttlMs: number): Promise<void> {
    return this.#core.refresh(
      this.#kind,
      ids.map((id) => ({ key: this.key(id), value: ABSENT, version: Number.MAX_SAFE_INTEGER, ttlMs })),
    );
  }
}
