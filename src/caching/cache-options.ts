import type { CreateCacheOptions } from 'graphql-lease-cache';
import { objectIdReviver } from '../models/object-id-reviver.js';
import { ENTITY_TYPES } from './policies.js';
import { RESPONSE_FIELDS } from './tags.js';

/**
 * What this domain tells the cache, the same in the server and in `npm run worker`: the types
 * whose reads apply queued write-behind changes, the fields whose changes void responses field by
 * field, and the codec's reviver for ObjectIds.
 */
export const DOMAIN_CACHE_OPTIONS = {
  writeBehindTypes: ENTITY_TYPES,
  responseFields: RESPONSE_FIELDS,
  revivers: [objectIdReviver],
} as const satisfies Partial<CreateCacheOptions>;
