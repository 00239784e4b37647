import type { Schema, UpdateQuery } from 'mongoose';

/** The fields a write-behind change may set on documents of a model (`@entity(writeBehind:)` in the schema; the worker is in graphql-lease-cache's write-behind/). */
export interface WriteBehindPluginOptions {
  fields: readonly string[];
}

/**
 * Adds what write-behind keeps in each document: `wbSeq`, the last queued change applied;
 * `wbAt.<field>`, when a synchronous update last set that field; and `wbDone`, the ids of
 * changes written synchronously after an enqueue of unknown outcome. Every update through
 * mongoose's update paths that sets one of `fields` records the time, so that a change queued
 * before it (and applied after it) cannot overwrite it. (The worker's own bulkWrite passes no
 * hook and sets no fence.)
 */
export function writeBehindPlugin(schema: Schema, options: WriteBehindPluginOptions): void {
  schema.add({
    wbSeq: { type: String, default: undefined },
    wbDone: { type: [String], default: undefined },
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
