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

/** True for errors that mean MongoDB could not be reached (not a bad command). */
export function isMongoUnavailable(error: unknown): boolean {
  return (
    error instanceof mongoose.mongo.MongoServerSelectionError ||
    error instanceof mongoose.mongo.MongoNetworkError ||
    error instanceof mongoose.mongo.MongoTopologyClosedError ||
    (error instanceof Error && error.name === 'MongooseServerSelectionError')
  );
}

/** DATABASE_UNAVAILABLE, for errors that {@link isMongoUnavailable} recognises. */
export function databaseUnavailable(cause: unknown): AppError {
  return new AppError(ErrorCode.DatabaseUnavailable, 'The database is unavailable; nothing was changed. Try again shortly.', { cause });
}
