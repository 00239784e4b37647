import type { Model, QueryFilter, Types, UpdateQuery } from 'mongoose';
import sift from 'sift';
import type { DocumentLock } from './document-lock.js';

// sift is CommonJS: Node's default import is its module.exports, which also carries `default`.
const matches = sift.default;

/** Options of {@link updateByIdIf}. */
export interface UpdateByIdOptions {
  /** Which document to answer: before or after the update (default after). */
  returnDocument?: 'before' | 'after';
  /** The fields of the answered document (default all; all on FerretDB); `{ _id: 1 }` where only "matched" matters. */
  projection?: Record<string, 0 | 1>;
}

/**
 * `findOneAndUpdate({_id, ...conditions}, update)`, the one conditional single-document write
 * of the services: the document by `_id` if it meets `conditions`, updated, or null.
 *
 * On MongoDB it is that one atomic command. FerretDB 1.x uses its `_id` index only for a
 * filter that is exactly `{_id}`: any condition beside it makes every update scan the
 * collection (60 ms idle for 500 products, hundreds under the benchmark's writers). There it
 * reads the document by `_id`, tests the conditions here (sift, MongoDB's query semantics) and
 * updates by `_id` alone. The caller must hold `lock` on the document: FerretDB applies neither
 * form atomically, so what isolates writers there is the lock (see document-lock.ts), as before.
 */
export async function updateByIdIf<T>(
  lock: DocumentLock,
  model: Model<T>,
  id: Types.ObjectId | string,
  conditions: QueryFilter<T>,
  update: UpdateQuery<T>,
  options: UpdateByIdOptions = {},
): Promise<T | null> {
  const returnDocument = options.returnDocument ?? 'after';
  if (!lock.enabled) {
    const write = { returnDocument, ...(options.projection ? { projection: options.projection } : {}) };
    return model
      .findOneAndUpdate({ _id: id, ...conditions } as QueryFilter<T>, update, write)
      .lean<T>()
      .exec();
  }
  const current = await model
    .findOne({ _id: id } as QueryFilter<T>, fieldsOf(conditions))
    .lean<Record<string, unknown>>()
    .exec();
  if (!current || !satisfies(conditions, current)) return null;
  // FerretDB implements no projection in findAndModify: the whole document comes back.
  return model
    .findOneAndUpdate({ _id: id } as QueryFilter<T>, update, { returnDocument })
    .lean<T>()
    .exec();
}

/** The projection that reads what `conditions` test. */
export function fieldsOf(conditions: object): Record<string, 1> {
  return Object.fromEntries(Object.keys(conditions).map((field) => [field, 1]));
}

/** Whether `doc` meets `conditions`, a MongoDB filter, as the server would decide it. */
export function satisfies(conditions: object, doc: object): boolean {
  return matches(conditions as Parameters<typeof matches>[0])(doc);
}
