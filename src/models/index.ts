import type { Logger } from '../logger.js';
import { CacheIntentModel } from './cache-intent.model.js';
import { OrderModel } from './order.model.js';
import { ProductModel } from './product.model.js';
import { ReservationModel } from './reservation.model.js';
import { ReviewModel } from './review.model.js';
import { SessionModel, sessionTtlIndex } from './session.model.js';
import { UserModel } from './user.model.js';

export { CacheIntentModel, OrderModel, ProductModel, ReservationModel, ReviewModel, SessionModel, UserModel };

/**
 * The models of the entity types, by type name: what start-up checks the schema's `@entity`
 * declarations against (caching/entity-declarations.ts), both ways.
 */
export const ENTITY_MODELS = { Product: ProductModel, User: UserModel } as const;

/** What {@link ensureIndexes} found out about the server. */
export interface IndexReport {
  /** False when the server refused the TTL index (FerretDB 1.x): expired sessions must be swept. */
  sessionTtl: boolean;
}

/**
 * Creates the indexes the models declare (autoIndex is off so that start-up controls it).
 * A server that refuses TTL indexes (FerretDB) gets a plain index on `expiresAt` instead, and
 * the caller sweeps expired sessions itself; lookups always filter on `expiresAt` anyway.
 */
export async function ensureIndexes(logger: Logger): Promise<IndexReport> {
  await Promise.all([UserModel, ProductModel, ReviewModel, OrderModel, ReservationModel, CacheIntentModel].map((m) => m.createIndexes()));
  await SessionModel.collection.createIndex({ tokenHash: 1 }, { unique: true });
  await SessionModel.collection.createIndex({ user: 1 });
  try {
    await SessionModel.collection.createIndex(sessionTtlIndex.fields, sessionTtlIndex.options);
    return { sessionTtl: true };
  } catch (error) {
    logger.warn(
      { reason: error instanceof Error ? error.message : String(error) },
      'the MongoDB server refused a TTL index (FerretDB does); expired sessions will be swept by the server process',
    );
    await SessionModel.collection.createIndex(sessionTtlIndex.fields);
    return { sessionTtl: false };
  }
}
