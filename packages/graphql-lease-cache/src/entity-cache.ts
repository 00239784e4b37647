import type { CacheTrace } from './trace.js';
import { at } from './at.js';
import type { ABSENT } from './codec.js';
import type { CacheCore } from './core.js';
import type { Keyspace } from './keys.js';
import { SILENT_LOGGER, type CacheLogger } from './logger.js';
import { applyQueued, type WriteBehindState } from './write-behind/change.js';

/**
 * What the entity cache needs of a document: a `version`, incremented by every update (the cache
 * never replaces a newer version with an older one), and an id: `_id` (a string, a number or an
 * ObjectId-like value with `toHexString()`) or `id`, unless the type is given its own `idOf`.
 */
export interface Versioned {
  version: number;
}

/** The id of a document: its `_id` (ObjectId-like, string or number), else its `id`. */
export function defaultIdOf(doc: Versioned): string {
  const { _id: id = (doc as { id?: unknown }).id } = doc as { _id?: unknown };
  if (typeof id === 'string' || typeof id === 'number') return String(id);
  if (typeof id === 'object' && id !== null && 'toHexString' in id && typeof id.toHexString === 'function') return String(id.toHexString());
  throw new TypeError('a cached document needs an _id or an id (or pass idOf)');
}

/** A cached document read without a lease ({@link EntityCache.peek}). */
export interface PeekedEntity<T> {
  /** The version it was stored with. */
  version: number;
  /** The document; `ABSENT` for a cached "no such document"; null for a floor (a version, no document). */
  value: T | typeof ABSENT | null;
}

/** Options of {@link EntityCache}. */
export interface EntityCacheOptions {
  core: CacheCore;
  keys: Keyspace;
  /** The entity type, e.g. `User` (the key part and the stats name). */
  type: string;
  /** How long a document stays cached, in milliseconds (±jitter). */
  ttlMs: number;
  /** How long "no document has this id" stays cached, in milliseconds (negative caching). */
  negativeTtlMs: number;
  /** Reads apply the type's queued write-behind changes (see write-behind/queue.ts). */
  writeBehind?: boolean;
  /** The id of a document (for `refresh`); default {@link defaultIdOf}. */
  idOf?: (doc: Versioned) => string;
  /** Where a document without a numeric `version` is reported (once per type); default silent. */
  logger?: CacheLogger;
}

/** Documents by id through the cache core: the batch function of a DataLoader, and the writes that keep it exact. */
export class EntityCache<T extends Versioned> {
  readonly type: string;
  readonly #core: CacheCore;
  readonly #keys: Keyspace;
  readonly #ttlMs: number;
  readonly #negativeTtlMs: number;
  readonly #writeBehind: boolean;
  readonly #idOf: (doc: Versioned) => string;
  readonly #logger: CacheLogger;
  #warnedVersion = false;

  constructor(options: EntityCacheOptions) {
    this.type = options.type;
    this.#core = options.core;
    this.#keys = options.keys;
    this.#ttlMs = options.ttlMs;
    this.#negativeTtlMs = options.negativeTtlMs;
    this.#writeBehind = options.writeBehind ?? false;
    this.#idOf = options.idOf ?? defaultIdOf;
    this.#logger = options.logger ?? SILENT_LOGGER;
  }

  /**
   * A document's version. Without a numeric `version` (JavaScript callers, `any`), 0 with a
   * warning once per type: such documents are cached, but a fill racing a write is then caught
   * only by the lease, not by the version.
   */
  #versionOf(doc: Versioned): number {
    if (typeof doc.version === 'number' && Number.isFinite(doc.version)) return doc.version;
    if (!this.#warnedVersion) {
      this.#warnedVersion = true;
      this.#logger.warn(
        { type: this.type },
        `a cached ${this.type} has no numeric \`version\`: give every document one, incremented by each update (cached as version 0 until then)`,
      );
    }
    return 0;
  }

  /**
   * The documents of `ids` (same length and order; null where none), from Redis in one round
   * trip, the misses from `load` in one call, filled in one more round trip. For a write-behind
   * type, the changes still queued for the database are applied to what is returned (not stored).
   * `load` must return one value per id it is given, in order (null where none): any other
   * length rejects with a TypeError naming the type and the counts, and nothing is cached.
   */
  getMany(ids: readonly string[], load: (ids: readonly string[]) => Promise<(T | null)[]>, trace?: CacheTrace): Promise<(T | null)[]> {
    return this.#core.fetch<T>({
      name: this.type,
      trace,
      keys: ids.map((id) => this.key(id)),
      load: (indexes) => load(indexes.map((i) => at(ids, i, 'ids'))),
      versionOf: (doc) => this.#versionOf(doc),
      ttlMs: (doc) => (doc === null ? this.#negativeTtlMs : this.#ttlMs),
      // Kept past the TTL for the grace, and refreshed early near its end (see CacheCoreOptions).
      grace: true,
      refreshTtlMs: () => this.#ttlMs,
      ...(this.#writeBehind
        ? {
            pendingKeys: ids.map((id) => this.#keys.pending(this.type, id)),
            applyPending: (doc: T, pending) => applyQueued(doc as T & WriteBehindState, pending),
          }
        : {}),
    });
  }

  /**
   * The queued write-behind changes of document `id`, read now, as a function that applies
   * them to a document (the document itself when there are none). Read before a synchronous
   * write and apply to its result, to return what reads will show: a change the worker applies
   * in between is in the document, and `wbSeq` skips it.
   */
  async queuedChanges(id: string): Promise<(doc: T) => T> {
    if (!this.#writeBehind) return (doc) => doc;
    const pending = at(await this.#core.pendingChanges([this.#keys.pending(this.type, id)]), 0, 'pendingChanges: the reply');
    return (doc) => (pending.length > 0 ? applyQueued(doc as T & WriteBehindState, pending) : doc);
  }

  /**
   * Drops the cached documents (after their database write committed). With `holdMs`, after a
   * write of unknown outcome, see {@link CacheCore.invalidate}.
   */
  invalidate(ids: readonly string[], options: { holdMs?: number } = {}): Promise<void> {
    return this.#core.invalidate(
      ids.map((id) => this.key(id)),
      [],
      options,
    );
  }

  /** Writes the documents through (after their database write committed), unless a newer version is cached. */
  refresh(docs: readonly T[], options: { persist?: boolean } = {}): Promise<void> {
    return this.#core.refresh(
      this.type,
      docs.map((doc) => ({
        key: this.key(this.#idOf(doc)),
        value: doc,
        version: this.#versionOf(doc),
        ttlMs: options.persist ? 0 : this.#ttlMs,
        grace: true,
      })),
    );
  }

  /**
   * The cached documents of `ids` as Redis stores them (same order; null where none), without a
   * lease, a fill, or the queued write-behind changes: for an audit comparing the cache with the
   * source. Rejects when Redis fails.
   */
  async peek(ids: readonly string[]): Promise<(PeekedEntity<T> | null)[]> {
    return (await this.#core.peek(ids.map((id) => this.key(id)))) as (PeekedEntity<T> | null)[];
  }

  /** True when document `id` waits in this process for an undelivered invalidation (its cached copy is not served). */
  invalidationPending(id: string): boolean {
    return this.#core.invalidationPending(this.key(id));
  }

  /** The key of one document. */
  key(id: string): string {
    return this.#keys.entity(this.type, id);
  }
}
