import { productWriteBehindFields } from '../models/product.model.js';
import { userWriteBehindFields } from '../models/user.model.js';

/** How a type's updates reach the cache (see docs/write-policies.md). */
export const WRITE_POLICIES = ['invalidate', 'refresh', 'write-behind'] as const;
export type WritePolicy = (typeof WRITE_POLICIES)[number];

/** What the cache schema says of one entity type that has update mutations. */
export interface EntityPolicy {
  /** The write policy of its updates when `CACHE_WRITE_POLICIES` does not name the type. */
  default: WritePolicy;
  writeBehind: {
    /**
     * What a queued change may touch on its documents: the fields it may set and the counters it
     * may increment. The worker refuses anything else.
     */
    set: readonly string[];
    inc: readonly string[];
    /**
     * Under `write-behind`, what an update that writes MongoDB itself (a field that is never
     * written behind, or no queue: see services/entity-writers.ts) does to the cached document.
     */
    synchronous: 'refresh' | 'invalidate';
  };
}

/**
 * The entity types whose updates have a write policy and whose changes can be written behind,
 * with their default policy and what may be written behind. `CACHE_WRITE_POLICIES` (config.ts)
 * accepts these types, the cache applies their queued changes on reads, and the write-behind
 * worker has one MongoDB target each (services/write-behind-target.ts).
 */
export const ENTITY_POLICIES = {
  User: { default: 'refresh', writeBehind: { set: userWriteBehindFields, inc: [], synchronous: 'refresh' } },
  // viewCount: recordView always queues its `$inc`, whatever the policy of updates.
  Product: { default: 'refresh', writeBehind: { set: productWriteBehindFields, inc: ['viewCount'], synchronous: 'invalidate' } },
} as const satisfies Record<string, EntityPolicy>;

/** An entity type of {@link ENTITY_POLICIES}. */
export type EntityType = keyof typeof ENTITY_POLICIES;

/** The types of {@link ENTITY_POLICIES}, in its order. */
export const ENTITY_TYPES = Object.keys(ENTITY_POLICIES) as readonly EntityType[];

/** The write policy of each entity type. */
export type WritePolicies = Record<EntityType, WritePolicy>;

/** Each type's default policy, as `CACHE_WRITE_POLICIES` unset gives them. */
export const DEFAULT_WRITE_POLICIES: Readonly<WritePolicies> = Object.fromEntries(
  ENTITY_TYPES.map((type) => [type, ENTITY_POLICIES[type].default]),
) as Record<EntityType, WritePolicy>;
