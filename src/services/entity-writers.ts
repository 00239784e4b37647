import type { Cache } from 'graphql-lease-cache';
import { createEntityWriter, type EntityWriter } from 'graphql-lease-cache/write-behind';
import { ENTITY_POLICIES, type EntityType, type WritePolicies } from '../caching/policies.js';
import type { Logger } from '../logger.js';
import type { ProductDoc } from '../models/product.model.js';
import type { UserDoc } from '../models/user.model.js';
import type { DocumentLock } from './document-lock.js';
import type { RequestScope } from './scope.js';
import { lockOf, mongoEntityTarget } from './write-behind-target.js';

/** The cached updates of each entity type with a write policy (createEntityWriter). */
export interface EntityWriters {
  Product: EntityWriter<ProductDoc, RequestScope>;
  User: EntityWriter<UserDoc, RequestScope>;
}

/** Options of {@link createEntityWriters}. */
export interface EntityWritersOptions {
  cache: Cache;
  documentLock: DocumentLock;
  writePolicies: WritePolicies;
  /** See ServicesOptions.uncertainWriteHoldMs; in milliseconds. */
  uncertainWriteHoldMs: number;
  logger: Logger;
}

/**
 * One writer per type: its policy from `writePolicies`, its synchronous fallback and what it may
 * write behind from ENTITY_POLICIES, MongoDB as the target, each synchronous write holding the
 * document's lock, and soft-deleted documents not live.
 */
export function createEntityWriters(options: EntityWritersOptions): EntityWriters {
  const common = (type: EntityType) => ({
    cache: options.cache,
    type,
    policy: options.writePolicies[type],
    synchronous: ENTITY_POLICIES[type].writeBehind.synchronous,
    holdMs: options.uncertainWriteHoldMs,
    logger: options.logger,
    lock: <R>(id: string, write: () => Promise<R>) => options.documentLock.run([lockOf(type, id)], write),
    isLive: (doc: { deletedAt?: Date | null }) => !doc.deletedAt,
  });
  return {
    Product: createEntityWriter<ProductDoc, RequestScope>({
      ...common('Product'),
      target: mongoEntityTarget('Product', options.documentLock),
      loader: (scope) => scope.loaders.product,
    }),
    User: createEntityWriter<UserDoc, RequestScope>({
      ...common('User'),
      target: mongoEntityTarget('User', options.documentLock),
      loader: (scope) => scope.loaders.user,
    }),
  };
}
