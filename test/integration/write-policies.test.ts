import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProductModel, UserModel } from '../../src/models/index.js';
import type { ProductDoc } from '../../src/models/product.model.js';
import type { UserDoc } from '../../src/models/user.model.js';
import { ADMIN, USER_PASSWORD, errorCodes, startTestApp, type TestApp } from '../helpers/test-app.js';
import { startPrivateRedisApp } from '../helpers/private-redis-app.js';
import { seqOf, type WriteBehindWorker, type WriteBehindWorkerOptions } from 'graphql-lease-cache/write-behind';
import { markDone, mongoEntityTarget, mongoWriteTargets } from '../../src/services/write-behind-target.js';
import { inspectRedis, manualWorker } from '../helpers/write-behind.js';
import { metricValue } from '../helpers/metrics.js';
import { storedValue } from '../helpers/stored.js';
import { sleep, until } from '../helpers/wait.js';

const UPDATE_USER = 'mutation($id: ID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input) { id name email } }';
const UPDATE_PRODUCT =
  'mutation($id: ID!, $input: UpdateProductInput!) { updateProduct(id: $id, input: $input) { id name priceCents stock viewCount } }';
const VIEW = 'mutation($id: ID!) { recordProductView(id: $id) { id viewCount } }';

async function userId(email: string): Promise<string> {
  const user = await UserModel.findOne({ email }).lean<UserDoc>().exec();
  if (!user) throw new Error(`no user ${email}`);
  return user._id.toHexString();
}
const storedUser = (id: string) => UserModel.findById(id).lean<UserDoc>().exec();
const storedProduct = (id: string) => ProductModel.findById(id).lean<ProductDoc>().exec();

describe('default policies: write-through on create, refresh on updateProduct and updateUser', () => {
  let t: TestApp;
  let redis: Redis;
  let admin: string;
  beforeAll(async () => {
    t = await startTestApp();
    redis = inspectRedis();
    admin = await t.login(ADMIN.email, ADMIN.password);
  });
  afterAll(async () => {
    redis.disconnect();
    await t.stop();
  });

  it('createProduct and createUser cache the new document at once, with a TTL', async () => {
    const product = await t.gql(
      'mutation { createProduct(input: { name: "Lamp", priceCents: 900, category: "tech", stock: 3 }) { id } }',
      {},
      admin,
    );
    const productKey = t.app.cache.keys.entity('Product', product.body.data?.createProduct.id);
    expect((await storedValue(redis, productKey))?.version).toBe(1);
    expect(await redis.pttl(productKey)).toBeGreaterThan(0);
    const user = await t.gql('mutation { createUser(input: { name: "New", email: "new@example.com", password: "password123" }) { id } }');
    const userKey = t.app.cache.keys.entity('User', user.body.data?.createUser.id);
    expect((await storedValue(redis, userKey))?.version).toBe(1);
    const { commands } = await t.countMongoCommands(() => t.gql(`{ user(id: "${user.body.data?.createUser.id}") { name } }`));
    expect(commands).toBe(0);
  });

  it('updateProduct (refresh): MongoDB has the change, the key holds its version at once, the next read asks MongoDB nothing', async () => {
    const id = '5eed00010000000000000001';
    await t.gql(`{ product(id: "${id}") { name } }`); // cached
    const key = t.app.cache.keys.entity('Product', id);
    expect(await storedValue(redis, key)).not.toBeNull();
    const res = await t.gql(UPDATE_PRODUCT, { id, input: { name: 'Renamed' } }, admin);
    expect(res.body.data?.updateProduct.name).toBe('Renamed');
    expect((await storedProduct(id))?.name).toBe('Renamed');
    expect((await storedValue(redis, key))?.version ?? null).toBe((await storedProduct(id))?.version);
    const { result, commands } = await t.countMongoCommands(() => t.gql(`{ product(id: "${id}") { name } }`));
    expect({ name: result.body.data?.product.name, commands }).toEqual({ name: 'Renamed', commands: 0 });
  });

  it('a refreshed product is cached as loads return it: without the review-count journal', async () => {
    const id = '5eed00010000000000000002';
    const review = await t.gql(
      `mutation { createReview(input: { productId: "${id}", rating: 4, body: "journal" }) { id } }`,
      {},
      await t.login('user1@example.com', USER_PASSWORD),
    );
    expect(review.body.errors).toBeUndefined();
    expect((await storedProduct(id))?.reviewsCounted?.length).toBeGreaterThan(0); // MongoDB keeps it
    await t.gql(UPDATE_PRODUCT, { id, input: { priceCents: 4_321 } }, admin);
    const cached = (await storedValue(redis, t.app.cache.keys.entity('Product', id)))?.value as ProductDoc;
    expect(cached.priceCents).toBe(4_321);
    expect(cached).not.toHaveProperty('reviewsCounted');
  });

  it("a synchronous update's response includes the views still queued", async () => {
    const id = '5eed0001000000000000000c';
    const before = (await storedProduct(id))?.viewCount ?? 0;
    await t.gql(VIEW, { id });
    await t.gql(VIEW, { id });
    const res = await t.gql(UPDATE_PRODUCT, { id, input: { priceCents: 4_200 } }, admin);
    expect(res.body.data?.updateProduct).toMatchObject({ priceCents: 4_200, viewCount: before + 2 });
  });

  it('a mutation given an id in capitals invalidates the canonical key', async () => {
    const id = '5eed0001000000000000000e';
    await t.gql(`{ product(id: "${id}") { name } }`); // cached under the lower-case id
    await t.gql(UPDATE_PRODUCT, { id: id.toUpperCase(), input: { name: 'Shouted' } }, admin);
    expect((await t.gql(`{ product(id: "${id}") { name } }`)).body.data?.product.name).toBe('Shouted');
    expect((await t.gql(`{ product(id: "${id.toUpperCase()}") { name } }`)).body.data?.product.name).toBe('Shouted');
  });

  it('updateUser (refresh): the key holds the new version right after the mutation', async () => {
    const id = await userId('user2@example.com');
    const token = await t.login('user2@example.com', USER_PASSWORD);
    await t.gql(`{ user(id: "${id}") { name } }`);
    const res = await t.gql(UPDATE_USER, { id, input: { name: 'Refreshed' } }, token);
    expect(res.body.data?.updateUser.name).toBe('Refreshed');
    const stored = await storedUser(id);
    expect(stored?.name).toBe('Refreshed');
    expect((await storedValue(redis, t.app.cache.keys.entity('User', id)))?.version ?? null).toBe(stored?.version);
    const { result, commands } = await t.countMongoCommands(() => t.gql(`{ user(id: "${id}") { name } }`));
    expect(result.body.data?.user.name).toBe('Refreshed');
    expect(commands).toBe(0);
  });

  it('racing refreshes, in either order, leave the newer version cached', async () => {
    const id = await userId('user3@example.com');
    const users = t.app.cache.entity<UserDoc>('User');
    const base = await storedUser(id);
    if (!base) throw new Error('no user');
    const older = { ...base, name: 'Older', version: base.version + 1 };
    const newer = { ...base, name: 'Newer', version: base.version + 2 };
    const key = users.key(id);
    await users.refresh([newer]);
    await users.refresh([older]);
    expect((await storedValue(redis, key))?.version).toBe(newer.version);
    await users.invalidate([id]);
    await Promise.all([users.refresh([older]), users.refresh([newer])]);
    expect((await storedValue(redis, key))?.version).toBe(newer.version);

    // And through the API: concurrent updates of one user end with the cache equal to MongoDB.
    const token = await t.login('user3@example.com', USER_PASSWORD);
    const names = Array.from({ length: 12 }, (_, i) => `Racer ${i}`);
    const results = await Promise.all(names.map((name) => t.gql(UPDATE_USER, { id, input: { name } }, token)));
    expect(results.every((r) => r.body.errors === undefined)).toBe(true);
    const stored = await storedUser(id);
    expect((await storedValue(redis, key))?.version ?? null).toBe(stored?.version);
    expect((await t.gql(`{ user(id: "${id}") { name } }`)).body.data?.user.name).toBe(stored?.name);
  });
});

describe('invalidate (CACHE_WRITE_POLICIES=Product=invalidate)', () => {
  let t: TestApp;
  let redis: Redis;
  beforeAll(async () => {
    t = await startTestApp({
      env: { CACHE_WRITE_POLICIES: 'Product=invalidate' },
      seed: { users: 4, products: 6, reviews: 10, orders: 0 },
    });
    redis = inspectRedis();
  });
  afterAll(async () => {
    redis.disconnect();
    await t.stop();
  });

  it('updateProduct: MongoDB has the change, the key is gone, the next read refills it', async () => {
    const admin = await t.login(ADMIN.email, ADMIN.password);
    const id = '5eed00010000000000000001';
    await t.gql(`{ product(id: "${id}") { name } }`); // cached
    const key = t.app.cache.keys.entity('Product', id);
    expect(await storedValue(redis, key)).not.toBeNull();
    const res = await t.gql(UPDATE_PRODUCT, { id, input: { name: 'Renamed' } }, admin);
    expect(res.body.data?.updateProduct.name).toBe('Renamed');
    expect((await storedProduct(id))?.name).toBe('Renamed');
    expect(await redis.exists(key)).toBe(0);
    expect((await t.gql(`{ product(id: "${id}") { name } }`)).body.data?.product.name).toBe('Renamed');
    expect((await storedValue(redis, key))?.version ?? null).toBe((await storedProduct(id))?.version);
  });
});

describe('write-behind (CACHE_WRITE_POLICIES=User=write-behind,Product=write-behind)', () => {
  let t: TestApp;
  let redis: Redis;
  let admin: string;
  let current: WriteBehindWorker | undefined;
  /** A worker of the test's own, run by hand; the previous one resigns its leader lease first. */
  const worker = async (options: Partial<WriteBehindWorkerOptions> = {}): Promise<WriteBehindWorker> => {
    await current?.stop();
    current = manualWorker(t, options);
    return current;
  };
  beforeAll(async () => {
    t = await startTestApp({ env: { CACHE_WRITE_POLICIES: 'User=write-behind,Product=write-behind', WRITE_BEHIND_WORKER: 'false' } });
    redis = inspectRedis();
    admin = await t.login(ADMIN.email, ADMIN.password);
  });
  afterAll(async () => {
    await current?.stop();
    redis.disconnect();
    await t.stop();
  });

  it('updateUser: the cache has it at once (no expiry), MongoDB after the worker; then the key has a TTL again', async () => {
    const id = await userId('user4@example.com');
    const token = await t.login('user4@example.com', USER_PASSWORD);
    const before = await storedUser(id);
    await t.gql(`{ user(id: "${id}") { name } }`); // cached, with its TTL
    const res = await t.gql(UPDATE_USER, { id, input: { name: 'Queued Name' } }, token);
    expect(res.body.data?.updateUser.name).toBe('Queued Name');
    expect(await redis.pttl(t.app.cache.keys.entity('User', id))).toBe(-1); // its expiry persisted while pending

    // MongoDB does not have it yet; every read does, from the cache and from MongoDB alike.
    expect((await storedUser(id))?.name).toBe(before?.name);
    expect((await t.gql(`{ user(id: "${id}") { name } }`)).body.data?.user.name).toBe('Queued Name');
    await t.app.cache.entity('User').invalidate([id]);
    expect((await t.gql(`{ user(id: "${id}") { name } }`)).body.data?.user.name).toBe('Queued Name');
    const pending = t.app.cache.keys.pending('User', id);
    expect(await redis.hlen(pending)).toBe(1);
    expect(await redis.pttl(pending)).toBe(-1); // persisted while the write is pending
    expect(await redis.xlen(t.app.cache.keys.writeQueue.stream)).toBe(1);

    const report = await (await worker()).runOnce();
    expect(report).toMatchObject({ read: 1, flushed: 1, failed: 0, dead: 0 });
    const after = await storedUser(id);
    expect(after?.name).toBe('Queued Name');
    expect(after?.version).toBe((before?.version ?? 0) + 1);
    expect(await redis.exists(pending)).toBe(0);
    expect(await redis.xlen(t.app.cache.keys.writeQueue.stream)).toBe(0);
    expect((await t.gql(`{ user(id: "${id}") { name } }`)).body.data?.user.name).toBe('Queued Name');
    expect(await redis.pttl(t.app.cache.keys.entity('User', id))).toBeGreaterThan(0);
  });

  it('several changes of one entity coalesce into one MongoDB write: counters add up, the newest set wins', async () => {
    const id = '5eed00010000000000000002';
    const before = await storedProduct(id);
    for (const name of ['First', 'Second', 'Third']) await t.gql(UPDATE_PRODUCT, { id, input: { name } }, admin);
    for (let i = 0; i < 5; i += 1) await t.gql(VIEW, { id });
    const read = (await t.gql(`{ product(id: "${id}") { name viewCount } }`)).body.data?.product;
    expect(read).toEqual({ name: 'Third', viewCount: (before?.viewCount ?? 0) + 5 });
    const updatesBefore = await metricValue(t, 'mongodb_commands_total', { command: 'update' });
    expect(await (await worker()).runOnce()).toMatchObject({ read: 8, flushed: 8 });
    expect((await metricValue(t, 'mongodb_commands_total', { command: 'update' })) - updatesBefore).toBe(1);
    expect(await storedProduct(id)).toMatchObject({
      name: 'Third',
      viewCount: (before?.viewCount ?? 0) + 5,
      version: (before?.version ?? 0) + 1,
    });
  });

  it('stock and category are written synchronously, and a queued older change of the same field loses to them', async () => {
    const id = '5eed00010000000000000003';
    await t.gql(UPDATE_PRODUCT, { id, input: { name: 'Queued', priceCents: 111 } }, admin);
    const sync = await t.gql(UPDATE_PRODUCT, { id, input: { name: 'Synchronous', stock: 42 } }, admin);
    expect(sync.body.data?.updateProduct).toMatchObject({ name: 'Synchronous', stock: 42 });
    expect(await storedProduct(id)).toMatchObject({ name: 'Synchronous', stock: 42 });
    // The queued price still shows; the queued name does not (the later write set it).
    expect((await t.gql(`{ product(id: "${id}") { name priceCents stock } }`)).body.data?.product).toEqual({
      name: 'Synchronous',
      priceCents: 111,
      stock: 42,
    });
    expect(await (await worker()).runOnce()).toMatchObject({ read: 1, flushed: 1 });
    expect(await storedProduct(id)).toMatchObject({ name: 'Synchronous', priceCents: 111, stock: 42 });
  });

  it('a change MongoDB rejects is retried, then dead-lettered (metric and stream); the others flush', async () => {
    const a = await userId('user5@example.com');
    const b = await userId('user6@example.com');
    const tokenA = await t.login('user5@example.com', USER_PASSWORD);
    const tokenB = await t.login('user6@example.com', USER_PASSWORD);
    const emailBefore = (await storedUser(a))?.email;
    expect((await t.gql(UPDATE_USER, { id: a, input: { email: 'contested@example.com', name: 'A' } }, tokenA)).body.errors).toBeUndefined();
    expect((await t.gql(UPDATE_USER, { id: b, input: { name: 'B flushed' } }, tokenB)).body.errors).toBeUndefined();
    // Someone signs up with that email before the queued change reaches MongoDB.
    const signup = await t.gql(
      'mutation { createUser(input: { name: "C", email: "contested@example.com", password: "password123" }) { id } }',
    );
    expect(signup.body.errors).toBeUndefined();

    const retrying = await worker({ maxTries: 3, retryMs: 0 });
    const dead = t.app.cache.keys.writeQueue.dead;
    const first = await retrying.runOnce();
    expect(first).toMatchObject({ read: 2, flushed: 1, failed: 1, dead: 0 });
    expect((await storedUser(b))?.name).toBe('B flushed');
    expect(await retrying.runOnce()).toMatchObject({ failed: 1, dead: 0 });
    expect(await retrying.runOnce()).toMatchObject({ failed: 0, dead: 1 });
    expect(await metricValue(t, 'write_behind_dead_letters_total', { type: 'User' })).toBe(1);
    expect(await metricValue(t, 'write_behind_retries_total', { type: 'User' })).toBe(3);
    const letters = await redis.xrange(dead, '-', '+');
    expect(letters).toHaveLength(1);
    const fields = Object.fromEntries(
      (letters[0]?.[1] ?? []).reduce<string[][]>((pairs, v, i, all) => (i % 2 ? pairs : [...pairs, [v, all[i + 1] ?? '']]), []),
    );
    expect(fields).toMatchObject({ t: 'User', i: a });
    expect(JSON.parse(fields.c ?? '{}').set).toEqual({ email: 'contested@example.com', name: 'A' });
    expect(fields.error).toMatch(/duplicate|E11000|UNIQUE/i);
    // Nothing half-applied: MongoDB, and every read, show A as it was.
    expect((await storedUser(a))?.email).toBe(emailBefore);
    expect(await redis.exists(t.app.cache.keys.pending('User', a))).toBe(0);
    expect((await t.gql(`{ user(id: "${a}") { email } }`, {}, tokenA)).body.data?.user.email).toBe(emailBefore);
    expect(await redis.xlen(t.app.cache.keys.writeQueue.stream)).toBe(0);
  });

  it('a change waiting for its retry holds back only its own entity', async () => {
    const a = await userId('user10@example.com');
    const c = await userId('user11@example.com');
    const tokenC = await t.login('user11@example.com', USER_PASSWORD);
    // A change MongoDB will refuse (the email is taken), queued as if the check had raced.
    await t.app.cache.writeBehind.enqueue('User', a, { set: { email: 'user12@example.com' }, at: Date.now() });
    const patient = await worker({ retryMs: 60_000, maxTries: 5 });
    expect(await patient.runOnce()).toMatchObject({ read: 1, failed: 1 });
    expect((await t.gql(UPDATE_USER, { id: c, input: { name: 'Not held back' } }, tokenC)).body.errors).toBeUndefined();
    expect(await patient.runOnce()).toMatchObject({ read: 1, flushed: 1, failed: 0 });
    expect((await storedUser(c))?.name).toBe('Not held back');
    // A fresh worker (no backoff, one try) dead-letters it.
    expect(await (await worker({ maxTries: 1 })).runOnce()).toMatchObject({ read: 1, dead: 1 });
    expect((await storedUser(a))?.email).toBe('user10@example.com');
  });

  it('updates are guarded by what the folding read (wbSeq, the ids it took, the fences of what it sets), not by version', async () => {
    const id = '5eed0001000000000000000d';
    const target = mongoWriteTargets(t.app.documentLock).Product;
    if (!target) throw new Error('no Product target');
    const state = (await target.load([id])).get(id);
    if (!state) throw new Error('no product');
    // A synchronous write of another field since the load: the version moved, the guard holds.
    await ProductModel.updateOne({ _id: id }, { $set: { stock: 77 } }).exec();
    const counter = { id, set: {}, inc: { viewCount: 1 } };
    const applied = await target.apply([{ ...counter, seq: seqOf('1-1'), guard: { wbSeq: state.wbSeq ?? null, notDone: [], fences: {} } }]);
    expect(applied).toEqual([{ kind: 'applied', version: state.version + 2 }]);
    // A change id it took is in wbDone (written synchronously already): not applied again.
    await ProductModel.updateOne({ _id: id }, markDone('already-1')).exec();
    expect(
      await target.apply([{ ...counter, seq: seqOf('1-2'), guard: { wbSeq: seqOf('1-1'), notDone: ['already-1'], fences: {} } }]),
    ).toEqual([{ kind: 'conflict' }]);
    // A set whose field was written synchronously since the load (its fence moved): a conflict.
    await ProductModel.updateOne({ _id: id }, { $set: { name: 'Set synchronously' } }).exec();
    const named = { id, set: { name: 'Queued' }, inc: {}, seq: seqOf('1-3') };
    expect(await target.apply([{ ...named, guard: { wbSeq: seqOf('1-1'), notDone: [], fences: { name: null } } }])).toEqual([
      { kind: 'conflict' },
    ]);
    const fence = (await target.load([id])).get(id)?.wbAt?.name ?? null;
    expect(fence).not.toBeNull();
    expect(await target.apply([{ ...named, guard: { wbSeq: seqOf('1-1'), notDone: [], fences: { name: fence } } }])).toMatchObject([
      { kind: 'applied' },
    ]);
    expect((await storedProduct(id))?.name).toBe('Queued');
  });

  it('a queued copy of a view also written synchronously is skipped, and does not hold back later views', async () => {
    // Defect 1 of the hostile review: an enqueue that timed out (written to MongoDB directly,
    // its id in wbDone) and then ran in Redis anyway, followed by another view, made every batch
    // a conflict forever: the guard listed the skipped id.
    const id = '5eed0001000000000000000e';
    const before = (await storedProduct(id))?.viewCount ?? 0;
    await t.app.cache.writeBehind.enqueue('Product', id, { inc: { viewCount: 1 }, at: Date.now(), u: 'paused-1' });
    await ProductModel.updateOne({ _id: id }, { $inc: { viewCount: 1 }, ...markDone('paused-1') }).exec();
    await t.gql(VIEW, { id });
    const w = await worker();
    expect(await w.runOnce()).toMatchObject({ read: 2, flushed: 2, conflicts: 0 });
    expect((await storedProduct(id))?.viewCount).toBe(before + 2);
    expect(await redis.hlen(t.app.cache.keys.pending('Product', id))).toBe(0);
    expect((await t.gql(`{ product(id: "${id}") { viewCount } }`)).body.data?.product.viewCount).toBe(before + 2);
    expect(await redis.pttl(t.app.cache.keys.entity('Product', id))).toBeGreaterThan(0);
  });

  it('a flush that overlaps a synchronous write of another field leaves no cached document without the flushed views', async () => {
    // Defect 3(a): the floor was the version read before the flush plus one; the synchronous
    // write's version, cached by a reader in between, passed it and lacked the views.
    const id = '5eed0001000000000000000f';
    const before = await storedProduct(id);
    if (!before) throw new Error('no product');
    for (let i = 0; i < 3; i += 1) await t.gql(VIEW, { id });
    const w = await worker({
      // Between the worker's load and its write: a synchronous stock update (invalidate), and
      // a reader that caches the document at that version (views still queued, so shown).
      beforeWrite: async () => {
        expect((await t.gql(UPDATE_PRODUCT, { id, input: { stock: 5 } }, admin)).body.errors).toBeUndefined();
        expect((await t.gql(`{ product(id: "${id}") { viewCount } }`)).body.data?.product.viewCount).toBe(before.viewCount + 3);
      },
    });
    expect(await w.runOnce()).toMatchObject({ flushed: 3, conflicts: 0 });
    expect((await storedProduct(id))?.viewCount).toBe(before.viewCount + 3);
    expect((await t.gql(`{ product(id: "${id}") { viewCount stock } }`)).body.data?.product).toEqual({
      viewCount: before.viewCount + 3,
      stock: 5,
    });
  });

  it('a queued change replayed after a crash between the MongoDB write and the acknowledgement changes nothing', async () => {
    const id = '5eed00010000000000000004';
    const before = await storedProduct(id);
    for (let i = 0; i < 7; i += 1) await t.gql(VIEW, { id });
    const crashing = await worker({
      afterWrite: () => Promise.reject(new Error('crash after the write, before the acknowledgement')),
    });
    current = undefined; // it dies holding its lease: no resignation
    await expect(crashing.runOnce()).rejects.toThrow('crash after the write');
    expect((await storedProduct(id))?.viewCount).toBe((before?.viewCount ?? 0) + 7);
    // Reads do not count the applied changes twice, though they are still queued.
    await t.app.cache.entity('Product').invalidate([id]);
    expect((await t.gql(`{ product(id: "${id}") { viewCount } }`)).body.data?.product.viewCount).toBe((before?.viewCount ?? 0) + 7);

    // Another worker takes over once the dead one's lease expires, and finds them applied.
    await sleep(400);
    const updatesBefore = await metricValue(t, 'mongodb_commands_total', { command: 'update' });
    const successor = await worker({ leaderTtlMs: 5_000 });
    expect(await successor.runOnce()).toMatchObject({ read: 7, flushed: 7 });
    expect((await metricValue(t, 'mongodb_commands_total', { command: 'update' })) - updatesBefore).toBe(0);
    expect((await storedProduct(id))?.viewCount).toBe((before?.viewCount ?? 0) + 7);
    expect(await redis.xlen(t.app.cache.keys.writeQueue.stream)).toBe(0);
    // The worker that lost its lease, back again, reads nothing while the new one leads.
    await t.gql(VIEW, { id });
    expect(await crashing.runOnce()).toMatchObject({ read: 0 });
    expect(await redis.xlen(t.app.cache.keys.writeQueue.stream)).toBe(1);
    expect(await successor.runOnce()).toMatchObject({ read: 1, flushed: 1 });
  });

  it('after a flush, a write-through of the older version still on its way is not stored', async () => {
    const id = '5eed00010000000000000007';
    const products = t.app.cache.entity<ProductDoc>('Product');
    const old = await storedProduct(id);
    if (!old) throw new Error('no product');
    await t.gql(VIEW, { id });
    expect(await (await worker()).runOnce()).toMatchObject({ flushed: 1 });
    // A refresh of the document as it was before the flush (say, from an updateProduct in
    // refresh mode that read it just before) arrives late: the version floor refuses it.
    await products.refresh([old]);
    expect((await storedValue(redis, products.key(id)))?.version).toBe(old.version + 1);
    const { result, commands } = await t.countMongoCommands(() => t.gql(`{ product(id: "${id}") { viewCount } }`));
    expect(result.body.data?.product.viewCount).toBe(old.viewCount + 1);
    expect(commands).toBe(1); // the floor reads as a miss
    expect((await storedValue(redis, products.key(id)))?.version).toBe(old.version + 1);
  });

  it('a change queued and also written synchronously (an enqueue that timed out) counts once', async () => {
    const id = '5eed00010000000000000008';
    const before = (await storedProduct(id))?.viewCount ?? 0;
    // What recordProductView does when its enqueue times out after Redis took it: the queued
    // copy exists, and the synchronous $inc records the change's id in wbDone.
    await t.app.cache.writeBehind.enqueue('Product', id, { inc: { viewCount: 1 }, at: Date.now(), u: 'timed-out-1' });
    await ProductModel.updateOne({ _id: id }, { $inc: { viewCount: 1 }, ...markDone('timed-out-1') }).exec();
    await t.app.cache.entity('Product').invalidate([id]);
    expect((await t.gql(`{ product(id: "${id}") { viewCount } }`)).body.data?.product.viewCount).toBe(before + 1);
    expect(await (await worker()).runOnce()).toMatchObject({ read: 1, flushed: 1 });
    expect((await storedProduct(id))?.viewCount).toBe(before + 1);
  });

  it('an enqueue that timed out after the worker applied its queued copy is not applied again by the synchronous write', async () => {
    // The other order: the caller stalled (SIGSTOP, a long GC pause, a starved CPU) after sending
    // the enqueue; Redis took it, another instance's worker applied it, and the caller's command
    // timeout fired when it ran again, so it wrote the change itself, with its id as done id.
    const id = '5eed00010000000000000009';
    const before = (await storedProduct(id))?.viewCount ?? 0;
    await t.app.cache.writeBehind.enqueue('Product', id, { inc: { viewCount: 1 }, at: Date.now(), u: 'applied-first-1' });
    expect(await (await worker()).runOnce()).toMatchObject({ read: 1, flushed: 1 });
    expect((await storedProduct(id))?.viewCount).toBe(before + 1);
    const target = mongoEntityTarget<ProductDoc>('Product', t.app.documentLock);
    const written = await target.write({ id, set: {}, inc: { viewCount: 1 }, doneId: 'applied-first-1' });
    expect(written?.after).toMatchObject({ viewCount: before + 1 });
    expect((await storedProduct(id))?.viewCount).toBe(before + 1);
  });

  it('a change the target would never take (a field not written behind) is dead-lettered at once', async () => {
    const id = '5eed00010000000000000009';
    await t.app.cache.writeBehind.enqueue('Product', id, { set: { stock: 0 }, at: Date.now() });
    const deadBefore = await metricValue(t, 'write_behind_dead_letters_total', { type: 'Product' });
    expect(await (await worker()).runOnce()).toMatchObject({ read: 1, dead: 1 });
    expect(await metricValue(t, 'write_behind_dead_letters_total', { type: 'Product' })).toBe(deadBefore + 1);
    expect((await storedProduct(id))?.stock).not.toBe(0);
    expect((await t.gql(`{ product(id: "${id}") { stock } }`)).body.data?.product.stock).toBe((await storedProduct(id))?.stock);
  });

  it('bad input is refused before anything is queued', async () => {
    const id = await userId('user7@example.com');
    const token = await t.login('user7@example.com', USER_PASSWORD);
    const taken = await t.gql(UPDATE_USER, { id, input: { email: 'user8@example.com' } }, token);
    expect(errorCodes(taken)).toEqual(['BAD_USER_INPUT']);
    expect(errorCodes(await t.gql(UPDATE_USER, { id, input: { email: 'not-an-email' } }, token))).toEqual(['BAD_USER_INPUT']);
    expect(errorCodes(await t.gql(VIEW, { id: 'aaaaaaaaaaaaaaaaaaaaaaaa' }))).toEqual(['NOT_FOUND']);
    expect(await redis.exists(t.app.cache.keys.pending('User', id))).toBe(0);
  });
});

describe('1,000 recordProductView calls from concurrent clients (worker in the server process)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.stop());

  it('read 1,000 higher at once; MongoDB agrees after the flush, in far fewer writes than calls', async () => {
    const id = '5eed00010000000000000005';
    const before = (await storedProduct(id))?.viewCount ?? 0;
    const updatesBefore = await metricValue(t, 'mongodb_commands_total', { command: 'update' });
    const clients = 50;
    let acknowledged = 0;
    await Promise.all(
      Array.from({ length: clients }, async () => {
        for (let i = 0; i < 1_000 / clients; i += 1) {
          const res = await t.gql(VIEW, { id });
          if (res.body.errors === undefined) acknowledged += 1;
        }
      }),
    );
    expect(acknowledged).toBe(1_000);
    expect((await t.gql(`{ product(id: "${id}") { viewCount } }`)).body.data?.product.viewCount).toBe(before + 1_000);

    const stream = t.app.cache.keys.writeQueue.stream;
    const redis = inspectRedis();
    try {
      await until(async () => (await redis.xlen(stream)) === 0, { what: 'the queue to drain', timeoutMs: 20_000 });
      expect(await redis.xlen(stream)).toBe(0);
    } finally {
      redis.disconnect();
    }
    expect((await storedProduct(id))?.viewCount).toBe(before + 1_000);
    expect((await t.gql(`{ product(id: "${id}") { viewCount } }`)).body.data?.product.viewCount).toBe(before + 1_000);
    const writes = (await metricValue(t, 'mongodb_commands_total', { command: 'update' })) - updatesBefore;
    console.log(`1,000 views reached MongoDB in ${writes} update commands`);
    expect(writes).toBeGreaterThan(0);
    expect(writes).toBeLessThan(100);
  });
});

describe('write-behind with Redis stopped', () => {
  it('updateUser falls back to a synchronous MongoDB write and still succeeds', async () => {
    // One instance declared (FERRETDB_DOCUMENT_LOCK=process): its writes need no lock in Redis.
    const { redis, t, stop } = await startPrivateRedisApp({
      env: { FERRETDB_DOCUMENT_LOCK: 'process', CACHE_WRITE_POLICIES: 'User=write-behind', CACHE_BREAKER_OPEN_MS: '60000' },
    });
    try {
      const id = await userId('user9@example.com');
      const token = await t.login('user9@example.com', USER_PASSWORD);
      await redis.stop();
      const res = await t.gql(UPDATE_USER, { id, input: { name: 'Written without Redis' } }, token);
      expect(res.body.errors).toBeUndefined();
      expect(res.body.data?.updateUser.name).toBe('Written without Redis');
      expect((await storedUser(id))?.name).toBe('Written without Redis');
      expect(await metricValue(t, 'write_behind_fallbacks_total', { type: 'User' })).toBe(1);
      const views = await t.gql(VIEW, { id: '5eed00010000000000000006' });
      expect(views.body.errors).toBeUndefined();
      expect((await storedProduct('5eed00010000000000000006'))?.viewCount).toBe(views.body.data?.recordProductView.viewCount);
    } finally {
      await stop(); // the app; its Redis is stopped already
    }
  });
});

describe('FerretDB with Redis stopped, FERRETDB_DOCUMENT_LOCK=redis (the default)', () => {
  it('a document write is refused, LOCK_UNAVAILABLE, and writes nothing: another instance may be writing the document', async () => {
    const { redis, t, stop } = await startPrivateRedisApp({ env: { CACHE_WRITE_POLICIES: 'User=refresh' } });
    try {
      expect(t.app.documentLock.shared).toBe(t.app.db.isFerretdb);
      if (!t.app.db.isFerretdb) return; // MongoDB: no lock, the write goes on
      const id = await userId('user9@example.com');
      const token = await t.login('user9@example.com', USER_PASSWORD);
      await redis.stop();
      const res = await t.gql(UPDATE_USER, { id, input: { name: 'Written without a lock' } }, token);
      expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'DATABASE_UNAVAILABLE', reason: 'LOCK_UNAVAILABLE' });
      expect((await storedUser(id))?.name).not.toBe('Written without a lock');
    } finally {
      await stop();
    }
  });
});

describe('write-behind and a read that bypasses the cache', () => {
  it('a key with an undelivered invalidation is read from MongoDB, with its queued changes applied', async () => {
    const { redis, t, stop } = await startPrivateRedisApp({ env: { WRITE_BEHIND_WORKER: 'false' } });
    try {
      const id = '5eed0001000000000000000a';
      const before = (await storedProduct(id))?.viewCount ?? 0;
      await t.gql(VIEW, { id });
      await t.gql(VIEW, { id });
      process.kill(redis.pid, 'SIGSTOP'); // the invalidation times out and stays pending
      try {
        await t.app.cache.entity('Product').invalidate([id]);
      } finally {
        process.kill(redis.pid, 'SIGCONT');
      }
      expect(t.app.cache.core.pendingInvalidations).toBe(1);
      const { result, commands } = await t.countMongoCommands(() => t.gql(`{ product(id: "${id}") { viewCount } }`));
      expect(commands).toBe(1); // bypassed: MongoDB, which has not had the views yet
      expect(result.body.data?.product.viewCount).toBe(before + 2);
      expect((await storedProduct(id))?.viewCount).toBe(before);
    } finally {
      await stop();
    }
  });
});

describe('write-behind backlog per entity (WRITE_BEHIND_MAX_PENDING=3)', () => {
  it('past the bound, changes are written synchronously; reads and MongoDB still add up exactly', async () => {
    const t = await startTestApp({ env: { WRITE_BEHIND_WORKER: 'false', WRITE_BEHIND_MAX_PENDING: '3' } });
    const redis = inspectRedis();
    try {
      const id = '5eed0001000000000000000b';
      const before = (await storedProduct(id))?.viewCount ?? 0;
      for (let i = 0; i < 5; i += 1) expect((await t.gql(VIEW, { id })).body.data?.recordProductView.viewCount).toBe(before + i + 1);
      expect(await redis.hlen(t.app.cache.keys.pending('Product', id))).toBe(3);
      expect((await storedProduct(id))?.viewCount).toBe(before + 2);
      expect(await metricValue(t, 'write_behind_fallbacks_total', { type: 'Product' })).toBe(2);
      expect((await t.gql(`{ product(id: "${id}") { viewCount } }`)).body.data?.product.viewCount).toBe(before + 5);
      const worker = manualWorker(t);
      expect(await worker.runOnce()).toMatchObject({ read: 3, flushed: 3 });
      await worker.stop();
      expect((await storedProduct(id))?.viewCount).toBe(before + 5);
    } finally {
      redis.disconnect();
      await t.stop();
    }
  });
});

describe('write-behind around a Redis write pause (CLIENT PAUSE WRITE)', () => {
  it('an enqueue that Redis runs after its caller gave up is refused; later views flush; nothing counts twice', async () => {
    // One instance declared (FERRETDB_DOCUMENT_LOCK=process): the fallback write takes no lock in the paused Redis.
    const { redis, t, stop } = await startPrivateRedisApp({
      env: { FERRETDB_DOCUMENT_LOCK: 'process', WRITE_BEHIND_WORKER: 'false', CACHE_BREAKER_OPEN_MS: '100' },
    });
    const w = manualWorker(t);
    try {
      const id = '5eed00010000000000000010';
      const before = (await storedProduct(id))?.viewCount ?? 0;
      await t.gql(VIEW, { id });
      // The view's enqueue times out and it is written to MongoDB; Redis then runs the enqueue.
      await redis.client.call('CLIENT', 'PAUSE', '1500', 'WRITE');
      const paused = await t.gql(VIEW, { id });
      expect(paused.body.errors).toBeUndefined();
      expect(paused.body.data?.recordProductView.viewCount).toBe(before + 2);
      expect((await storedProduct(id))?.viewCount).toBe(before + 1);
      await sleep(1_700);
      expect(await redis.client.hlen(t.app.cache.keys.pending('Product', id))).toBe(1); // the late one was refused
      await until(async () => (await t.gql(VIEW, { id })).body.data?.recordProductView.viewCount === before + 3, {
        what: 'a view queued again',
      });
      expect(await redis.client.hlen(t.app.cache.keys.pending('Product', id))).toBe(2);
      expect(await w.runOnce()).toMatchObject({ read: 2, flushed: 2, conflicts: 0 });
      expect((await storedProduct(id))?.viewCount).toBe(before + 3);
      expect((await t.gql(`{ product(id: "${id}") { viewCount } }`)).body.data?.product.viewCount).toBe(before + 3);
    } finally {
      await w.stop();
      await stop();
    }
  });
});
