import type DataLoader from 'dataloader';
import { AppError, ErrorCode } from '../errors.js';
import type { Identified } from '../loaders/batch.js';

/** The `id` field of every entity: its ObjectId as 24 hex digits. */
export const idOf = (parent: Identified): string => parent._id.toHexString();

/**
 * The entities of a cached list of ids, through the entity loader (one batch), in order.
 * An id whose entity is gone (deleted after the list was read) is left out.
 */
export async function hydrate<T>(loader: DataLoader<string, T | null>, ids: readonly string[]): Promise<T[]> {
  const entities = await loader.loadMany(ids);
  return entities.filter((entity): entity is T => {
    if (entity instanceof Error) throw entity;
    return entity !== null;
  });
}

/**
 * A referenced entity that must exist (a review's author, an order's product), through its
 * loader. A dangling reference is a data error, reported as such rather than as a null in a
 * non-null field. (One `then`, and the message built only on failure: this runs for every
 * review of a catalog page.)
 */
export function loadRequired<T>(loader: DataLoader<string, T | null>, what: string, id: { toHexString(): string }): Promise<T> {
  const hex = id.toHexString();
  return loader.load(hex).then((value) => {
    if (value === null) throw new AppError(ErrorCode.InternalServerError, `Dangling reference: ${what} ${hex} does not exist.`);
    return value;
  });
}
