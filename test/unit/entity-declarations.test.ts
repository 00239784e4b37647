import { makeExecutableSchema } from '@graphql-tools/schema';
import { describe, expect, it } from 'vitest';

import { checkEntityDeclarations, EntityConfigError, readEntityDeclarations } from '../../src/caching/entity-declarations.js';
import { ENTITY_POLICIES } from '../../src/caching/policies.js';
import { ENTITY_MODELS } from '../../src/models/index.js';
import { buildSchema, loadTypeDefs } from '../../src/schema.js';

const PRODUCT_ENTITY =
  '@entity(writePolicy: REFRESH, writeBehind: { set: ["name", "description", "priceCents"], inc: ["viewCount"], synchronous: INVALIDATE })';
const USER_ENTITY = '@entity(writePolicy: REFRESH, writeBehind: { set: ["name", "email"], synchronous: REFRESH })';

/** The project's SDL with `from` replaced by `to` (which must be found: a test of nothing passes). */
function schemaWith(from: string, to: string) {
  const typeDefs = loadTypeDefs();
  expect(typeDefs.some((sdl) => sdl.includes(from))).toBe(true);
  return makeExecutableSchema({ typeDefs: typeDefs.map((sdl) => sdl.replace(from, to)) });
}

const check =
  (schema = buildSchema(), generated: Parameters<typeof checkEntityDeclarations>[0]['generated'] = ENTITY_POLICIES) =>
  () =>
    checkEntityDeclarations({ schema, models: ENTITY_MODELS, generated });

describe('@entity declarations are checked at start-up, both ways', () => {
  it('accepts the project schema, its models and the generated constant', () => {
    expect(check()).not.toThrow();
    expect(Object.fromEntries(readEntityDeclarations(buildSchema()))).toEqual({
      Product: {
        default: 'refresh',
        writeBehind: { set: ['name', 'description', 'priceCents'], inc: ['viewCount'], synchronous: 'invalidate' },
      },
      User: { default: 'refresh', writeBehind: { set: ['name', 'email'], inc: [], synchronous: 'refresh' } },
    });
  });

  it('fails on an @entity type the code has no model of', () => {
    const schema = schemaWith('type Order @cacheControl', `type Order ${USER_ENTITY.replace('"email"', '"status"')} @cacheControl`);
    expect(check(schema)).toThrow(EntityConfigError);
    expect(check(schema)).toThrow(/@entity on Order: the code has no entity model Order \(entity models: Product, User\)/);
  });

  it('fails on a write-behind field or counter that the documents do not have', () => {
    const field = schemaWith(USER_ENTITY, USER_ENTITY.replace('"email"', '"nickname"'));
    expect(check(field)).toThrow(/@entity on User: writeBehind.set names "nickname", which User documents do not have/);
    const counter = schemaWith(PRODUCT_ENTITY, PRODUCT_ENTITY.replace('inc: ["viewCount"]', 'inc: ["category", "likes"]'));
    expect(check(counter)).toThrow(/writeBehind.inc names "category", which Product documents have as a String, not a number/);
    expect(check(counter)).toThrow(/writeBehind.inc names "likes", which Product documents do not have/);
  });

  it('fails on an entity model without a declaration', () => {
    const schema = schemaWith(PRODUCT_ENTITY, '');
    expect(check(schema)).toThrow(/entity model Product has no @entity declaration in schema\/\*\.graphql/);
  });

  it('fails when the generated constant is not what the schema declares (codegen not run)', () => {
    const schema = schemaWith(USER_ENTITY, USER_ENTITY.replace('writePolicy: REFRESH', 'writePolicy: WRITE_BEHIND'));
    expect(check(schema)).toThrow(/src\/generated\/entities.ts does not match the schema's @entity declarations: run `npm run codegen`/);
    expect(check(buildSchema(), { User: ENTITY_POLICIES.User })).toThrow(/does not match/);
  });

  it('fails on a policy that is not one of the enum', () => {
    const schema = schemaWith(USER_ENTITY, USER_ENTITY.replace('writePolicy: REFRESH', 'writePolicy: WRITE_AROUND'));
    expect(check(schema)).toThrow(/@entity on User: Argument "writePolicy" has invalid value WRITE_AROUND/);
  });
});
