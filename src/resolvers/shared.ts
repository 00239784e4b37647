import { AppError, ErrorCode } from '../errors.js';
import type { Identified } from '../loaders/batch.js';

/** The `id` field of every entity: its ObjectId as 24 hex digits. */
export const idOf = (parent: Identified): string => parent._id.toHexString();

/**
 * A referenced entity that must exist (a review's author, an order's product). A dangling
 * reference is a data error, reported as such rather than as a null in a non-null field.
 */
export function required<T>(value: T | null | Error, what: string): T {
  if (value instanceof Error) throw value;
  if (value === null) throw new AppError(ErrorCode.InternalServerError, `Dangling reference: ${what} does not exist.`);
  return value;
}
