import { Schema, model, type Types } from 'mongoose';

/**
 * An invalidation an instance could not deliver to Redis (graphql-lease-cache's fleet protocol):
 * recorded here, where the write that owes it has just landed, so that any instance delivers it
 * once Redis answers, even after the one that owed it died. Deleted once delivered.
 */
export interface CacheIntentDoc {
  _id: Types.ObjectId;
  /** The instance that owed it (its fleet member name). */
  owner: string;
  keys: string[];
  tags: string[];
  recordedAt: Date;
}

const cacheIntentSchema = new Schema<CacheIntentDoc>(
  {
    owner: { type: String, required: true },
    keys: { type: [String], default: [] },
    tags: { type: [String], default: [] },
    recordedAt: { type: Date, required: true },
  },
  { versionKey: false, autoIndex: false, collection: 'cacheintents' },
);
cacheIntentSchema.index({ owner: 1 });
cacheIntentSchema.index({ recordedAt: 1 });

export const CacheIntentModel = model<CacheIntentDoc>('CacheIntent', cacheIntentSchema);
