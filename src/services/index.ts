import type { Cache, FieldCache } from 'graphql-lease-cache';
import type { Loaders } from '../loaders/index.js';
import type { Logger } from '../logger.js';
import type { DocumentLock } from './document-lock.js';
import type { RateLimits } from './rate-limits.js';
import type { WritePolicies } from '../caching/policies.js';
import { createEntityWriters } from './entity-writers.js';
import { createAuthService, type AuthService } from './auth.service.js';
import { createOrderService, type OrderService } from './order.service.js';
import { createProductService, type ProductService } from './product.service.js';
import { createReviewService, type ReviewService } from './review.service.js';
import { createUserService, type UserService } from './user.service.js';

/** The domain operations, shared by all requests (they hold no per-request state). */
export interface Services {
  auth: AuthService;
  users: UserService;
  products: ProductService;
  reviews: ReviewService;
  orders: OrderService;
}

/** Options of {@link createServices}. */
export interface ServicesOptions {
  logger: Logger;
  /** Session lifetime in seconds. */
  sessionTtlSeconds: number;
  /** Serializes document updates where the server does not (FerretDB). */
  documentLock: DocumentLock;
  cache: Cache;
  /** For tag invalidations of cached fields. */
  fieldCache: FieldCache<Loaders>;
  /** How updates of each type reach the cache. */
  writePolicies: WritePolicies;
  /** The login, sign-up and new-session limits. */
  rateLimits: RateLimits;
  /**
   * How long the keys a write of unknown outcome may have changed bypass the cache, in
   * milliseconds (then they are invalidated again): past the MongoDB deadline, by which the
   * server has applied or abandoned the write.
   */
  uncertainWriteHoldMs: number;
}

/** Every service, wired to its dependencies. */
export function createServices(options: ServicesOptions): Services {
  const writers = createEntityWriters(options);
  const auth = createAuthService({ sessionTtlSeconds: options.sessionTtlSeconds, cache: options.cache, rateLimits: options.rateLimits });
  return {
    auth,
    users: createUserService({
      documentLock: options.documentLock,
      cache: options.cache,
      fieldCache: options.fieldCache,
      auth,
      rateLimits: options.rateLimits,
      writers,
      uncertainWriteHoldMs: options.uncertainWriteHoldMs,
    }),
    products: createProductService({
      documentLock: options.documentLock,
      cache: options.cache,
      fieldCache: options.fieldCache,
      rateLimits: options.rateLimits,
      writers,
      uncertainWriteHoldMs: options.uncertainWriteHoldMs,
    }),
    reviews: createReviewService({
      documentLock: options.documentLock,
      cache: options.cache,
      fieldCache: options.fieldCache,
      uncertainWriteHoldMs: options.uncertainWriteHoldMs,
    }),
    orders: createOrderService({
      logger: options.logger,
      documentLock: options.documentLock,
      cache: options.cache,
      fieldCache: options.fieldCache,
      uncertainWriteHoldMs: options.uncertainWriteHoldMs,
    }),
  };
}
