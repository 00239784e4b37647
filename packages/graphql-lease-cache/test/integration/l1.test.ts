import { buildSchema } from 'graphql';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCache, type Cache } from '../../src/create-cache.js';
import { defineField, FieldCache } from '../../src/field-cache.js';
import { createKeyspace } from '../../src/keys.js';
import { L1Cache, type L1Gate } from '../../src/l1-cache.js';
import { InMemorySource } from '../../src/testing/index.js';
import type { CacheTrace } from '../../src/trace.js';
import { collect, createTestCore, type TestCore, type User } from '../helpers/cache.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { gate } from '../helpers/wait.js';

// The L1 (src/l1-cache.ts) wired into the read path and the response store, on a real Redis:
// a warm read it may serve costs no round trip; an invalidation here drops it; a fill that
// raced an invalidation is not held; with its gate closed it never serves.

const OPEN: L1Gate = { l1Servable: () => true };

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

let run = 0;
const closers: (() => void)[] = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

/** A cache as createCache wires it (responses on), with an L1 behind `l1Gate` (none: never servable). */
function cacheWith(l1Gate?: L1Gate, more: { responses?: boolean; writeBehindTypes?: string[]; fleet?: false } = {}): Cache {
  const client = redis.client.duplicate();
  const cache = createCache({
    redis: client,
    settings: { namespace: `l1-${(run += 1)}`, responses: more.responses ?? true },
    freezeLocalCopies: true,
    ...(more.writeBehindTypes ? { writeBehindTypes: more.writeBehindTypes } : {}),
    ...(l1Gate ? { l1Gate } : {}),
    ...(more.fleet === false ? { fleet: false as const } : {}),
  });
  closers.push(() => {
    cache.close();
    client.disconnect();
  });
  return cache;
}

/** The round trips made while `fn` runs. */
async function roundTrips(cache: Cache, fn: () => Promise<unknown>): Promise<number> {
  const trips = collect('store', cache.events);
  try {
    await fn();
    return trips.length;
  } finally {
    trips.stop();
  }
}

const ada = (version = 1, name = 'Ada'): User => ({ id: 'u1', name, version });

describe('an entity read with an open gate', () => {
  it('is served warm from L1 with no round trip, counted as a hit and an L1 hit', async () => {
    const cache = cacheWith(OPEN);
    const users = cache.entity<User>('User');
    const source = new InMemorySource<User>({ u1: ada() });
    expect(await roundTrips(cache, () => users.getMany(['u1'], source.load))).toBeGreaterThan(0);
    const trace: CacheTrace = {};
    const lookups = collect('lookup', cache.events);
    let read: (User | null)[] = [];
    expect(await roundTrips(cache, async () => (read = await users.getMany(['u1', 'u1'], source.load, trace)))).toBe(0);
    lookups.stop();
    expect(read).toEqual([ada(), ada()]);
    expect(trace.l1Hits).toBe(2);
    expect(lookups.map((e) => [e.name, e.hits, e.misses])).toEqual([['User', 2, 0]]);
    expect(source.loads).toBe(1);
    expect(cache.l1?.stats().hits).toBe(2);
  });

  it('is read from Redis again after a local invalidation, and held again after it', async () => {
    const cache = cacheWith(OPEN);
    const users = cache.entity<User>('User');
    const source = new InMemorySource<User>({ u1: ada() });
    await users.getMany(['u1'], source.load);
    source.put('u1', ada(2, 'Ada L.'));
    await users.invalidate(['u1']);
    expect(cache.l1?.size).toBe(0);
    expect(
      await roundTrips(cache, async () => expect(await users.getMany(['u1'], source.load)).toEqual([ada(2, 'Ada L.')])),
    ).toBeGreaterThan(0);
    expect(await roundTrips(cache, async () => expect(await users.getMany(['u1'], source.load)).toEqual([ada(2, 'Ada L.')]))).toBe(0);
  });

  it('is dropped from L1 by a write-behind field change of the entity, K#field', async () => {
    const cache = cacheWith(OPEN);
    const users = cache.entity<User>('User');
    const source = new InMemorySource<User>({ u1: ada() });
    await users.getMany(['u1'], source.load);
    await cache.core.invalidateResponses([cache.keys.fieldDependency(users.key('u1'), 'name')]);
    expect(await roundTrips(cache, () => users.getMany(['u1'], source.load))).toBeGreaterThan(0);
  });
});

describe('a read of a type written behind, with an open gate', () => {
  it('is dropped from L1 by a queued change, and then served from it with that change applied', async () => {
    const cache = cacheWith(OPEN, { responses: false, writeBehindTypes: ['Product'] });
    const products = cache.entity<{ id: string; version: number; views: number }>('Product');
    const source = new InMemorySource({ p1: { id: 'p1', version: 1, views: 10 } });
    const views = async (): Promise<unknown> => (await products.getMany(['p1'], source.load))[0]?.views;
    expect(await views()).toBe(10);
    expect(await roundTrips(cache, views)).toBe(0);
    await cache.writeBehind.enqueue('Product', 'p1', { inc: { views: 1 }, at: Date.now() });
    expect(await views()).toBe(11); // from Redis: the cached copy with the queued change
    let served: unknown;
    expect(await roundTrips(cache, async () => (served = await views()))).toBe(0);
    expect(served).toBe(11); // from L1: the same copy, its queued change applied again
    expect(source.loads).toBe(1);
  });
});

describe('a read whose expiry slides (touchTtlMs: sessions)', () => {
  it('is never served from L1: each read touches Redis', async () => {
    const cache = cacheWith(OPEN);
    const sessions = cache.values<{ user: string }>('session');
    const load = async () => ({ user: 'u1' });
    const read = () => sessions.get('s1', { load, versionOf: () => 1, ttlMs: () => 60_000, touchTtlMs: 60_000 });
    await read();
    expect(await roundTrips(cache, read)).toBe(1);
    expect(cache.l1?.size).toBe(0);
  });
});

describe('a field read with an open gate', () => {
  const SDL = /* GraphQL */ `
    directive @cached(dependsOn: [String!]! = []) on FIELD_DEFINITION
    directive @cacheControl(maxAge: Int) on FIELD_DEFINITION
    type Query {
      product(id: ID!): Product
    }
    type Product {
      id: ID!
      reviewCount: Int! @cached(dependsOn: ["reviews"]) @cacheControl(maxAge: 60)
    }
  `;
  const counts = new Map<string, number>();
  let computed = 0;
  const reviewCount = defineField<{ id: string }, Record<string, never>, number, null>({
    coordinate: 'Product.reviewCount',
    ownerType: 'Product',
    owner: (product) => ({ type: 'Product', id: product.id }),
    async load(items) {
      computed += 1;
      return items.map((item) => counts.get(item.parent.id) ?? 0);
    },
  });

  it('is served warm from L1 with no round trip, and recomputed after its tag is invalidated', async () => {
    const cache = cacheWith(OPEN);
    const fields = new FieldCache<null>({
      core: cache.core,
      keys: cache.keys,
      schema: buildSchema(SDL),
      definitions: [reviewCount],
      knownTags: { Product: ['reviews'] },
    });
    counts.set('p1', 2);
    const trace: CacheTrace = {};
    const read = () => fields.createLoader(null, async () => undefined, trace).load(reviewCount, { id: 'p1' }, {});
    expect(await read()).toBe(2);
    const before = computed;
    expect(await roundTrips(cache, async () => expect(await read()).toBe(2))).toBe(0);
    expect(trace.l1Hits).toBe(1);
    counts.set('p1', 3);
    await fields.invalidate([{ type: 'Product', id: 'p1', tag: 'reviews' }]);
    expect(await read()).toBe(3);
    expect(computed).toBe(before + 1);
  });
});

describe('a response lookup with an open gate', () => {
  it('is a hit from L1 with no round trip once stored or read from Redis, until a dependency is invalidated', async () => {
    const cache = cacheWith(OPEN);
    // Registering in the fleet empties the L1 (and refuses what began before): the lookups begin after.
    await cache.fleet?.ready;
    const responses = cache.core.responses;
    if (!responses) throw new Error('the cache has no response store');
    const dependency = cache.keys.entity('User', 'u1');
    const found = await responses.lookup('q1');
    if (found.kind !== 'miss') throw new Error('expected a miss');
    expect(await responses.store(found.ticket, [dependency], '{"data":1}', 60_000)).toBe(true);
    let hit: unknown;
    expect(await roundTrips(cache, async () => (hit = await responses.lookup('q1')))).toBe(0);
    expect(hit).toEqual({ kind: 'hit', body: Buffer.from('{"data":1}'), l1: true });
    // Read from Redis (this L1 flushed): held again, with its buckets.
    cache.l1?.flush('test');
    expect(await responses.lookup('q1')).toMatchObject({ kind: 'hit', l1: false });
    expect(await responses.lookup('q1')).toMatchObject({ kind: 'hit', l1: true });
    await cache.core.invalidate([dependency]);
    expect(await roundTrips(cache, async () => expect((await responses.lookup('q1')).kind).toBe('miss'))).toBe(1);
  });

  it('does not hold a response whose computation overlapped an invalidation of what it read', async () => {
    const cache = cacheWith(OPEN);
    const responses = cache.core.responses;
    if (!responses) throw new Error('the cache has no response store');
    const found = await responses.lookup('q2');
    if (found.kind !== 'miss') throw new Error('expected a miss');
    // An invalidation this process's L1 saw and Redis did not (a broadcast ahead of its call).
    cache.l1?.invalidate([cache.keys.entity('User', 'u1')]);
    expect(await responses.store(found.ticket, [cache.keys.entity('User', 'u1')], '{"data":1}', 60_000)).toBe(true);
    expect(cache.l1?.size).toBe(0);
  });
});

describe('a fill that raced an invalidation', () => {
  let t: TestCore;
  let l1: L1Cache;
  const setUp = async (): Promise<void> => {
    l1 = new L1Cache({ maxBytes: 1_000_000, gate: OPEN });
    t = await createTestCore({ redisUrl: redis.url, keys: createKeyspace({ namespace: `l1race${(run += 1)}`, version: 1 }), core: { l1 } });
    closers.push(() => t.close());
  };

  it('is not held when the invalidation came between the get-or-lease and its reply (a Redis hit)', async () => {
    await setUp();
    const source = new InMemorySource<User>({ u1: ada() });
    await t.users.getMany(['u1'], source.load);
    l1.flush('test'); // held in Redis only
    t.store.pause('getOrLease');
    const reading = t.users.getMany(['u1'], source.load);
    await t.store.whenHeld('getOrLease');
    l1.invalidate([t.users.key('u1')]);
    t.store.resume();
    expect(await reading).toEqual([ada()]); // Redis's answer, served to this read
    expect(l1.size).toBe(0); // but not held: it may be older than the invalidation
    const asked = t.store.calls.getOrLease;
    await t.users.getMany(['u1'], source.load);
    expect(t.store.calls.getOrLease).toBe(asked + 1);
  });

  it('is not held when the invalidation came while the leased load ran', async () => {
    await setUp();
    const source = new InMemorySource<User>({ u1: ada() });
    const held = gate();
    source.onLoad = () => held.pass();
    const reading = t.users.getMany(['u1'], source.load);
    await held.reached;
    l1.invalidate([t.users.key('u1')]);
    held.open();
    expect(await reading).toEqual([ada()]);
    expect(l1.size).toBe(0);
  });
});

describe('an L1 whose gate is closed (no fleet protocol)', () => {
  it('never serves: every warm read asks Redis', async () => {
    const cache = cacheWith(undefined, { fleet: false });
    const users = cache.entity<User>('User');
    const source = new InMemorySource<User>({ u1: ada() });
    await users.getMany(['u1'], source.load);
    expect(await roundTrips(cache, () => users.getMany(['u1'], source.load))).toBe(1);
    expect(cache.l1?.size).toBe(0);
    const responses = cache.core.responses;
    const found = await responses?.lookup('q3');
    if (found?.kind !== 'miss') throw new Error('expected a miss');
    await responses?.store(found.ticket, [], '{"data":1}', 60_000);
    expect(await responses?.lookup('q3')).toMatchObject({ kind: 'hit', l1: false });
    expect(cache.l1?.stats().hits).toBe(0);
  });
});
