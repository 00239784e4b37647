import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mongoose from 'mongoose';
import { ProductModel, UserModel } from '../../src/models/index.js';
import { startOwnFerretdb, type OwnFerretdb } from '../helpers/ferretdb.js';
import { metricValue } from '../helpers/metrics.js';
import { ADMIN, errorCodes, startTestApp, type GqlResponse, type TestApp } from '../helpers/test-app.js';
import { until } from '../helpers/wait.js';

// Grace (issue 24): with every entry past its TTL and MongoDB stopped (hung: SIGSTOP; dead:
// SIGKILL), the warm reads are still answered, from the entries that only expired, and say so;
// what was never cached, and every write, fail with DATABASE_UNAVAILABLE; a value replaced
// through the API is never served again; and once MongoDB is back, reads converge to it.
const GRACE_SECONDS = 60;
const GRACE_MS = GRACE_SECONDS * 1_000;
/** Small, so that a read waiting on the stopped MongoDB falls back to grace soon. */
const TIMEOUT_MS = 1_000;

const product = (n: number): string => `5eed0001${n.toString(16).padStart(16, '0')}`;
const user = (n: number): string => `5eed0000${n.toString(16).padStart(16, '0')}`;

/** The warm reads: entities, both kinds of @cached field, a catalog page; each also a whole response. */
const WARM = {
  product: `{ product(id: "${product(2)}") { id name priceCents } }`,
  productReviews: `{ product(id: "${product(3)}") { id name reviews(first: 3) { id rating } } }`,
  users: `{ users(ids: ["${user(1)}", "${user(2)}", "${user(3)}"]) { id name } }`,
  userReviewCount: `{ user(id: "${user(4)}") { id name reviewCount } }`,
  catalog: '{ products(first: 5) { edges { node { id name priceCents } } } }',
  updated: `{ product(id: "${product(6)}") { id name priceCents } }`,
  written: `{ product(id: "${product(7)}") { id name priceCents } }`,
} as const;
type WarmKey = keyof typeof WARM;
const UPDATE = 'mutation($id: ID!, $name: String!) { updateProduct(id: $id, input: { name: $name }) { id name } }';

let db: OwnFerretdb;
let t: TestApp;
let adminToken: string;
beforeAll(async () => {
  db = await startOwnFerretdb();
  t = await startTestApp({
    env: {
      MONGODB_URI: `${db.uri}/grace`,
      MONGODB_TIMEOUT_MS: String(TIMEOUT_MS),
      // Entities live 1 s; @cached fields and responses take their TTL from the schema's hints
      // (a minute and more): the test ages those in Redis (expireAll) rather than wait.
      CACHE_TTL_SECONDS: '1',
      CACHE_GRACE_SECONDS: String(GRACE_SECONDS),
      // No early refresh: a read in the last part of an entry's life would reload it.
      CACHE_EARLY_REFRESH: '0',
    },
    seed: { users: 6, products: 12, reviews: 30, orders: 0 },
  });
  adminToken = await t.login(ADMIN.email, ADMIN.password);
}, 120_000);
afterAll(async () => {
  await t?.stop().catch(() => undefined);
  await db?.stop();
});

type Answers = Record<WarmKey, unknown>;

async function readAll(): Promise<Record<WarmKey, GqlResponse>> {
  const keys = Object.keys(WARM) as WarmKey[];
  const responses = await Promise.all(keys.map((key) => t.gql(WARM[key])));
  return Object.fromEntries(keys.map((key, i) => [key, responses[i] as GqlResponse])) as Record<WarmKey, GqlResponse>;
}

/** Every `{ id, name, priceCents? }` in `data` as MongoDB holds it: the ids that differ (stale), and how many were checked. */
async function staleAgainstMongo(data: unknown): Promise<{ stale: string[]; checked: number }> {
  const found: { id: string; name?: unknown; priceCents?: unknown }[] = [];
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) return value.forEach(walk);
    if (!value || typeof value !== 'object') return;
    const record = value as Record<string, unknown>;
    if (typeof record.id === 'string' && 'name' in record) found.push(record as (typeof found)[number]);
    Object.values(record).forEach(walk);
  };
  walk(data);
  const stale: string[] = [];
  for (const item of found) {
    // The raw collections: what MongoDB holds, past every cache.
    const model = item.id.startsWith('5eed0000') ? UserModel : ProductModel;
    const doc = await model.collection.findOne({ _id: new mongoose.Types.ObjectId(item.id) });
    const same = doc?.name === item.name && (item.priceCents === undefined || doc?.priceCents === item.priceCents);
    if (!same) stale.push(item.id);
  }
  return { stale, checked: found.length };
}

/**
 * Ages every entry of this app in Redis past its TTL: an entry is stored for its TTL plus the
 * grace, so one whose remaining PTTL is under the grace has expired and is kept only for grace.
 * Entities (1 s) get there on their own; @cached fields and responses (a minute and more) are
 * shortened to just under the grace. Then waits until no key is left above it.
 */
async function expireAll(): Promise<void> {
  const redis = t.app.redis;
  if (!redis) throw new Error('the test app has no Redis');
  const keys = await redis.keys(`${t.app.cache.keys.prefix}*`);
  for (const key of keys) {
    const pttl = await redis.pttl(key);
    if (pttl > GRACE_MS) await redis.pexpire(key, GRACE_MS - 100);
  }
  await until(async () => (await Promise.all(keys.map((key) => redis.pttl(key)))).every((pttl) => pttl < GRACE_MS), {
    what: 'every entry past its TTL (PTTL under the grace)',
    timeoutMs: 5_000,
  });
}

async function graceServed(): Promise<number> {
  return metricValue(t, 'cache_grace_served_total');
}

/**
 * Warm with MongoDB up: every query read twice (the second a hit), a product renamed through
 * the API and read again. Returns the answers, each checked against MongoDB.
 */
async function warm(renameTo: string): Promise<Answers> {
  // A write that failed in an earlier outage holds its product out of the cache (reads bypass
  // it, and grace never serves it) until its invalidation is delivered: wait for that first.
  await until(async () => Object.values(await readAll()).every((res) => res.body.extensions?.cache?.response !== 'BYPASS'), {
    what: 'no read bypassing the cache (no invalidation owed)',
    timeoutMs: 20_000,
    intervalMs: 500,
  });
  const renamed = await t.gql(UPDATE, { id: product(6), name: renameTo }, adminToken);
  expect(renamed.body.errors).toBeUndefined();
  const responses = await readAll();
  const answers = {} as Answers;
  for (const [key, res] of Object.entries(responses) as [WarmKey, GqlResponse][]) {
    expect(res.body.errors, key).toBeUndefined();
    answers[key] = res.body.data;
  }
  expect((answers.updated as { product: { name: string } }).product.name).toBe(renameTo);
  const { stale, checked } = await staleAgainstMongo(answers);
  expect(stale).toEqual([]);
  expect(checked).toBeGreaterThan(10);
  return answers;
}

/** The reads during the outage: every warm one answered with what was warm, from grace, and counted. */
async function expectGraceServes(answers: Answers, rounds: number): Promise<void> {
  const before = await graceServed();
  for (let round = 0; round < rounds; round += 1) {
    const responses = await readAll();
    for (const [key, res] of Object.entries(responses) as [WarmKey, GqlResponse][]) {
      expect(res.body.errors, `${key} in round ${round}`).toBeUndefined();
      expect(res.body.data, key).toEqual(answers[key]);
      expect((res.body.extensions?.cache as { grace?: boolean } | undefined)?.grace, key).toBe(true);
    }
  }
  expect(await graceServed()).toBeGreaterThan(before);
}

/** A never-cached product, and a write, during the outage. */
async function expectFailuresWhileDown(answers: Answers, attemptedName: string): Promise<void> {
  // Product 1: in no warm answer (the catalog's first page is the newest five, 7 to 11).
  expect(JSON.stringify(answers)).not.toContain(product(1));
  const cold = await t.gql(`{ product(id: "${product(1)}") { id name } }`);
  expect(errorCodes(cold)).toEqual(['DATABASE_UNAVAILABLE']);

  const write = await t.gql(UPDATE, { id: product(7), name: attemptedName }, adminToken);
  expect(errorCodes(write)).toEqual(['DATABASE_UNAVAILABLE']);
  const after = await readAll();
  for (const key of Object.keys(WARM) as WarmKey[]) {
    const res = after[key];
    expect(JSON.stringify(res.body.data ?? null)).not.toContain(attemptedName);
    // The app treats a write that failed on an unavailable MongoDB as possibly applied
    // (isOutcomeUnknown): its product, and so the catalog page that holds it, may bypass the
    // cache and fail until MongoDB answers. Either an error or what was shown before: never
    // another answer (a page short of a product, with no error, is a wrong answer).
    if ((key === 'written' || key === 'catalog') && res.body.errors) expect(errorCodes(res), key).toContain('DATABASE_UNAVAILABLE');
    else {
      expect(res.body.errors, key).toBeUndefined();
      expect(res.body.data, key).toEqual(answers[key]);
    }
  }
}

/** With MongoDB back: reads reload (a value changed in MongoDB directly is seen), and a mutation is seen. */
async function expectConvergence(newName: string): Promise<void> {
  // Past the cache (the raw collection: no invalidation): only a reload from MongoDB shows it.
  await ProductModel.collection.updateOne({ _id: new mongoose.Types.ObjectId(product(2)) }, { $set: { name: 'changed in MongoDB' } });
  await until(
    async () => ((await t.gql(WARM.product)).body.data as { product?: { name?: string } } | null)?.product?.name === 'changed in MongoDB',
    { what: 'reads to reload from MongoDB', timeoutMs: 15_000, intervalMs: 200 },
  );
  // Written outside the API, that value was invalidated nowhere: a copy of the old one may still
  // be in its grace in Redis, which a later outage (or a read that times out on a loaded machine)
  // may serve, as grace allows (no mutation through the API replaced it). Through the API now,
  // so that the next case starts from values no cached copy contradicts.
  const through = await t.gql(UPDATE, { id: product(2), name: 'changed in MongoDB' }, adminToken);
  expect(through.body.errors).toBeUndefined();
  const renamed = await t.gql(UPDATE, { id: product(6), name: newName }, adminToken);
  expect(renamed.body.errors).toBeUndefined();
  for (const res of Object.values(await readAll())) {
    expect(res.body.errors).toBeUndefined();
    expect((await staleAgainstMongo(res.body.data)).stale).toEqual([]);
  }
  expect(((await t.gql(WARM.updated)).body.data as { product: { name: string } }).product.name).toBe(newName);
}

describe('grace: MongoDB stopped with every entry past its TTL', () => {
  it('hung (SIGSTOP): warm reads answered from grace, 0 errors, 0 stale; cold reads and writes fail; then converges', async () => {
    const answers = await warm('renamed before the hang');
    await expireAll();
    db.pause();
    try {
      await expectGraceServes(answers, 2);
      await expectFailuresWhileDown(answers, 'written during the hang');
    } finally {
      db.resume();
    }
    await expectConvergence('renamed after the hang');
  }, 60_000);

  it('dead (SIGKILL, restarted on the same data): the same', async () => {
    const answers = await warm('renamed before the crash');
    await expireAll();
    await db.kill();
    let restarted = false;
    try {
      await expectGraceServes(answers, 2);
      await expectFailuresWhileDown(answers, 'written during the crash');
    } finally {
      await db.restart();
      restarted = true;
    }
    expect(restarted).toBe(true);
    await expectConvergence('renamed after the restart');
  }, 60_000);
});
