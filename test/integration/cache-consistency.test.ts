import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ABSENT } from 'graphql-lease-cache';
import { findByIds } from '../../src/loaders/batch.js';
import { ProductModel, ReviewModel, UserModel } from '../../src/models/index.js';
import type { UserDoc } from '../../src/models/user.model.js';
import { storedValue } from '../helpers/stored.js';
import { ADMIN, USER_PASSWORD, startTestApp, type TestApp } from '../helpers/test-app.js';
import { gate } from '../helpers/wait.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.stop());

/** What Redis holds for a user (decoded), or null. */
async function cachedUser(id: string): Promise<UserDoc | null> {
  const stored = await storedValue<UserDoc>(t.app.redis, t.app.cache.keys.entity('User', id));
  if (stored?.value === ABSENT) throw new Error(`user ${id} is cached as absent`);
  return stored?.value ?? null;
}

const users = () => t.app.cache.entity<UserDoc>('User');

describe('the stale-set race, forced', () => {
  it('a reader paused between its MongoDB read and its fill cannot store what a writer replaced (invalidate)', async () => {
    const id = '5eed00000000000000000002';
    await users().invalidate([id]);
    const paused = gate();
    const reader = users().getMany([id], async (ids) => {
      const docs = await findByIds(UserModel, ids); // the old document
      await paused.pass(); // paused before its fill
      return docs;
    });
    await paused.reached;
    // The writer commits and invalidates while the reader is paused.
    const updated = await UserModel.findOneAndUpdate(
      { _id: id },
      { $set: { name: 'After invalidate' } },
      { returnDocument: 'after' },
    ).lean<UserDoc>();
    await users().invalidate([id]);
    paused.open();
    const [stale] = await reader;
    expect(stale?.name).not.toBe('After invalidate'); // the reader itself read before the write
    expect(await cachedUser(id)).toBeNull(); // ...but could not store it
    const [fresh] = await users().getMany([id], (ids) => findByIds(UserModel, ids));
    expect(fresh?.version).toBe(updated?.version);
    expect((await cachedUser(id))?.name).toBe('After invalidate');
  });

  it('the same with a refreshing writer: the cache ends with the new version', async () => {
    const id = '5eed00000000000000000003';
    await users().invalidate([id]);
    const paused = gate();
    const reader = users().getMany([id], async (ids) => {
      const docs = await findByIds(UserModel, ids);
      await paused.pass();
      return docs;
    });
    await paused.reached;
    const updated = await UserModel.findOneAndUpdate(
      { _id: id },
      { $set: { name: 'After refresh' } },
      { returnDocument: 'after' },
    ).lean<UserDoc>();
    if (!updated) throw new Error('no user');
    await users().refresh([updated]);
    paused.open();
    await reader;
    expect(await cachedUser(id)).toMatchObject({ name: 'After refresh', version: updated.version });
  });

  it('two refreshes landing out of order leave the newer version', async () => {
    const id = '5eed00000000000000000004';
    const v2 = await UserModel.findOneAndUpdate({ _id: id }, { $set: { name: 'v2' } }, { returnDocument: 'after' }).lean<UserDoc>();
    const v3 = await UserModel.findOneAndUpdate({ _id: id }, { $set: { name: 'v3' } }, { returnDocument: 'after' }).lean<UserDoc>();
    if (!v2 || !v3) throw new Error('no user');
    await users().refresh([v3]);
    await users().refresh([v2]); // late
    expect(await cachedUser(id)).toMatchObject({ name: 'v3', version: v3.version });
  });

  it('an invalidation by a writer revokes a lease taken before it, even when the reader reads after the write', async () => {
    const id = '5eed00000000000000000005';
    await users().invalidate([id]);
    const leased = gate();
    const reader = users().getMany([id], async (ids) => {
      await leased.pass();
      return findByIds(UserModel, ids); // reads the new document
    });
    await leased.reached;
    await UserModel.updateOne({ _id: id }, { $set: { name: 'Written' } });
    await users().invalidate([id]);
    leased.open();
    const [value] = await reader;
    expect(value?.name).toBe('Written');
    expect(await cachedUser(id)).toBeNull(); // harmless either way; the protocol stores only under a live lease
  });
});

describe('no stale read after a returned mutation, under random concurrent load', () => {
  it('readers and writers on a few hot documents through the API', async () => {
    const admin = await t.login(ADMIN.email, ADMIN.password);
    const hotProducts = ['5eed00010000000000000001', '5eed00010000000000000002', '5eed00010000000000000003'];
    const hotUsers = [6, 7, 8].map((n) => ({ id: `5eed0000${n.toString(16).padStart(16, '0')}`, email: `user${n}@example.com` }));
    const userTokens = await Promise.all(hotUsers.map((u) => t.login(u.email, USER_PASSWORD)));

    // What each writer's returned mutation set (monotonic per document), and when it returned.
    type Write = { doc: string; value: number; returnedAt: number };
    type Read = { doc: string; value: number; startedAt: number };
    const writes: Write[] = [];
    const reads: Read[] = [];
    const deadline = Date.now() + 4_000;
    let counter = 0;
    let readerRequests = 0;

    const productWriter = async (id: string) => {
      while (Date.now() < deadline) {
        const value = ++counter;
        const res = await t.gql(`mutation { updateProduct(id: "${id}", input: { priceCents: ${value} }) { priceCents } }`, {}, admin);
        if (res.body.errors) throw new Error(JSON.stringify(res.body.errors));
        writes.push({ doc: id, value, returnedAt: performance.now() });
      }
    };
    const userWriter = async (index: number) => {
      const user = hotUsers[index];
      while (user && Date.now() < deadline) {
        const value = ++counter;
        // two refreshes of the same user race each other (the same session, concurrently)
        await Promise.all(
          [value, value + 0.5].map(async (v) => {
            const res = await t.gql(`mutation { updateUser(id: "${user.id}", input: { name: "n${v}" }) { name } }`, {}, userTokens[index]);
            if (res.body.errors) throw new Error(JSON.stringify(res.body.errors));
          }),
        );
        // both returned: the name is one of them; the later-committed one wins in MongoDB
        const stored = await UserModel.findById(user.id).lean<UserDoc>();
        writes.push({ doc: user.id, value: Number(stored?.name.slice(1)), returnedAt: performance.now() });
      }
    };
    const reader = async () => {
      while (Date.now() < deadline) {
        const startedAt = performance.now();
        const query = `{ ${hotProducts.map((id, i) => `p${i}: product(id: "${id}") { id priceCents }`).join(' ')} ${hotUsers
          .map((u, i) => `u${i}: user(id: "${u.id}") { id name }`)
          .join(' ')} }`;
        const res = await t.gql(query);
        readerRequests += 1;
        const data = res.body.data ?? {};
        for (const [alias, value] of Object.entries(data)) {
          const doc = value as { id: string; priceCents?: number; name?: string };
          const numeric = alias.startsWith('p') ? (doc.priceCents ?? 0) : Number(doc.name?.slice(1));
          reads.push({ doc: doc.id, value: numeric, startedAt });
        }
      }
    };

    // Baseline: every hot document starts below any value a writer sets.
    await ProductModel.updateMany({ _id: { $in: hotProducts } }, { $set: { priceCents: 0 } });
    await UserModel.updateMany({ _id: { $in: hotUsers.map((u) => u.id) } }, { $set: { name: 'n0' } });
    await t.app.cache.core.invalidate([
      ...hotProducts.map((id) => t.app.cache.keys.entity('Product', id)),
      ...hotUsers.map((u) => t.app.cache.keys.entity('User', u.id)),
    ]);

    await Promise.all([...hotProducts.map(productWriter), ...hotUsers.map((_, i) => userWriter(i)), ...Array.from({ length: 6 }, reader)]);

    expect(writes.length).toBeGreaterThan(20);
    expect(reads.length).toBeGreaterThan(100);
    const stale = reads.filter((read) =>
      writes.some((write) => write.doc === read.doc && write.returnedAt < read.startedAt && read.value < write.value),
    );
    expect(stale).toEqual([]);
    // The whole-response layer (on by default) was in the path of every one of these reads
    // (the stats also hold this file's earlier requests: a lower bound).
    const responseStats = t.app.cache.stats.snapshot().find((s) => s.name === 'Response');
    expect((responseStats?.hits ?? 0) + (responseStats?.misses ?? 0)).toBeGreaterThanOrEqual(readerRequests);

    // Load stopped: every cached value equals MongoDB's.
    for (const id of hotProducts) {
      const stored = await storedValue(t.app.redis, t.app.cache.keys.entity('Product', id));
      const doc = await ProductModel.findById(id).lean();
      if (stored) expect(stored.value).toEqual(doc);
    }
    for (const { id } of hotUsers) {
      const cached = await cachedUser(id);
      const doc = await UserModel.findById(id).lean();
      if (cached) expect(cached).toEqual(doc);
    }
  }, 30_000);
});

describe('no stale field value after a returned mutation', () => {
  it('reviews created while pages with cached aggregates are read', async () => {
    const page = await t.gql('{ products(first: 3) { edges { node { id reviewCount } } } }');
    const hot: { id: string; initial: number }[] = page.body.data?.products.edges.map(
      (e: { node: { id: string; reviewCount: number } }) => ({
        id: e.node.id,
        initial: e.node.reviewCount,
      }),
    );
    const tokens = await Promise.all([11, 12, 13, 14].map((n) => t.login(`user${n}@example.com`, USER_PASSWORD)));
    const returned: { id: string; at: number }[] = [];
    const reads: { id: string; count: number; startedAt: number }[] = [];
    const deadline = Date.now() + 4_000;

    const writer = async (token: string) => {
      while (Date.now() < deadline) {
        const target = hot[Math.floor(Math.random() * hot.length)];
        if (!target) break;
        const rating = 1 + Math.floor(Math.random() * 5);
        const res = await t.gql(`mutation { createReview(input: { productId: "${target.id}", rating: ${rating} }) { id } }`, {}, token);
        if (res.body.errors) throw new Error(JSON.stringify(res.body.errors));
        returned.push({ id: target.id, at: performance.now() });
      }
    };
    const reader = async () => {
      while (Date.now() < deadline) {
        const startedAt = performance.now();
        const res = await t.gql('{ products(first: 3) { edges { node { id reviewCount averageRating reviews(first: 2) { id } } } } }');
        for (const { node } of res.body.data?.products.edges ?? []) reads.push({ id: node.id, count: node.reviewCount, startedAt });
      }
    };
    await Promise.all([...tokens.map(writer), ...Array.from({ length: 4 }, reader)]);

    expect(returned.length).toBeGreaterThan(20);
    expect(reads.length).toBeGreaterThan(50);
    const stale = reads.filter((read) => {
      const initial = hot.find((h) => h.id === read.id)?.initial ?? 0;
      const mustSee = initial + returned.filter((r) => r.id === read.id && r.at < read.startedAt).length;
      return read.count < mustSee;
    });
    expect(stale).toEqual([]);

    // Load stopped: the cached aggregates and first pages equal MongoDB's.
    const final = await t.gql(
      `{ ${hot.map((h, i) => `p${i}: product(id: "${h.id}") { reviewCount averageRating reviews(first: 2) { id } }`).join(' ')} }`,
    );
    for (const [i, h] of hot.entries()) {
      const reviews = await ReviewModel.find({ product: h.id }).sort({ createdAt: -1, _id: -1 }).lean();
      const cached = final.body.data?.[`p${i}`];
      expect(cached.reviewCount).toBe(reviews.length);
      expect(cached.averageRating).toBeCloseTo(reviews.reduce((s, r) => s + r.rating, 0) / reviews.length);
      expect(cached.reviews.map((r: { id: string }) => r.id)).toEqual(reviews.slice(0, 2).map((r) => r._id.toHexString()));
    }
  }, 30_000);
});
