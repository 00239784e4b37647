import { getDirective } from '@graphql-tools/utils';
import { TypeInfo, getNamedType, isCompositeType, visit, visitWithTypeInfo, type DocumentNode, type GraphQLSchema } from 'graphql';
import type { CachePolicy } from './stored.js';

interface Hint {
  maxAge?: number;
  scope?: 'PUBLIC' | 'PRIVATE';
  inheritMaxAge?: boolean;
}

/**
 * The cache policy of `document` from the schema's `@cacheControl(maxAge, scope, inheritMaxAge)`
 * hints, by Apollo's static rules: a root field, or a field returning an object, interface or
 * union, takes its own hint's maxAge, else its type's, else `defaultMaxAgeSeconds`; a scalar
 * field (not on a root type) or one with `inheritMaxAge` restricts nothing; any PRIVATE hint
 * makes the response PRIVATE. The policy is the smallest maxAge found. Hints set at run time
 * (Apollo's `info.cacheControl`) are not seen. Null when not cacheable (maxAge 0).
 */
export function cacheControlPolicy(schema: GraphQLSchema, document: DocumentNode, defaultMaxAgeSeconds = 0): CachePolicy | null {
  let maxAge = Number.POSITIVE_INFINITY;
  let scope: 'PUBLIC' | 'PRIVATE' = 'PUBLIC';
  const roots = new Set<unknown>([schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()]);
  const typeInfo = new TypeInfo(schema);
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      Field() {
        const field = typeInfo.getFieldDef();
        const parent = typeInfo.getParentType();
        if (!field || !parent) return;
        const type = getNamedType(field.type);
        const fieldHint = hintOf(schema, field);
        const typeHint = isCompositeType(type) ? hintOf(schema, type) : undefined;
        if (fieldHint?.scope === 'PRIVATE' || typeHint?.scope === 'PRIVATE') scope = 'PRIVATE';
        if (fieldHint?.inheritMaxAge) return;
        if (fieldHint?.maxAge !== undefined) maxAge = Math.min(maxAge, fieldHint.maxAge);
        else if (isCompositeType(type) || roots.has(parent)) maxAge = Math.min(maxAge, typeHint?.maxAge ?? defaultMaxAgeSeconds);
      },
    }),
  );
  if (!Number.isFinite(maxAge) || maxAge <= 0) return null;
  return { maxAge, scope };
}

/** The `@cacheControl` hint on a field or type, if any. */
function hintOf(schema: GraphQLSchema, node: Parameters<typeof getDirective>[1]): Hint | undefined {
  return getDirective(schema, node, 'cacheControl')?.[0] as Hint | undefined;
}
