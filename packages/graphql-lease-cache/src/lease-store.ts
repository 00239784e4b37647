import type { CacheTrace } from './trace.js';

// The store the cache core depends on: five operations of the lease protocol, each one round
// trip for a whole batch. RedisStore implements it over Redis or a Redis Cluster with Lua
// scripts (./scripts/); ./testing/lease-store-contract.ts states the contract every
// implementation must keep (graphql-lease-cache/testing), and the package's tests run it against
// a single Redis and a three-node cluster.

/** One value to read, with the tags it depends on. */
export interface LeaseRequest {
  key: string;
  /** Tag keys (same Cluster slot as `key`), in a fixed order: the fill names them again in that order. */
  tags?: readonly string[];
  /** A hash of write-behind changes to read with the value (same slot), see write-behind/queue.ts. */
  pendingKey?: string;
  /** The etag of the copy of the value the reader holds: if it is still the stored one, the reply is `same`. */
  etag?: string;
  /**
   * How long the value is kept past its TTL (it was stored for its TTL plus this), in
   * milliseconds; default 0. A value in its grace reads as a miss that carries it (`stale`).
   */
  graceMs?: number;
  /**
   * A value that is not a cached absence, with less than this left of its TTL (in milliseconds)
   * and no live lease, is leased to this reader with the hit (`refresh`); default 0: never.
   */
  refreshWindowMs?: number;
}

/** A value past its TTL, in its grace (see {@link LeaseRequest.graceMs}): its stamp still matched its tags when read. */
export interface StaleValue {
  version: number;
  etag: string;
  payload: Buffer;
}

/** A write-behind change not yet in the database: its stream entry id and its encoded change. */
export interface PendingEntry {
  id: string;
  change: Buffer;
}

/** What the store found for one key. */
export type LeaseReply =
  /**
   * The stored value, named by `etag`. `refresh` (on a hit or "same"): the value was near the end
   * of its TTL, and this reader's token now holds its lease, to reload and fill it in the
   * background. `stale` (on a lease or busy): the value, past its TTL and in its grace, that the
   * reader may serve if the source cannot answer.
   */
  (
    | { kind: 'hit'; version: number; etag: string; payload: Buffer; refresh?: true }
    /** The stored value is the one whose etag the reader sent (not sent again). */
    | { kind: 'same'; refresh?: true }
    | { kind: 'lease'; stale?: StaleValue }
    /** Another reader holds the lease; `token` is its lease token. */
    | { kind: 'busy'; token: string; stale?: StaleValue }
  ) & {
    /** The key's write-behind changes, when asked for and there are any. */
    pending?: PendingEntry[];
  };

/** A value to store with its version; `ttlMs` 0 stores it without expiry. */
export interface VersionedValue {
  key: string;
  version: number;
  payload: Buffer;
  ttlMs: number;
  /** The tag keys it depends on (fills only): the same, in the same order, as when its lease was taken. */
  tags?: readonly string[];
}

/** Options of {@link LeaseStore.getOrLease}. */
export interface GetOrLeaseOptions {
  /** The lease token for every miss of this call. */
  token: string;
  /** How long a lease holds, in milliseconds. */
  leaseTtlMs: number;
  /** On a hit, reset the key's expiry to this (sliding expiration); 0 leaves it. */
  touchTtlMs?: number;
  /** Tag sets live at least this long, in milliseconds (longer than anything they name). */
  tagTtlMs?: number;
  /** The request to count the round trip in (default: the traced request, if any). */
  trace?: CacheTrace;
}

/**
 * What the cache core needs of a store (the protocol's steps are in read-path.ts and core.ts):
 *
 * - `getOrLease`: per request, the stored value (`hit`, or `same` when the reader's etag still
 *   names it), or a lease for this reader's token when there is none and no one else holds a
 *   live one (`lease`), or the other holder's token (`busy`). A value or a lease computed under
 *   tag versions that changed since is no value and no lease. With a `pendingKey`, the queued
 *   write-behind changes come in the same snapshot. With a `graceMs`, a value past its TTL is a
 *   miss that carries it (`stale`); with a `refreshWindowMs`, a hit near its end takes the lease
 *   (`refresh`).
 * - `setIfLeased`: stores each value only if `token` still holds its lease, its tags have the
 *   versions they had when the lease was taken, and no newer version is stored; the lease ends.
 * - `refresh`: stores each value unless a newer version is stored, and voids every lease taken
 *   before (a fill that follows is refused).
 * - `invalidate`: deletes the values and their leases, and the tags (whose dependants then read
 *   as misses).
 * - `pending`: the queued write-behind changes of each key's hash.
 *
 * Every operation either applies whole per key or throws; a store that cannot answer throws, and
 * the core serves from the source of truth.
 */
export interface LeaseStore {
  getOrLease(requests: readonly LeaseRequest[], options: GetOrLeaseOptions): Promise<LeaseReply[]>;
  setIfLeased(token: string, values: readonly VersionedValue[], trace?: CacheTrace): Promise<boolean[]>;
  refresh(values: readonly VersionedValue[], etag: string): Promise<boolean[]>;
  invalidate(keys: readonly string[], tags?: readonly string[]): Promise<void>;
  pending(keys: readonly string[], trace?: CacheTrace): Promise<PendingEntry[][]>;
  /** The stored bytes of each key (same order; null where none), without a lease; optional (an audit's read). */
  peek?(keys: readonly string[]): Promise<(Buffer | null)[]>;
}
