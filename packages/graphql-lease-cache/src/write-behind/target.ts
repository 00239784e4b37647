import type { Change, WriteBehindState } from './change.js';

/**
 * An update the worker asks a {@link WriteTarget} to make, only if the document is still as the
 * folding saw it: the same `wbSeq` (null: none yet), none of `notDone` in `wbDone`, and for
 * each field in `set` the same `wbAt` fence (null: none). Other changes to the document (a
 * synchronous write of another field) do not matter: the update commutes with them. The same
 * write records the ids of `notDone` as applied (the newest hundred, say), for a later
 * {@link DirectWrite} of one of them.
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

/** Where one entity type's queued changes go: your database. */
export interface WriteTarget {
  /** Why the target would never take this change of this entity (an unknown field, a bad id), or null. */
  refuse(id: string, change: Change): string | null;
  /** The write-behind state of the documents that exist and are live; absent ids are missing or deleted. */
  load(ids: readonly string[]): Promise<Map<string, WriteBehindState>>;
  /** Applies the updates (one batch write), each under its guard. */
  apply(updates: readonly TargetUpdate[]): Promise<TargetOutcome[]>;
}

/**
 * A synchronous write of one document, as the entity writer ({@link EntityWriteTarget.write})
 * asks it: applied only if the document is live, in one conditional single-document update.
 */
export interface DirectWrite {
  id: string;
  /** Fields to set. */
  set: Record<string, string | number | boolean | null>;
  /** Counters to add to. */
  inc: Record<string, number>;
  /**
   * Present when an enqueue of this change may have happened all the same (its outcome is
   * unknown, see {@link Change.u}): the same update must record the id in the document's
   * done ids ({@link WriteBehindState.wbDone}), so that the worker skips the queued copy; and
   * it must write nothing when the worker applied that copy first (the id is among those its
   * updates recorded as applied, {@link TargetUpdate}: the caller stalled past its timeout
   * while the enqueue ran), answering the document as it is.
   */
  doneId?: string;
  /**
   * Present when the change is also queued, as this stream entry id (an enqueue its replicas did
   * not acknowledge in time): the worker may apply that copy before this write, so the write
   * must change nothing when the document's `wbSeq` is already at or past {@link seqOf}(`queued`)
   * (then the result is the document as it is). With {@link doneId}, so that a later copy is skipped.
   */
  queued?: string;
  /** True when the caller needs the document as it was just before the update (`before` in the result). */
  before?: boolean;
}

/** What a {@link DirectWrite} did: the document after it (null if it can no longer be read), and before it when asked. */
export interface DirectWriteResult<T> {
  after: T | null;
  before?: T;
}

/**
 * One entity type in your database, as the entity writer (createEntityWriter) writes it: the
 * worker's {@link WriteTarget}, whose `refuse` also says which changes may be written behind
 * (a change it refuses is written synchronously), and the synchronous write.
 */
export interface EntityWriteTarget<T> extends WriteTarget {
  /**
   * Applies `write` if the document is live; null when no live document has the id (nothing
   * written). Throws when the database fails: see {@link isOutcomeUnknown}.
   */
  write(write: DirectWrite): Promise<DirectWriteResult<T> | null>;
  /**
   * True when a write that failed with `error` may have been applied all the same (a timeout,
   * a lost connection). Default: every error (then the cache holds the document back for a
   * while after any failure, which is safe and only costs reads of the database).
   */
  isOutcomeUnknown?(error: unknown): boolean;
}
