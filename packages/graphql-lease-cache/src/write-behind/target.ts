import type { Change, WriteBehindState } from './change.js';

/**
 * An update the worker asks a {@link WriteTarget} to make, only if the document is still as the
 * folding saw it: the same `wbSeq` (null: none yet), none of `notDone` in `wbDone`, and for
 * each field in `set` the same `wbAt` fence (null: none). Other changes to the document (a
 * synchronous write of another field) do not matter: the update commutes with them.
 */
export interface TargetUpdate {
  id: string;
  guard: { wbSeq: string | null; notDone: string[]; fences: Record<string, number | null> };
  set: Record<string, string | number | boolean | null>;
  inc: Record<string, number>;
  /** The new `wbSeq`. */
  seq: string;
}

/**
 * What became of one {@link TargetUpdate}. `failed` is for errors that trying again cannot fix
 * (the target refused this change); errors that can pass (the database unreachable, a primary
 * stepping down) are thrown, and the whole batch is tried again without counting a try.
 */
export type TargetOutcome =
  /** Applied; the document had `version` just after (a later write may have raised it). */
  { kind: 'applied'; version: number } | { kind: 'conflict' } | { kind: 'failed'; error: string };

/** Where one entity type's queued changes go (MongoDB, for this application). */
export interface WriteTarget {
  /** Why the target would never take this change of this entity (an unknown field, a bad id), or null. */
  refuse(id: string, change: Change): string | null;
  /** The write-behind state of the documents that exist and are live; absent ids are missing or deleted. */
  load(ids: readonly string[]): Promise<Map<string, WriteBehindState>>;
  /** Applies the updates (one batch write), each under its guard. */
  apply(updates: readonly TargetUpdate[]): Promise<TargetOutcome[]>;
}
