import { buildSchema } from 'graphql';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { defineField, FieldCache, type FieldLoader } from '../../src/field-cache.js';
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
  const fields = new FieldCache<Reviews>({
    core: t.core,
    keys,
    schema: buildSchema(SDL),
    definitions: [reviewCount, myRating],
    knownTags: { Product: ['reviews'] },
  });
  const db = new Reviews();
  return { t, fields, db, loader: (viewer) => fields.createLoader(db, async () => viewer) };
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
