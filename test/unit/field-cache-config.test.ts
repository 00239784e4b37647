import { makeExecutableSchema } from '@graphql-tools/schema';
import { describe, expect, it } from 'vitest';

import { FieldCache, FieldCacheConfigError, createCache, defineField, hashArgs } from 'graphql-lease-cache';
import { cachedFields } from '../../src/caching/fields.js';
import { KNOWN_TAGS } from '../../src/caching/tags.js';
import { createLogger } from '../../src/logger.js';
import { buildSchema, loadTypeDefs } from '../../src/schema.js';

// No Redis: the field cache's configuration is checked all the same.
const { core, keys } = createCache({ redis: null, logger: createLogger({ level: 'silent' }) });

function schemaWith(patch: (sdl: string) => string) {
  return makeExecutableSchema({ typeDefs: loadTypeDefs().map(patch) });
}

describe('field cache declarations are checked at start-up', () => {
  it('accepts the project schema and its loaders', () => {
    const cache = new FieldCache({ core, keys, schema: buildSchema(), definitions: cachedFields, knownTags: KNOWN_TAGS });
    expect([...cache.policies.keys()].sort()).toEqual(
      ['Product.reviews', 'Query.products', 'User.orders', 'User.reviewCount', 'User.reviews'].sort(),
    );
    expect(cache.policies.get('User.orders')).toMatchObject({ scope: 'PRIVATE', ttlMs: 60_000, dependsOn: ['orders'] });
    expect(cache.policies.get('Product.reviews')).toMatchObject({ scope: 'PUBLIC', ttlMs: 300_000 });
  });

  it('fails on a tag that nothing invalidates', () => {
    const schema = schemaWith((sdl) =>
      sdl.replace(
        'reviewCount: Int! @cacheControl(maxAge: 300) @cached(dependsOn: ["reviews"])',
        'reviewCount: Int! @cacheControl(maxAge: 300) @cached(dependsOn: ["ratings"])',
      ),
    );
    expect(() => new FieldCache({ core, keys, schema, definitions: cachedFields, knownTags: KNOWN_TAGS })).toThrow(FieldCacheConfigError);
    expect(() => new FieldCache({ core, keys, schema, definitions: cachedFields, knownTags: KNOWN_TAGS })).toThrow(
      /@cached\(dependsOn: \["ratings"\]\) on User.reviewCount: User has no tag "ratings" \(known: /,
    );
  });

  it('fails on a loader for a field that does not exist (or is not @cached)', () => {
    const ghost = defineField({
      coordinate: 'Product.popularity',
      ownerType: 'Product',
      owner: () => ({ type: 'Product', id: 'x' }),
      load: async () => [],
    });
    expect(
      () => new FieldCache({ core, keys, schema: buildSchema(), definitions: [...cachedFields, ghost], knownTags: KNOWN_TAGS }),
    ).toThrow(/a field loader is registered for Product.popularity, but the schema has no @cached field Product.popularity/);
  });

  it('fails on a @cached field without a loader, or without a maxAge', () => {
    const withoutLoader = () =>
      new FieldCache({
        core,
        keys,
        schema: buildSchema(),
        definitions: cachedFields.filter((d) => d.coordinate !== 'User.reviewCount'),
        knownTags: KNOWN_TAGS,
      });
    expect(withoutLoader).toThrow(/@cached field User.reviewCount has no field loader/);
    // Query has no type-level hint to fall back on
    const schema = schemaWith((sdl) => sdl.replace('ProductConnection!\n    @cacheControl(maxAge: 60)\n', 'ProductConnection!\n'));
    expect(() => new FieldCache({ core, keys, schema, definitions: cachedFields, knownTags: KNOWN_TAGS })).toThrow(
      /Query.products needs a @cacheControl\(maxAge:\)/,
    );
  });

  it('hashes arguments stably, whatever their key order', () => {
    expect(hashArgs({ a: 1, b: { c: 2, d: [1, 2] } })).toBe(hashArgs({ b: { d: [1, 2], c: 2 }, a: 1 }));
    expect(hashArgs({ first: 3 })).not.toBe(hashArgs({ first: 4 }));
    expect(hashArgs({ first: 3 })).toMatch(/^[\w-]{16}$/);
  });
});
