import type { Types } from 'mongoose';
import type { Cache, EntityCache } from 'graphql-lease-cache';
import { ReviewModel } from '../models/index.js';
import type { ProductDoc } from '../models/product.model.js';
import type { ReviewDoc } from '../models/review.model.js';
import { settleReviewCount, type CountedReview } from './review-counts.js';
import type { AuthService } from './auth.service.js';
import { tags, type TagInvalidator } from '../caching/tags.js';
import { AppError, ErrorCode, badInput } from '../errors.js';
import type { DocumentLock } from './document-lock.js';
import { updateByIdIf } from './update-by-id.js';
import { UserModel } from '../models/index.js';
import type { UserDoc } from '../models/user.model.js';
import { afterUncertainWrite, uniqueOn, writeThenInvalidate } from './mongo-errors.js';
import { ERASED_PASSWORD_HASH, hashPassword } from './password.js';
import type { RateLimits } from './rate-limits.js';
import { requireViewer, type RequestScope } from './scope.js';
import { definedOnly, inputs, parseId, parseInput, refuseReservedEmail } from './validation.js';
import type { EntityWriters } from './entity-writers.js';

/** The user mutations' input shapes (from the generated GraphQL types). */
export interface CreateUserArgs {
  name: string;
  email: string;
  password: string;
}
export interface UpdateUserArgs {
  name?: string | null;
  email?: string | null;
}

/** Sign-ups and profile changes. */
export type UserService = ReturnType<typeof createUserService>;

const DUPLICATE_EMAIL = 'A user with this email already exists.';

/** Options of {@link createUserService}. */
export interface UserServiceOptions {
  documentLock: DocumentLock;
  cache: Cache;
  fieldCache: TagInvalidator;
  auth: AuthService;
  /** Counts sign-ups per client address. */
  rateLimits: RateLimits;
  /** The cached updates of users (updateUser): see entity-writers.ts. */
  writers: Pick<EntityWriters, 'User'>;
  /** See ServicesOptions.uncertainWriteHoldMs; in milliseconds. */
  uncertainWriteHoldMs: number;
}

/** User writes; each returns the stored document and primes the request's loader with it. */
export function createUserService(options: UserServiceOptions) {
  const deps: UserDeps = {
    ...options,
    users: options.cache.entity<UserDoc>('User'),
    hold: { holdMs: options.uncertainWriteHoldMs },
    reviews: options.cache.entity<ReviewDoc>('Review'),
    productCache: options.cache.entity<ProductDoc>('Product'),
  };
  const { users } = deps;
  return {
    /** A new CUSTOMER; BAD_USER_INPUT on a bad, reserved or duplicate email; RATE_LIMITED past the sign-ups of the address. */
    async create(scope: RequestScope, args: CreateUserArgs): Promise<UserDoc> {
      const input = parseInput(inputs.createUser, args, 'input');
      refuseReservedEmail(input.email, 'input.email');
      // Counted before the (deliberately slow) hash, duplicates included.
      await options.rateLimits.signUp(scope.clientIp);
      const passwordHash = await hashPassword(input.password);
      const created = await uniqueOn('input.email', DUPLICATE_EMAIL, () =>
        UserModel.create({ name: input.name, email: input.email, passwordHash, role: 'CUSTOMER' }),
      );
      const user = created.toObject<UserDoc>();
      await users.refresh([user]); // write-through: the new user is cached at once
      scope.loaders.user.prime(user._id.toHexString(), user);
      return user;
    },

    /** Changes the viewer's own profile; FORBIDDEN for anyone else's. */
    update: (scope: RequestScope, rawId: string, args: UpdateUserArgs): Promise<UserDoc> => updateUser(deps, scope, rawId, args),

    /** Deletes an account (soft: past orders keep their user); the user themself or an ADMIN. */
    delete: (scope: RequestScope, rawId: string): Promise<boolean> => deleteUser(deps, scope, rawId),
  };
}

/** What the user writes share: the service's options and the caches they refresh or invalidate. */
interface UserDeps extends UserServiceOptions {
  users: EntityCache<UserDoc>;
  reviews: EntityCache<ReviewDoc>;
  productCache: EntityCache<ProductDoc>;
  /** How long what an unanswered write touched bypasses the cache (uncertainWriteHoldMs). */
  hold: { holdMs: number };
}

/** Changes the viewer's own profile; FORBIDDEN for anyone else's. */
async function updateUser(deps: UserDeps, scope: RequestScope, rawId: string, args: UpdateUserArgs): Promise<UserDoc> {
  const userId = parseId(rawId);
  // Cache keys and loaders use the canonical (lower-case) form, whatever the client sent.
  const id = userId.toHexString();
  const viewer = await requireViewer(scope);
  if (!viewer._id.equals(userId)) throw new AppError(ErrorCode.Forbidden, 'Only the user themself may change this profile.');
  const changes = definedOnly(parseInput(inputs.updateUser, args, 'input'));
  if (changes.email) refuseReservedEmail(changes.email, 'input.email');
  // The unique index decides when the change is written (a queued one: at flush time); before
  // queueing, a check catches the common case now, with a clear error.
  const beforeQueue = async (current: UserDoc): Promise<void> => {
    if (changes.email === undefined || changes.email === current.email) return;
    if (await UserModel.exists({ email: changes.email, _id: { $ne: userId } }).exec())
      throw badInput('input.email', DUPLICATE_EMAIL, 'DUPLICATE');
  };
  const user = await uniqueOn('input.email', DUPLICATE_EMAIL, () => deps.writers.User.update(scope, id, { set: changes }, { beforeQueue }));
  if (!user) throw new AppError(ErrorCode.NotFound, 'No user has this id.', { field: 'id' });
  return user;
}

/** Deletes an account (soft: past orders keep their user); the user themself or an ADMIN. */
async function deleteUser(deps: UserDeps, scope: RequestScope, rawId: string): Promise<boolean> {
  const { documentLock, users, hold } = deps;
  const userId = parseId(rawId);
  // Cache keys and loaders use the canonical (lower-case) form, whatever the client sent.
  const id = userId.toHexString();
  const viewer = await requireViewer(scope);
  if (!viewer._id.equals(userId) && viewer.role !== 'ADMIN')
    throw new AppError(ErrorCode.Forbidden, 'Only the user themself or an ADMIN may delete this account.');
  // The email becomes `deleted:<id>`: unique per user (the index) and no address, so no client can
  // take it first and make this update fail; the hash becomes one no password matches.
  const erased = { deletedAt: new Date(), name: 'Deleted user', email: `deleted:${id}`, passwordHash: ERASED_PASSWORD_HASH };
  const user = await afterUncertainWrite(
    () => Promise.all([users.invalidate([id], hold), deps.fieldCache.invalidate([tags.userReviews(id), tags.userOrders(id)], hold)]),
    () => documentLock.run([`users:${id}`], () => updateByIdIf(documentLock, UserModel, userId, { deletedAt: null }, { $set: erased })),
  );
  if (!user) {
    // Already deleted: a deletion whose answer never came (its outcome unknown) may have
    // erased the account and stopped there. A retry finishes the erasure, and still says
    // false: no live account had this id.
    const erasedBefore = await UserModel.findOne({ _id: userId, deletedAt: { $ne: null } })
      .lean<UserDoc>()
      .exec();
    if (erasedBefore) await finishErasure(deps, erasedBefore);
    return false;
  }
  await finishErasure(deps, user);
  scope.loaders.user.clear(id).prime(id, user);
  return true;
}

/** Ends the sessions of an erased account and deletes its reviews, keeping every cache exact; safe to run again. */
async function finishErasure(deps: UserDeps, user: UserDoc): Promise<void> {
  const { documentLock, users, reviews, productCache, hold } = deps;
  const userId = user._id;
  const id = userId.toHexString();
  let doomed: CountedReview[] = [];
  await writeThenInvalidate(
    async () => {
      await deps.auth.endAllSessions(userId);
      // Not a review still being created (its count not yet settled): like one created after
      // this query, it stays (and is settled by its own request or by recovery).
      doomed = await ReviewModel.find({ author: userId, 'counting.delta': { $ne: 1 } }, { _id: 1, product: 1, rating: 1 })
        .lean<CountedReview[]>()
        .exec();
      // Each deletion takes one off its product's count, exactly once (services/review-counts.ts).
      await ReviewModel.updateMany(
        { _id: { $in: doomed.map((r) => r._id) }, counting: null },
        { $set: { counting: { delta: -1, at: new Date() } } },
      ).exec();
      for (const review of doomed) await settleReviewCount(documentLock, review, -1);
    },
    (uncertain) => {
      const held = uncertain ? hold : {}; // an unanswered delete may still land
      const products = [...new Set(doomed.map((r) => r.product.toHexString()))];
      return Promise.all([
        users.refresh([user]),
        productCache.invalidate(products, held),
        reviews.invalidate(
          doomed.map((r) => r._id.toHexString()),
          held,
        ),
        deps.fieldCache.invalidate([tags.userReviews(id), tags.userOrders(id), ...products.map(tags.productReviews)], held),
      ]);
    },
  );
}
