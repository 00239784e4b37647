import type { Schema, UpdateQuery } from 'mongoose';

/** The fields a write-behind change may set on documents of a model (`@entity(writeBehind:)` in the schema; the worker is in graphql-lease-cache's write-behind/). */
export interface WriteBehindPluginOptions {
  fields: readonly string[];
}

/**
 * What loads leave out of a document written behind: `wbApplied` (see {@link writeBehindPlugin}),
 * which only the synchronous write after an enqueue of unknown outcome reads.
 */
export const WRITE_BEHIND_BOOKKEEPING = { wbApplied: 0 } as const;

/**
 * Adds what write-behind keeps in each document: `wbSeq`, the last queued change applied;
 * `wbAt.<field>`, when a synchronous update last set that field; `wbDone`, the ids of
 * changes written synchronously after an enqueue of unknown outcome; and `wbApplied`, the ids of
 * the newest queued changes the worker applied (so that such a synchronous write of a change the
 * worker applied first is not applied again; never loaded). Every update through
 * mongoose's update paths that sets one of `fields` records the time, so that a change queued
 * before it (and applied after it) cannot overwrite it. (The worker's own bulkWrite passes no
 * hook and sets no fence.)
 */
export function writeBehindPlugin(schema: Schema, options: WriteBehindPluginOptions): void {
  schema.add({
    wbSeq: { type: String, default: undefined },
    wbDone: { type: [String], default: undefined },
    wbApplied: { type: [String], default: undefined },
    wbAt: { type: Object.fromEntries(options.fields.map((field) => [field, { type: Number }])), default: undefined, _id: false },
  });
  const fenced = new Set(options.fields);
  schema.pre(['findOneAndUpdate', 'updateOne', 'updateMany'], function fenceQueuedChanges() {
    const update = (this.getUpdate() ?? {}) as UpdateQuery<Record<string, unknown>>;
    const set = (update.$set ?? {}) as Record<string, unknown>;
    const now = Date.now();
    const fences = Object.fromEntries(
      Object.keys(set)
        .filter((field) => fenced.has(field))
        .map((field) => [`wbAt.${field}`, now]),
    );
    if (Object.keys(fences).length > 0) this.setUpdate({ ...update, $set: { ...set, ...fences } });
  });
}
