import type { Intent, IntentLog } from 'graphql-lease-cache';
import { Types } from 'mongoose';
import { CacheIntentModel } from '../models/cache-intent.model.js';

/** The most intents one listing returns (a larger backlog is delivered over several renewals). */
const LIST_LIMIT = 500;

/**
 * The fleet's intent log in MongoDB (`cacheintents`): an invalidation an instance could not
 * deliver to Redis survives the instance, and any other delivers it (graphql-lease-cache's
 * fleet protocol, docs/cache-protocol.md#the-fleet). Each call is one MongoDB command.
 */
export function mongoIntentLog(): IntentLog {
  return {
    async record({ owner, keys, tags }) {
      const doc = await CacheIntentModel.create({ owner, keys: [...keys], tags: [...tags], recordedAt: new Date() });
      return doc._id.toHexString();
    },
    async clear(ids) {
      if (ids.length === 0) return;
      await CacheIntentModel.deleteMany({ _id: { $in: ids.map((id) => new Types.ObjectId(id)) } });
    },
    async list({ owners, recordedBeforeMs }) {
      const or: Record<string, unknown>[] = [];
      if (owners && owners.length > 0) or.push({ owner: { $in: [...owners] } });
      if (recordedBeforeMs !== undefined) or.push({ recordedAt: { $lt: new Date(recordedBeforeMs) } });
      if (or.length === 0) return [];
      const docs = await CacheIntentModel.find(or.length === 1 ? or[0] : { $or: or })
        .limit(LIST_LIMIT)
        .lean();
      return docs.map((doc): Intent => ({
        id: doc._id.toHexString(),
        owner: doc.owner,
        keys: doc.keys,
        tags: doc.tags,
        recordedAt: doc.recordedAt.getTime(),
      }));
    },
  };
}
