import { buildSchema } from 'graphql';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { defineField, FieldCache, type FieldCacheOptions, type FieldLoader } from '../../src/field-cache.js';
import { createKeyspace } from '../../src/keys.js';
import { collect, createTestCore, type TestCore } from '../helpers/cache.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { gate, type Gate } from '../helpers/wait.js';

// FieldCache (src/field-cache.ts) on a real Redis: a value computed from the owner's tagged data
// is dropped by a tag invalidation that raced its computation, and PRIVATE values are the
// viewer's own.

const SDL = /* GraphQL */ `
  directive @cached(dependsOn: [String!]! = []) on FIELD_DEFINITION
  enum CacheControlScope {
    PUBLIC
    PRIVATE
  }
  directive @cacheControl(maxAge: Int, scope: CacheControlScope, inheritMaxAge: Boolean) on FIELD_DEFINITION | OBJECT | INTERFACE | UNION
  type Query {
    product(id: ID!): Product
  }
  type Product {
    id: ID!
    reviewCount: Int! @cached(dependsOn: ["reviews"]) @cacheControl(maxAge: 60)
    myRating: Int @cached @cacheControl(maxAge: 60, scope: PRIVATE)
  }
`;

interface Product {
  id: string;
}

/** The "database" the fields are computed from, with counters and a gate for the computation. */
class Reviews {
  /** Product id -> the ratings of its reviews. */
  readonly ratings = new Map<string, number[]>();
  /** `<product>:<viewer>` -> that viewer's rating. */
  readonly byViewer = new Map<string, number>();
  computed = { reviewCount: 0, myRating: 0 };
  /** Awaited by a reviewCount computation after it counted (it returns that count). */
  held: Gate | undefined;
}

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

let run = 0;
const opened: TestCore[] = [];
afterEach(() => {
  for (const core of opened.splice(0)) core.close();
});

async function setup(): Promise<{ t: TestCore; fields: FieldCache<Reviews>; db: Reviews; loader(viewer?: string): FieldLoader }> {
  const keys = createKeyspace({ namespace: `fields${(run += 1)}`, version: 1 });
  const t = await createTestCore({ redisUrl: redis.url, keys });
  opened.push(t);
  const fields = fieldCacheOn(t, { sdl: SDL, definitions: [reviewCount, myRating] });
  const db = new Reviews();
  return { t, fields, db, loader: (viewer) => fields.createLoader(db, async () => viewer) };
}

/** A field cache on `t`'s core and keyspace, as a build with this SDL and these definitions makes it. */
function fieldCacheOn(t: TestCore, build: { sdl: string; definitions: FieldCacheOptions<Reviews>['definitions'] }): FieldCache<Reviews> {
  return new FieldCache<Reviews>({
    core: t.core,
    keys: t.keys,
    schema: buildSchema(build.sdl),
    definitions: build.definitions,
    knownTags: { Product: ['reviews'] },
  });
}

const reviewCount = defineField<Product, Record<string, never>, number, Reviews>({
  coordinate: 'Product.reviewCount',
  ownerType: 'Product',
  owner: (product) => ({ type: 'Product', id: product.id }),
  async load(items, db) {
    db.computed.reviewCount += 1;
    const counts = items.map((item) => db.ratings.get(item.parent.id)?.length ?? 0);
    const held = db.held;
    db.held = undefined;
    await held?.pass();
    return counts;
  },
});

const myRating = defineField<Product, Record<string, never>, number | null, Reviews>({
  coordinate: 'Product.myRating',
  ownerType: 'Product',
  owner: (product) => ({ type: 'Product', id: product.id }),
  async load(items, db) {
    db.computed.myRating += 1;
    return items.map((item) => db.byViewer.get(`${item.parent.id}:${item.viewerId}`) ?? null);
  },
});

const p1: Product = { id: 'p1' };

describe('a tagged field value', () => {
  it('is dropped by a tag invalidation that raced its computation: the next request computes it again', async () => {
    const { t, fields, db, loader } = await setup();
    db.ratings.set('p1', [5]);
    db.held = gate();
    const held = db.held;
    const fills = collect('fill', t.events);
    const first = loader().load(reviewCount, p1, {});
    await held.reached; // counted 1 review; not yet stored
    db.ratings.set('p1', [5, 3]);
    await fields.invalidate([{ type: 'Product', id: 'p1', tag: 'reviews' }]);
    held.open();
    expect(await first).toBe(1); // what it read before the write
    expect(fills.map((e) => e.outcome)).toEqual(['lost']);
    expect(await loader().load(reviewCount, p1, {})).toBe(2);
    expect(await loader().load(reviewCount, p1, {})).toBe(2);
    fills.stop();
    expect(db.computed.reviewCount).toBe(2); // the third request hit the second's value
  });

  it('is dropped by a tag invalidation after it was stored', async () => {
    const { fields, db, loader } = await setup();
    db.ratings.set('p1', [5]);
    expect(await loader().load(reviewCount, p1, {})).toBe(1);
    expect(await loader().load(reviewCount, p1, {})).toBe(1);
    db.ratings.set('p1', [5, 4, 3]);
    await fields.invalidate([{ type: 'Product', id: 'p1', tag: 'reviews' }]);
    expect(await loader().load(reviewCount, p1, {})).toBe(3);
    expect(db.computed.reviewCount).toBe(2);
  });
});

describe('a PRIVATE field value', () => {
  it('is kept per viewer: each viewer is served their own, from the cache on a repeat', async () => {
    const { db, loader } = await setup();
    db.byViewer.set('p1:ada', 5);
    db.byViewer.set('p1:bob', 2);
    expect(await loader('ada').load(myRating, p1, {})).toBe(5);
    expect(await loader('bob').load(myRating, p1, {})).toBe(2);
    expect(await loader(undefined).load(myRating, p1, {})).toBeNull();
    expect(db.computed.myRating).toBe(3);
    db.byViewer.set('p1:ada', 1); // not invalidated: the cached values stay as they were
    expect(await loader('bob').load(myRating, p1, {})).toBe(2);
    expect(await loader('ada').load(myRating, p1, {})).toBe(5);
    expect(await loader(undefined).load(myRating, p1, {})).toBeNull();
    expect(db.computed.myRating).toBe(3);
  });
});

describe('a field value cached by an older deploy', () => {
  /** p1's reviewCount as `fields` serves it, through a new request's loader. */
  async function served(fields: FieldCache<Reviews>, db: Reviews): Promise<number> {
    return (await fields.createLoader(db, async () => undefined).load(reviewCount, p1, {})) as number;
  }

  it('is not served after the SDL of its field changes (a return type, a new argument default) or its version is bumped; the same build serves it again', async () => {
    const { t, db } = await setup();
    db.ratings.set('p1', [5]);
    const before = fieldCacheOn(t, { sdl: SDL, definitions: [reviewCount, myRating] });
    expect(await served(before, db)).toBe(1);
    expect(db.computed.reviewCount).toBe(1);
    // The data changes without an invalidation: a value computed again shows it, a cached one does not.
    db.ratings.set('p1', [5, 4]);

    const returnType = SDL.replace('reviewCount: Int! @cached', 'reviewCount: Float! @cached');
    const newArgument = SDL.replace('reviewCount: Int! @cached', 'reviewCount(minRating: Int = 1): Int! @cached');
    const newDefault = newArgument.replace('minRating: Int = 1', 'minRating: Int = 2');
    const bumped = { ...reviewCount, version: 2 };
    const deploys: [string, FieldCache<Reviews>][] = [
      ['a changed return type', fieldCacheOn(t, { sdl: returnType, definitions: [reviewCount, myRating] })],
      ['a new argument', fieldCacheOn(t, { sdl: newArgument, definitions: [reviewCount, myRating] })],
      ['a changed argument default', fieldCacheOn(t, { sdl: newDefault, definitions: [reviewCount, myRating] })],
      ['a bumped version', fieldCacheOn(t, { sdl: SDL, definitions: [bumped, myRating] })],
    ];
    const hashes = new Set([before, ...deploys.map(([, fields]) => fields)].map((f) => f.definitionHashes.get('Product.reviewCount')));
    expect(hashes.size).toBe(5);
    for (const [what, after] of deploys) {
      const computed = db.computed.reviewCount;
      expect(await served(after, db), what).toBe(2);
      expect(db.computed.reviewCount, what).toBe(computed + 1);
    }

    // A restart of the first build (same SDL, same version, a description added) keeps its value.
    const documented = SDL.replace('reviewCount: Int! @cached', '"How many reviews." reviewCount: Int! @cached');
    const computed = db.computed.reviewCount;
    for (const restarted of [
      fieldCacheOn(t, { sdl: SDL, definitions: [reviewCount, myRating] }),
      fieldCacheOn(t, { sdl: documented, definitions: [{ ...reviewCount, version: 1 }, myRating] }),
    ]) {
      expect(await served(restarted, db)).toBe(1);
    }
    expect(db.computed.reviewCount).toBe(computed);
    // The other field's hash is not moved by a change to this one.
    expect(deploys.map(([, f]) => f.definitionHashes.get('Product.myRating'))).toEqual(
      deploys.map(() => before.definitionHashes.get('Product.myRating')),
    );
  });

  it('keys stay bounded and key-safe, and a version that is not a positive integer fails at start-up', async () => {
    const { t } = await setup();
    const fields = fieldCacheOn(t, { sdl: SDL, definitions: [reviewCount, myRating] });
    for (const hash of fields.definitionHashes.values()) expect(hash).toMatch(/^[A-Za-z0-9_-]{8}$/);
    for (const version of [0, 1.5]) {
      expect(() => fieldCacheOn(t, { sdl: SDL, definitions: [{ ...reviewCount, version }, myRating] })).toThrow(
        /the field loader of Product.reviewCount has version .*: a version is a positive integer/,
      );
    }
  });
});
