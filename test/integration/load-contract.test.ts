import DataLoader from 'dataloader';
import { Types } from 'mongoose';
import { describe, expect, it } from 'vitest';
import { FieldCache, defineField, hashArgs } from 'graphql-lease-cache';
import { cachedFields, fields } from '../../src/caching/fields.js';
import { KNOWN_TAGS } from '../../src/caching/tags.js';
import { findByIds } from '../../src/loaders/batch.js';
import type { Loaders } from '../../src/loaders/index.js';
import { countReviews } from '../../src/loaders/review-stats.js';
import { UserModel } from '../../src/models/index.js';
import type { UserDoc } from '../../src/models/user.model.js';
import { buildSchema } from '../../src/schema.js';
import { usePrivateRedisApp } from '../helpers/private-redis-app.js';
import { until } from '../helpers/wait.js';

// DataLoader's contract, held by the cache: a load (batch) function returns one value per key,
// in order. One that returns fewer or more fails the batch loudly, and nothing of that batch
// reaches Redis: above all no "no such document" for a position it left out.

const LEASE_TTL_MS = 200;

// A short lease: a failed load leaves its leases to expire (as when a load throws), and the
// correct load that follows should not wait three seconds to fill.
const { redis, t } = usePrivateRedisApp({
  env: { WRITE_BEHIND_WORKER: 'false', CACHE_RESPONSES: 'false', CACHE_LEASE_TTL_MS: String(LEASE_TTL_MS) },
  seed: { users: 12, products: 6, reviews: 40, orders: 0 },
});

const userId = (n: number) => `5eed0000${n.toString(16).padStart(16, '0')}`;

/** The Redis keys of a batch, with what each holds now: nothing at all, or a lease that expires on its own. */
async function expectNothingCached(keys: readonly string[]): Promise<void> {
  for (const key of keys) {
    // Neither a value nor a negative ("absent") entry: the key itself does not exist.
    expect(await redis.client.exists(key), key).toBe(0);
    const leaseTtl = await redis.client.pttl(t.app.cache.keys.lease(key));
    // -2: no lease; else one that expires within the lease TTL.
    if (leaseTtl !== -2) {
      expect(leaseTtl).toBeGreaterThan(0);
      expect(leaseTtl).toBeLessThanOrEqual(LEASE_TTL_MS);
    }
  }
}

/** Waits until the leases a failed load left have expired. */
async function leasesGone(keys: readonly string[]): Promise<void> {
  await until(async () => (await redis.client.exists(...keys.map((key) => t.app.cache.keys.lease(key)))) === 0, {
    what: 'the leases of the failed load to expire',
    timeoutMs: 5 * LEASE_TTL_MS,
    intervalMs: 20,
  });
}

const loadUsers = (ids: readonly string[]) => findByIds(UserModel, ids);
const notCalled = async (): Promise<never> => {
  throw new Error('the load function was called for values that should be cached');
};

describe('entity cache: a load that returns the wrong number of values', () => {
  const cases = [
    {
      what: 'fewer values than keys',
      ids: [userId(1), userId(2), userId(3)],
      // The last position left out: it used to read as "no such user" and be cached as such.
      load: async (ids: readonly string[]) => (await loadUsers(ids)).slice(0, -1),
      message: /the load function of User returned 2 values for 3 keys/,
    },
    {
      what: 'more values than keys',
      ids: [userId(4), userId(5), userId(6)],
      // One value too many, in front: every position shifted, each id given another user.
      load: async (ids: readonly string[]) => [...(await loadUsers([userId(7)])), ...(await loadUsers(ids))],
      message: /the load function of User returned 4 values for 3 keys/,
    },
  ];

  for (const { what, ids, load, message } of cases) {
    it(`${what}: every key rejects with the counts, nothing is cached, and a correct load then fills them`, async () => {
      const users = t.app.cache.entity<UserDoc>('User');
      const keys = ids.map((id) => t.app.cache.keys.entity('User', id));
      await expectNothingCached(keys);

      // As the request loaders call it (a DataLoader over getMany), and a second reader of the
      // same keys at the same time (which joins the first one's load): every key rejects.
      const loader = new DataLoader<string, UserDoc | null>((batch) => users.getMany(batch, load));
      const [viaLoader, concurrent] = await Promise.all([
        Promise.allSettled(ids.map((id) => loader.load(id))),
        Promise.allSettled([users.getMany(ids, load)]),
      ]);
      for (const outcome of [...viaLoader, ...concurrent]) {
        expect(outcome.status).toBe('rejected');
        expect(String((outcome as PromiseRejectedResult).reason)).toMatch(message);
      }
      await expect(users.getMany(ids, load)).rejects.toThrow(TypeError);
      await expectNothingCached(keys);

      // The same keys, loaded correctly: every user, cached, and read from Redis afterwards.
      await leasesGone(keys);
      const loaded = await users.getMany(ids, loadUsers);
      expect(loaded.map((doc) => doc?._id.toHexString())).toEqual(ids);
      for (const key of keys) expect(await redis.client.exists(key), key).toBe(1);
      const cached = await users.getMany(ids, notCalled);
      expect(cached.map((doc) => doc?._id.toHexString())).toEqual(ids);
    });
  }

  it('a correct load still caches an id that has no document as absent', async () => {
    const missing = 'cccccccccccccccccccccccc';
    const ids = [userId(8), missing];
    const users = t.app.cache.entity<UserDoc>('User');
    expect((await users.getMany(ids, loadUsers)).map((doc) => doc?._id.toHexString() ?? null)).toEqual([userId(8), null]);
    expect(await redis.client.exists(t.app.cache.keys.entity('User', missing))).toBe(1);
    expect((await users.getMany(ids, notCalled)).map((doc) => doc?._id.toHexString() ?? null)).toEqual([userId(8), null]);
  });
});

describe('field cache: a batched field load that returns the wrong number of values', () => {
  /** The project's field cache over the app's core, with User.reviewCount computed by `load`. */
  function fieldCacheWith(load: (userIds: string[]) => Promise<number[]>) {
    const reviewCount = defineField<{ _id: Types.ObjectId }, unknown, number, Loaders>({
      coordinate: 'User.reviewCount',
      ownerType: 'User',
      owner: (parent) => ({ type: 'User', id: parent._id.toHexString() }),
      load: (items) => load(items.map((item) => item.parent._id.toHexString())),
    });
    return new FieldCache<Loaders>({
      core: t.app.cache.core,
      keys: t.app.cache.keys,
      schema: buildSchema(),
      definitions: [...cachedFields.filter((d) => d.coordinate !== 'User.reviewCount'), reviewCount],
      knownTags: KNOWN_TAGS,
    });
  }

  /** User.reviewCount of each user through a fresh per-request loader (one batch). */
  function reviewCounts(cache: FieldCache<Loaders>, ids: readonly string[]) {
    const loader = cache.createLoader({} as Loaders, async () => undefined);
    return Promise.allSettled(ids.map((id) => loader.load(fields.userReviewCount, { _id: new Types.ObjectId(id) } as UserDoc, {})));
  }

  const counts = async (ids: readonly string[]) => (await countReviews('author', ids)).map((s) => s.count);
  const cases = [
    {
      what: 'fewer values than items',
      ids: [userId(9), userId(10), userId(11)],
      load: async (ids: string[]) => (await counts(ids)).slice(0, -1),
      message: /the field loader of User\.reviewCount returned 2 values for 3 items/,
    },
    {
      what: 'more values than items',
      ids: [userId(1), userId(2), userId(3)],
      load: async (ids: string[]) => [0, ...(await counts(ids))],
      message: /the field loader of User\.reviewCount returned 4 values for 3 items/,
    },
  ];

  for (const { what, ids, load, message } of cases) {
    it(`${what}: every item rejects with the counts, nothing is cached, and a correct load then fills them`, async () => {
      const definition = fieldCacheWith(notCalled).definitionHashes.get('User.reviewCount') ?? '';
      const keys = ids.map((id) => t.app.cache.keys.field('User', id, 'reviewCount', definition, hashArgs({})));
      await expectNothingCached(keys);

      const failed = await reviewCounts(fieldCacheWith(load), ids);
      for (const outcome of failed) {
        expect(outcome.status).toBe('rejected');
        expect(String((outcome as PromiseRejectedResult).reason)).toMatch(message);
      }
      await expectNothingCached(keys);

      await leasesGone(keys);
      const truth = await counts(ids);
      expect(truth.some((n) => n > 0)).toBe(true); // a value that a wrong position would not give by chance
      const loaded = await reviewCounts(fieldCacheWith(counts), ids);
      expect(loaded).toEqual(truth.map((value) => ({ status: 'fulfilled', value })));
      for (const key of keys) expect(await redis.client.exists(key), key).toBe(1);
      const cached = await reviewCounts(fieldCacheWith(notCalled), ids);
      expect(cached).toEqual(truth.map((value) => ({ status: 'fulfilled', value })));
    });
  }
});
