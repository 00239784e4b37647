import mongoose from 'mongoose';
import { AppError, ErrorCode, badInput } from '../errors.js';

/**
 * True for a duplicate-key error: E11000 from mongod (and FerretDB on inserts); FerretDB 1.24
 * reports a unique violation in an update as InternalError with SQLite's message instead.
 */
export function isDuplicateKey(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  if ((error as { code?: unknown }).code === 11000) return true;
  const message = (error as { message?: unknown }).message;
  return typeof message === 'string' && /UNIQUE constraint failed/.test(message);
}

/** Runs `write`, turning a duplicate-key error into BAD_USER_INPUT on `field`. */
export async function uniqueOn<T>(field: string, message: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (isDuplicateKey(error)) throw badInput(field, message, 'DUPLICATE');
    throw error;
  }
}

/**
 * True for errors that mean MongoDB could not be reached or did not answer in time (not a bad
 * command): no server selected, no pooled connection free, a connection that failed or timed
 * out (`MONGODB_TIMEOUT_MS`, see db.ts), the client closed.
 */
export function isMongoUnavailable(error: unknown): boolean {
  return (
    error instanceof mongoose.mongo.MongoServerSelectionError ||
    // Also MongoNetworkTimeoutError (a socket or connect timeout) and PoolClearedError.
    error instanceof mongoose.mongo.MongoNetworkError ||
    error instanceof mongoose.mongo.MongoTopologyClosedError ||
    error instanceof mongoose.mongo.MongoOperationTimeoutError ||
    (error instanceof Error && (error.name === 'MongooseServerSelectionError' || error.name === 'MongoWaitQueueTimeoutError'))
  );
}

/**
 * True when a read's `error` means MongoDB cannot answer it now, so that an entry that only
 * expired may be served in its grace (CACHE_GRACE_SECONDS): {@link isMongoUnavailable}, or a read
 * the read bulkhead refused (SERVER_BUSY: MongoDB is hung or slow, and reads pile up behind it).
 */
export function isReadUnavailable(error: unknown): boolean {
  return isMongoUnavailable(error) || (error instanceof AppError && error.code === ErrorCode.ServerBusy);
}

/** The `extensions.reason` of a DATABASE_UNAVAILABLE error after which a write may or may not have been applied. */
export const OUTCOME_UNKNOWN = 'OUTCOME_UNKNOWN';

/** DATABASE_UNAVAILABLE for a failure before anything was written. */
export function databaseUnavailable(
  cause: unknown,
  message = 'The database is unavailable; nothing was changed. Try again shortly.',
): AppError {
  return new AppError(ErrorCode.DatabaseUnavailable, message, { cause });
}

/**
 * DATABASE_UNAVAILABLE with reason {@link OUTCOME_UNKNOWN}: a write was sent and MongoDB did not
 * answer, so it may have been applied. Never "nothing was changed": a client that retried a
 * non-idempotent mutation on that word could apply it twice.
 */
export function outcomeUnknown(
  cause: unknown,
  message = 'The database did not answer in time; the change may or may not have been applied. Check before trying again.',
): AppError {
  return new AppError(ErrorCode.DatabaseUnavailable, message, { reason: OUTCOME_UNKNOWN, cause });
}

/**
 * True when a write that failed with `error` may nonetheless have been applied: any
 * {@link isMongoUnavailable} error (a timeout after the command was sent; even a server selection
 * failure, which can end a retry of an attempt that was sent), or an {@link outcomeUnknown} one.
 */
export function isOutcomeUnknown(error: unknown): boolean {
  return isMongoUnavailable(error) || (error instanceof AppError && error.extensions.reason === OUTCOME_UNKNOWN);
}

/**
 * Runs `write`; when it fails with its outcome unknown ({@link isOutcomeUnknown}), awaits
 * `invalidate` (the keys and tags the write would have invalidated or refreshed) before
 * rethrowing, so that reads bypass what it may have changed rather than serve the cached value
 * it may have made stale. `invalidate` should never throw (the cache core's invalidations keep
 * what they cannot deliver pending); if it does, the write's error is still the one thrown.
 */
export async function afterUncertainWrite<T>(invalidate: () => Promise<unknown>, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (isOutcomeUnknown(error)) await invalidate().catch(() => undefined);
    throw error;
  }
}

/**
 * Runs `write`, then `invalidate` whatever became of it (the keys a write invalidates after
 * it committed, also when it failed half-way); `uncertain` is true when it failed with its
 * outcome unknown, and the caller then holds what it invalidates (see {@link afterUncertainWrite}).
 * The write's error, if any, is thrown after the invalidation; `invalidate` should never throw.
 */
export async function writeThenInvalidate<T>(write: () => Promise<T>, invalidate: (uncertain: boolean) => Promise<unknown>): Promise<T> {
  let uncertain = false;
  try {
    return await write();
  } catch (error) {
    uncertain = isOutcomeUnknown(error);
    throw error;
  } finally {
    await invalidate(uncertain);
  }
}
