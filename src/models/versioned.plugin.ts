import type { Schema, UpdateQuery } from 'mongoose';

/**
 * Adds a `version` field that every update increments by one, through any of mongoose's update
 * paths. The cache protocol relies on it: a cached value never replaces one of a newer version.
 * (Model.bulkWrite has no such hook: the code that uses it increments `version` itself.)
 */
export function versionedPlugin(schema: Schema): void {
  schema.add({ version: { type: Number, required: true, default: 1, min: 1 } });
  schema.pre(['findOneAndUpdate', 'updateOne', 'updateMany'], function bumpVersion() {
    const update = (this.getUpdate() ?? {}) as UpdateQuery<{ version: number }>;
    const inc = { ...(update.$inc ?? {}) } as Record<string, number>;
    if (inc.version === undefined) inc.version = 1;
    if (update.$set && 'version' in update.$set) delete update.$set.version;
    this.setUpdate({ ...update, $inc: inc });
  });
}
