import type { CreateCacheOptions } from 'graphql-lease-cache';
import { objectIdReviver } from '../models/object-id-reviver.js';
import { isMongoUnavailable } from '../services/mongo-errors.js';
import { ENTITY_TYPES } from './policies.js';
import { RESPONSE_FIELDS } from './tags.js';

/**
 * What this domain tells the cache, the same in the server and in `npm run worker`: the types
 * whose reads apply queued write-behind changes, the fields whose changes void responses field by
 * field, the codec's reviver for ObjectIds, and which errors mean MongoDB cannot answer (reads of
 * entries that only expired are then served them, in their grace: CACHE_GRACE_SECONDS; the same in
 * both, so that what either stores is kept for the grace).
 */
export const DOMAIN_CACHE_OPTIONS = {
  writeBehindTypes: ENTITY_TYPES,
  responseFields: RESPONSE_FIELDS,
  revivers: [objectIdReviver],
  isSourceUnavailable: isMongoUnavailable,
} as const satisfies Partial<CreateCacheOptions>;
