import type { Model, QueryFilter, Types } from 'mongoose';

/** Anything stored with an ObjectId `_id`. */
export interface Identified {
  _id: Types.ObjectId;
}

/**
 * A cursor batch size big enough for any batch result, so that a batch is one command: the
 * driver's default first batch is 101 documents, and each further batch is a `getMore`.
 */
export const ONE_ROUND_TRIP = 100_000;

/**
 * One `find({_id: {$in}})` for a whole batch; the result has the length and order of `ids`,
 * with null where no document has that id (DataLoader's contract). A batch of one id asks by
 * equality: the same one command, but FerretDB answers it from its primary key (about 4 ms
 * here) where it scans the collection for `$in` (about 40 ms), and a cache miss after a write
 * is most often one id. `projection` leaves out bookkeeping fields that reads never show.
 */
export async function findByIds<T extends Identified>(
  model: Model<T>,
  ids: readonly string[],
  projection?: Record<string, 0>,
): Promise<(T | null)[]> {
  const unique = [...new Set(ids)];
  const docs = (await model
    .find(unique.length === 1 ? { _id: unique[0] } : { _id: { $in: unique } }, projection)
    .batchSize(ONE_ROUND_TRIP)
    .lean()
    .exec()) as unknown as T[];
  const byId = new Map(docs.map((doc) => [doc._id.toHexString(), doc]));
  return ids.map((id) => byId.get(id) ?? null);
}

/** The key of a "first N children of a parent" loader. */
export interface ChildrenKey {
  /** The parent's id (hex). */
  parentId: string;
  /** How many children, newest first. */
  first: number;
}

/** Options of {@link findChildren}. */
export interface FindChildrenOptions<T> {
  model: Model<T>;
  /** The foreign-key field that points at the parent, e.g. `product`. */
  foreignKey: keyof T & string;
}

/**
 * The newest `first` children of each parent in one `find` for the whole batch, sorted by the
 * index `{foreignKey: 1, createdAt: -1, _id: -1}`. FerretDB has no `$push`/`$topN`, so there
 * is no portable per-group limit: the query reads every child of the batch's parents and the
 * slicing happens here (the field cache keeps these pages, so this runs on misses only).
 */
export async function findChildren<T extends Identified>(options: FindChildrenOptions<T>, keys: readonly ChildrenKey[]): Promise<T[][]> {
  const { foreignKey } = options;
  const docs = (await childrenQuery(
    options,
    keys.map((k) => k.parentId),
  ).exec()) as unknown as T[];
  const byParent = new Map<string, T[]>();
  for (const doc of docs) {
    const parent = String((doc as unknown as Record<string, unknown>)[foreignKey]);
    const list = byParent.get(parent);
    if (list) list.push(doc);
    else byParent.set(parent, [doc]);
  }
  return keys.map((k) => (byParent.get(k.parentId) ?? []).slice(0, k.first));
}

/**
 * The query of {@link findChildren} (exported for its explain test). A batch of one parent asks
 * by equality, as {@link findByIds} does for one id: MongoDB answers `$in` and equality alike
 * from the index, but FerretDB (SQLite) searches its index only for `{field: value}` (our build,
 * scripts/install-ferretdb.sh) and scans the whole collection for `$in` (0.5 s for 20,000
 * reviews); a request for one product's reviews is a batch of one.
 */
export function childrenQuery<T extends Identified>(options: FindChildrenOptions<T>, parentIds: readonly string[]) {
  const { model, foreignKey } = options;
  const unique = [...new Set(parentIds)];
  return model
    .find((unique.length === 1 ? { [foreignKey]: unique[0] } : { [foreignKey]: { $in: unique } }) as QueryFilter<T>)
    .sort({ [foreignKey]: 1, createdAt: -1, _id: -1 })
    .batchSize(ONE_ROUND_TRIP)
    .lean();
}

/** DataLoader's cacheKeyFn for {@link ChildrenKey}. */
export const childrenCacheKey = (key: ChildrenKey): string => `${key.parentId}:${key.first}`;
