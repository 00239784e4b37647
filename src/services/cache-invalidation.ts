import type { Cache, TagRef } from 'graphql-lease-cache';
import { z } from 'zod';
import { KNOWN_TAGS, productListId, type TagInvalidator } from '../caching/tags.js';
import { AppError, ErrorCode } from '../errors.js';
import { ProductModel, UserModel } from '../models/index.js';

/** The most entities plus tags one invalidation names (a larger one is refused whole, nothing voided). */
export const MAX_INVALIDATION_ITEMS = 1_000;

/** The entity types an invalidation may name: those the entity cache keeps, keyed by ObjectId. */
export const INVALIDATABLE_TYPES = ['Product', 'User', 'Review', 'Order'] as const;

/** The tags an invalidation may name: `catalog` (every product list) or `catalog:<category>` (one list and the list of all). */
const TAG_PATTERN = /^catalog(:.+)?$/;

const OBJECT_ID = /^[0-9a-f]{24}$/i;

/** The body of POST /cache/invalidate, as parsed: types and ids checked, ids lower-case. */
export interface InvalidationRequest {
  entities: { type: (typeof INVALIDATABLE_TYPES)[number]; id: string }[];
  tags: string[];
}

/** What one invalidation voided: the entities by type, and the field-cache tags (`Type:id:tag`). */
export interface InvalidationReport {
  entities: Record<string, string[]>;
  tags: string[];
}

const bodySchema = z.object({
  entities: z.array(z.object({ type: z.string(), id: z.string() }).strict()).default([]),
  tags: z.array(z.string()).default([]),
});

/**
 * Checks the body of an invalidation; BAD_USER_INPUT with a `reason` for a malformed body
 * (MALFORMED), an empty or over-long batch (EMPTY_BATCH, BATCH_TOO_LARGE), an unknown type or tag
 * (UNKNOWN_TYPE, UNKNOWN_TAG) or an id that is no ObjectId (BAD_ID). Nothing is voided on any.
 */
export function parseInvalidation(body: unknown): InvalidationRequest {
  const parsed = bodySchema.strict().safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw bad(
      'MALFORMED',
      `The body must be {"entities": [{"type", "id"}], "tags": [string]}: ${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'malformed'}.`,
    );
  }
  const { entities, tags } = parsed.data;
  const items = entities.length + tags.length;
  if (items === 0) throw bad('EMPTY_BATCH', 'Name at least one entity or tag.');
  if (items > MAX_INVALIDATION_ITEMS)
    throw bad('BATCH_TOO_LARGE', `At most ${MAX_INVALIDATION_ITEMS} entities and tags at once, got ${items}.`);
  entities.forEach(({ type, id }, index) => {
    if (!(INVALIDATABLE_TYPES as readonly string[]).includes(type))
      throw bad('UNKNOWN_TYPE', `entities.${index}.type: ${JSON.stringify(type)} is not one of ${INVALIDATABLE_TYPES.join(', ')}.`);
    if (!OBJECT_ID.test(id)) throw bad('BAD_ID', `entities.${index}.id: ${JSON.stringify(id)} is not an ObjectId (24 hex digits).`);
  });
  tags.forEach((tag, index) => {
    if (!TAG_PATTERN.test(tag)) throw bad('UNKNOWN_TAG', `tags.${index}: ${JSON.stringify(tag)} is not catalog or catalog:<category>.`);
  });
  return {
    entities: entities.map((e) => ({ type: e.type as InvalidationRequest['entities'][number]['type'], id: e.id.toLowerCase() })),
    tags,
  };
}

function bad(reason: string, message: string): AppError {
  return new AppError(ErrorCode.BadUserInput, message, { reason });
}

/**
 * Voids every cached copy of what `request` names, for a write made outside the API: the
 * entities' documents (and with them every stored response that read them: the core voids those
 * by dependency), the tags of their field values (a product's reviews, a user's reviews and
 * orders), and the product lists of the catalog tags (`catalog`: the list of all products and of
 * every category in MongoDB now). Idempotent: a second call voids nothing more.
 */
export async function invalidateCaches(
  { cache, fieldCache }: { cache: Cache; fieldCache: TagInvalidator },
  request: InvalidationRequest,
): Promise<InvalidationReport> {
  const entities: Record<string, string[]> = {};
  for (const { type, id } of request.entities) (entities[type] ??= []).includes(id) || entities[type].push(id);
  const refs: TagRef[] = [];
  for (const [type, ids] of Object.entries(entities)) {
    const owned: readonly string[] = (KNOWN_TAGS as Record<string, readonly string[]>)[type] ?? [];
    for (const id of ids) for (const tag of owned) refs.push({ type, id, tag });
  }
  refs.push(...(await catalogRefs(request.tags)));
  await Promise.all([
    ...Object.entries(entities).map(([type, ids]) => cache.entity(type).invalidate(ids)),
    refs.length > 0 ? fieldCache.invalidate(refs) : undefined,
  ]);
  return { entities, tags: refs.map((r) => `${r.type}:${r.id}:${r.tag}`) };
}

/** The product lists' tags of `catalog` (every list: all products and each category now in MongoDB) and `catalog:<category>`. */
async function catalogRefs(tags: readonly string[]): Promise<TagRef[]> {
  if (tags.length === 0) return [];
  const categories = new Set<string | null>([null]);
  if (tags.includes('catalog'))
    for (const category of await ProductModel.distinct('category')) if (typeof category === 'string') categories.add(category);
  for (const tag of tags) if (tag.startsWith('catalog:')) categories.add(tag.slice('catalog:'.length));
  return [...categories].map((category) => ({ type: 'ProductList', id: productListId(category), tag: 'catalog' }));
}

/** The role of user `userId` (hex), or null when there is no such user. */
export async function roleOf(userId: string): Promise<string | null> {
  const user = await UserModel.findById(userId, { role: 1 }).lean();
  return user?.role ?? null;
}
