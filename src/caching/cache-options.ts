import type { CreateCacheOptions } from 'graphql-lease-cache';
import { objectIdReviver } from '../models/object-id-reviver.js';
import { currentTrace } from '../trace.js';
import { ENTITY_TYPES } from './policies.js';
import { RESPONSE_FIELDS } from './tags.js';

/**
 * What this domain tells the cache, the same in the server and in `npm run worker`: the types
 * whose reads apply queued write-behind changes, the fields whose changes void responses field by
 * field, the codec's reviver for ObjectIds, and where the traced request being served is found
 * (a mutation's writes, the MongoDB driver's events).
 */
export const DOMAIN_CACHE_OPTIONS = {
  writeBehindTypes: ENTITY_TYPES,
  responseFields: RESPONSE_FIELDS,
  revivers: [objectIdReviver],
  currentTrace,
} as const satisfies Partial<CreateCacheOptions>;
