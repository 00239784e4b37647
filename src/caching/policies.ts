import { ENTITY_POLICIES as GENERATED } from '../generated/entities.js';
import { type EntityPolicy, WRITE_POLICIES, type WritePolicy } from './entity-declarations.js';

export { WRITE_POLICIES };
export type { EntityPolicy, WritePolicy };

// Declared once, in the schema: `@entity` on the types of schema/*.graphql, which `npm run codegen`
// writes to src/generated/entities.ts and start-up checks against the models
// (entity-declarations.ts). A type added there is a type here.
/**
 * The entity types whose updates have a write policy and whose changes can be written behind,
 * with their default policy and what may be written behind. `CACHE_WRITE_POLICIES` (config.ts)
 * accepts these types, the cache applies their queued changes on reads, and the write-behind
 * worker has one MongoDB target each (services/write-behind-target.ts).
 */
export const ENTITY_POLICIES = GENERATED satisfies Record<string, EntityPolicy>;

/** An entity type of {@link ENTITY_POLICIES}. */
export type EntityType = keyof typeof ENTITY_POLICIES;

/** The types of {@link ENTITY_POLICIES}, in its order (by name). */
export const ENTITY_TYPES = Object.keys(ENTITY_POLICIES) as readonly EntityType[];

/** The write policy of each entity type. */
export type WritePolicies = Record<EntityType, WritePolicy>;

/** Each type's default policy, as `CACHE_WRITE_POLICIES` unset gives them. */
export const DEFAULT_WRITE_POLICIES: Readonly<WritePolicies> = Object.fromEntries(
  ENTITY_TYPES.map((type) => [type, ENTITY_POLICIES[type].default]),
) as Record<EntityType, WritePolicy>;
