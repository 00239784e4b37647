import type { MongooseQueryMiddleware, Query, Schema, Types } from 'mongoose';

/** What one write changed, in the body of POST /cache/invalidate. */
export interface OutsideWriteInvalidation {
  entities: { type: string; id: string }[];
  tags: string[];
}

/** Options of {@link outsideWritesPlugin}. */
export interface OutsideWritesPluginOptions {
  /** The entity type of the model's documents, as the cache names it (`Product`). */
  type: string;
  /** Voids what a committed write changed, e.g. {@link httpInvalidator}; a rejection fails the write's call (the write itself stands). */
  invalidate(invalidation: OutsideWriteInvalidation): Promise<void>;
  /**
   * Fields whose change moves a document in or out of a list, and the tag of those lists: an
   * insert, a delete, or an update that sets one of them also sends the tag. Default none.
   */
  lists?: { fields: readonly string[]; tag: string };
}

const QUERY_WRITES: MongooseQueryMiddleware[] = [
  'updateOne',
  'updateMany',
  'findOneAndUpdate',
  'replaceOne',
  'deleteOne',
  'deleteMany',
  'findOneAndDelete',
];

/** What a query write's pre hook found, kept on the query until its post hook. */
interface Pending {
  ids: string[];
  listed: boolean;
}
const PENDING = Symbol('outsideWrites');
type Tracked = Query<unknown, unknown> & { [PENDING]?: Pending; op?: string };

/**
 * For another Node service that writes MongoDB through these models without going through the
 * API: after each committed write (`save`, `insertMany`, the update and delete queries, and a
 * document's `deleteOne`), it sends the ids written (and the lists' tag, see `lists`) to
 * `invalidate`. A query write first reads the ids its filter matches (one `distinct` more per
 * write): a document it matches that another writer inserts in between is not named. The models'
 * own plugins still run (`version` is incremented on every update, so cached copies stay ordered).
 */
export function outsideWritesPlugin(schema: Schema, options: OutsideWritesPluginOptions): void {
  const listFields = new Set(options.lists?.fields ?? []);
  const send = (ids: readonly string[], listed: boolean): Promise<void> =>
    ids.length === 0 && !listed
      ? Promise.resolve()
      : options.invalidate({
          entities: [...new Set(ids)].map((id) => ({ type: options.type, id })),
          tags: listed && options.lists ? [options.lists.tag] : [],
        });
  schema.pre(QUERY_WRITES, async function matchedIds(this: Tracked) {
    const ids = (await this.model.find(this.getFilter()).distinct('_id')) as Types.ObjectId[];
    const op = this.op ?? '';
    const update = (this.getUpdate() ?? {}) as Record<string, unknown>;
    const setFields = Object.values(update).flatMap((part) => (part && typeof part === 'object' ? Object.keys(part) : []));
    const listed = op.includes('elete') || op === 'replaceOne' || [...Object.keys(update), ...setFields].some((f) => listFields.has(f));
    this[PENDING] = { ids: ids.map((id) => id.toHexString()), listed };
  });
  schema.post(QUERY_WRITES, async function invalidateMatched(this: Tracked, result: unknown) {
    const pending = this[PENDING] ?? { ids: [], listed: false };
    const upserted = (result as { upsertedId?: Types.ObjectId | null } | null)?.upsertedId;
    const returned = (result as { _id?: Types.ObjectId } | null)?._id;
    const ids = [...pending.ids, ...[upserted, returned].flatMap((id) => (id ? [id.toHexString()] : []))];
    await send(ids, pending.listed || Boolean(upserted));
  });
  schema.pre('save', function noteInsert() {
    this.$locals.outsideWriteListed = this.isNew || this.modifiedPaths().some((path) => listFields.has(path));
  });
  schema.post('save', async function invalidateSaved(doc) {
    await send([(doc._id as Types.ObjectId).toHexString()], doc.$locals.outsideWriteListed === true);
  });
  schema.post('insertMany', async function invalidateInserted(docs: unknown) {
    await send(
      (docs as { _id: Types.ObjectId }[]).map((doc) => doc._id.toHexString()),
      true,
    );
  });
  schema.post('deleteOne', { document: true, query: false }, async function invalidateDeleted(doc) {
    await send([(doc._id as Types.ObjectId).toHexString()], true);
  });
}

/** Options of {@link httpInvalidator}. */
export interface HttpInvalidatorOptions {
  /** The API's base URL, e.g. http://api:4000. */
  url: string;
  /** The API's CACHE_INVALIDATION_KEY. */
  key: string;
}

/** An `invalidate` for {@link outsideWritesPlugin} that POSTs to the API's /cache/invalidate, 1,000 items a call; rejects on any refusal. */
export function httpInvalidator({ url, key }: HttpInvalidatorOptions): OutsideWritesPluginOptions['invalidate'] {
  return async ({ entities, tags }) => {
    for (let start = 0; start === 0 || start < entities.length; start += 1_000) {
      const body = { entities: entities.slice(start, start + 1_000), tags: start === 0 ? tags : [] };
      const res = await fetch(`${url.replace(/\/+$/, '')}/cache/invalidate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-cache-invalidation-key': key },
        body: JSON.stringify(body),
      });
      if (!res.ok) throw new Error(`POST /cache/invalidate answered ${res.status}: ${await res.text()}`);
    }
  };
}
