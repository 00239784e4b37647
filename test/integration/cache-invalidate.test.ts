import { execFile } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import mongoose from 'mongoose';
import { ProductModel } from '../../src/models/index.js';
import { httpInvalidator, outsideWritesPlugin } from '../../src/models/outside-writes.plugin.js';
import type { ProductDoc } from '../../src/models/product.model.js';
import { postFrom } from '../helpers/post-from.js';
import { usePrivateRedisApp } from '../helpers/private-redis-app.js';
import { ADMIN, USER_PASSWORD, type GqlResponse } from '../helpers/test-app.js';

// POST /cache/invalidate: a write made straight to MongoDB (a script, another service, a
// migration) stays invisible behind the caches until it is named there; then the next read shows it.

const KEY = 'test-invalidation-key-0123456789';
const PER_MINUTE = 40;
const { t } = usePrivateRedisApp({
  env: {
    CACHE_RESPONSES: 'true',
    WRITE_BEHIND_WORKER: 'false',
    CACHE_INVALIDATION_KEY: KEY,
    CACHE_INVALIDATIONS_PER_MINUTE: String(PER_MINUTE),
  },
  seed: { users: 6, products: 24, reviews: 30, orders: 4 },
});
let admin: string;
let customer: string;
beforeAll(async () => {
  admin = await t.login(ADMIN.email, ADMIN.password);
  customer = await t.login('user1@example.com', USER_PASSWORD);
});

const product = (i: number): string => `5eed0001${i.toString(16).padStart(16, '0')}`;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the test helper's own default
type Res = GqlResponse<Record<string, any>>;
const responseOf = (res: GqlResponse): unknown => res.body.extensions?.cache?.response;

interface Answer {
  status: number;
  body: {
    voided?: { entities: Record<string, string[]>; tags: string[] };
    errors?: { message: string; extensions: { code: string; reason?: string } }[];
  };
}

/** POSTs `body` (JSON unless a string) to /cache/invalidate with `headers`. */
async function invalidate(body: unknown, headers: Record<string, string> = { 'x-cache-invalidation-key': KEY }): Promise<Answer> {
  const res = await fetch(`${t.url}/cache/invalidate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Answer['body'] };
}

/** Runs `query` until it is a response-cache hit (at most 3 times). */
async function warm(query: string): Promise<Res> {
  for (let i = 0; i < 3; i += 1) {
    const res = await t.gql(query);
    expect(res.body.errors).toBeUndefined();
    if (responseOf(res) === 'HIT') return res;
  }
  throw new Error(`never a response-cache hit: ${query}`);
}

describe('an outside write', () => {
  it('stays invisible on the entity and response caches until POST /cache/invalidate names it, then shows on both', async () => {
    const id = product(3);
    const stored = `{ product(id: "${id}") { priceCents } }`;
    const before = (await warm(stored)).body.data?.product.priceCents as number;
    // The entity too: another shape of query reads it from the entity cache.
    await t.gql(`{ product(id: "${id}") { id priceCents } }`);

    // Straight to MongoDB, as a back-office script would (the models' hooks bump `version`).
    const changed = before + 1_111;
    await ProductModel.updateOne({ _id: id }, { $set: { priceCents: changed } });

    const storedAgain = await t.gql(stored);
    expect(responseOf(storedAgain)).toBe('HIT');
    expect(storedAgain.body.data?.product.priceCents).toBe(before);
    const { result: entityRead, commands } = await t.countMongoCommands(() => t.gql(`{ product(id: "${id}") { name priceCents } }`));
    expect(responseOf(entityRead)).toBe('MISS');
    expect(commands).toBe(0); // the entity cache answered
    expect(entityRead.body.data?.product.priceCents).toBe(before);

    const answer = await invalidate({ entities: [{ type: 'Product', id }] });
    expect(answer.status).toBe(200);
    expect(answer.body.voided).toEqual({ entities: { Product: [id] }, tags: [`Product:${id}:reviews`] });

    const response = await t.gql(stored);
    expect(responseOf(response)).toBe('MISS');
    expect(response.body.data?.product.priceCents).toBe(changed);
    const entity = await t.gql(`{ product(id: "${id}") { name priceCents } }`);
    expect(responseOf(entity)).toBe('MISS');
    expect(entity.body.data?.product.priceCents).toBe(changed);
  });

  it('a catalog tag voids the product lists: a product moved to another category outside the API shows in it', async () => {
    const id = product(5);
    const moved = await ProductModel.findById(id).lean();
    const target = moved?.category === 'toys' ? 'garden' : 'toys';
    const list = `{ products(category: "${target}", first: 50) { edges { node { id category } } } }`;
    const ids = (res: Res) => (res.body.data?.products.edges as { node: { id: string } }[]).map((e) => e.node.id);
    expect(ids(await warm(list))).not.toContain(id);

    await ProductModel.updateOne({ _id: id }, { $set: { category: target } });
    expect(ids(await t.gql(list))).not.toContain(id);

    const answer = await invalidate({ entities: [{ type: 'Product', id }], tags: ['catalog'] });
    expect(answer.status).toBe(200);
    expect(answer.body.voided?.tags).toContain('ProductList:_all:catalog');
    const after = await t.gql(list);
    expect(responseOf(after)).toBe('MISS');
    expect(ids(after)).toContain(id);
  });

  it('is idempotent: the same invalidation twice answers the same, and the reads stay right', async () => {
    const body = {
      entities: [
        { type: 'Product', id: product(4) },
        { type: 'User', id: `5eed0000${'1'.padStart(16, '0')}` },
      ],
      tags: ['catalog:books'],
    };
    const first = await invalidate(body);
    const second = await invalidate(body);
    expect(first.status).toBe(200);
    expect(second).toEqual(first);
    const read = await t.gql(`{ product(id: "${product(4)}") { id } }`);
    expect(read.body.data?.product.id).toBe(product(4));
  });
});

describe('authorisation', () => {
  const body = { entities: [{ type: 'Product', id: product(1) }] };
  it('no key and no session: 401', async () => {
    const res = await invalidate(body, {});
    expect(res.status).toBe(401);
    expect(res.body.errors?.[0]?.extensions.code).toBe('UNAUTHENTICATED');
  });
  it('a session that is not an ADMIN: 403', async () => {
    const res = await invalidate(body, { authorization: `Bearer ${customer}` });
    expect(res.status).toBe(403);
    expect(res.body.errors?.[0]?.extensions.code).toBe('FORBIDDEN');
  });
  it('an unknown token: 401', async () => {
    expect((await invalidate(body, { authorization: 'Bearer not-a-session' })).status).toBe(401);
  });
  it('a wrong key: 403', async () => {
    const res = await invalidate(body, { 'x-cache-invalidation-key': `${KEY}x` });
    expect(res.status).toBe(403);
    expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'FORBIDDEN', reason: 'WRONG_KEY' });
  });
  it('the right key, or an ADMIN session: 200', async () => {
    expect((await invalidate(body)).status).toBe(200);
    expect((await invalidate(body, { authorization: `Bearer ${admin}` })).status).toBe(200);
  });
});

describe('bad input: a 400 with a reason, nothing voided', () => {
  const cases: [string, unknown, string][] = [
    ['an unknown type', { entities: [{ type: 'Widget', id: product(1) }] }, 'UNKNOWN_TYPE'],
    ['an id that is no ObjectId', { entities: [{ type: 'Product', id: 'abc' }] }, 'BAD_ID'],
    ['an unknown tag', { tags: ['everything'] }, 'UNKNOWN_TAG'],
    ['an empty batch', { entities: [], tags: [] }, 'EMPTY_BATCH'],
    [
      'a batch over 1,000 items',
      { entities: Array.from({ length: 1_001 }, (_, i) => ({ type: 'Product', id: product(i) })) },
      'BATCH_TOO_LARGE',
    ],
    ['a body of the wrong shape', { entities: 'Product' }, 'MALFORMED'],
    ['a body that is not JSON', '{"entities": [', 'MALFORMED'],
  ];
  it.each(cases)('%s', async (_name, body, reason) => {
    const res = await invalidate(body);
    expect(res.status).toBe(400);
    expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason });
  });
});

describe('rate limit', () => {
  it(`past ${PER_MINUTE} calls a minute from one address: 429 with Retry-After, authorised or not`, async () => {
    const statuses: number[] = [];
    let retryAfter: string | undefined;
    for (let i = 0; i <= PER_MINUTE; i += 1) {
      const res = await postFrom<Answer['body']>(
        t.url,
        '127.0.0.9',
        { tags: ['catalog:books'] },
        { 'x-cache-invalidation-key': KEY },
        '/cache/invalidate',
      );
      statuses.push(res.status);
      retryAfter = res.retryAfter;
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(PER_MINUTE);
    expect(statuses.at(-1)).toBe(429);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    // Another address is not limited by it.
    expect((await invalidate({ tags: ['catalog:books'] })).status).toBe(200);
  });
});

/** Runs `npm run cache:invalidate -- <args>` as the script itself (node with tsx), with `env` added. */
function cli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'scripts/cache-invalidate.ts', ...args],
      { env: { ...process.env, ...env } },
      (error, stdout, stderr) => {
        resolve({ code: typeof error?.code === 'number' ? error.code : error ? 1 : 0, stdout, stderr });
      },
    );
  });
}

describe('npm run cache:invalidate', () => {
  it('voids an outside write from a shell, through the running server', async () => {
    const id = product(7);
    const stored = `{ product(id: "${id}") { priceCents } }`;
    const before = (await warm(stored)).body.data?.product.priceCents as number;
    await ProductModel.updateOne({ _id: id }, { $set: { priceCents: before + 7 } });
    expect((await t.gql(stored)).body.data?.product.priceCents).toBe(before);

    const run = await cli([`Product:${id}`, 'tag:catalog', '--url', t.url], { CACHE_INVALIDATION_KEY: KEY });
    expect(run.code).toBe(0);
    const answer = JSON.parse(run.stdout) as Answer['body'];
    expect(answer.voided?.entities).toEqual({ Product: [id] });
    expect(answer.voided?.tags).toContain('ProductList:_all:catalog');
    const after = await t.gql(stored);
    expect(responseOf(after)).toBe('MISS');
    expect(after.body.data?.product.priceCents).toBe(before + 7);
  });

  it('exits 1 with the server refusal (a wrong key, a bad id), 2 on bad arguments or no key', async () => {
    const wrongKey = await cli([`Product:${product(7)}`], { CACHE_INVALIDATE_URL: t.url, CACHE_INVALIDATION_KEY: `${KEY}x` });
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr).toContain('WRONG_KEY');
    const badId = await cli(['Product:nope', `--url=${t.url}`], { CACHE_INVALIDATION_KEY: KEY });
    expect(badId.code).toBe(1);
    expect(badId.stderr).toContain('BAD_ID');
    expect((await cli(['catalog'], { CACHE_INVALIDATION_KEY: KEY })).code).toBe(2);
    expect((await cli([`Product:${product(7)}`], { CACHE_INVALIDATION_KEY: '' })).code).toBe(2);
  });
});

describe('outsideWritesPlugin, for another service that shares the models', () => {
  /** The product model as another service would have it: its own connection, the plugin posting to the API. */
  async function otherService() {
    const connection = await mongoose.createConnection(t.config.mongodbUri ?? '').asPromise();
    const schema = ProductModel.schema.clone();
    schema.plugin(outsideWritesPlugin, {
      type: 'Product',
      invalidate: httpInvalidator({ url: t.url, key: KEY }),
      lists: { fields: ['category', 'deletedAt'], tag: 'catalog' },
    });
    return { connection, Product: connection.model<ProductDoc>('Product', schema) };
  }

  it('its updateOne and findOneAndUpdate show on the next read, versions kept, lists too', async () => {
    const { connection, Product } = await otherService();
    try {
      const id = product(11);
      const stored = `{ product(id: "${id}") { priceCents } }`;
      const before = (await warm(stored)).body.data?.product.priceCents as number;
      const version = (await ProductModel.findById(id).lean())?.version ?? 0;
      await Product.updateOne({ _id: id }, { $set: { priceCents: before + 11 } });
      expect((await ProductModel.findById(id).lean())?.version).toBe(version + 1);
      const read = await t.gql(stored);
      expect(responseOf(read)).toBe('MISS');
      expect(read.body.data?.product.priceCents).toBe(before + 11);

      const moved = await Product.findById(id).lean();
      const target = moved?.category === 'kitchen' ? 'music' : 'kitchen';
      const list = `{ products(category: "${target}", first: 50) { edges { node { id } } } }`;
      const ids = (res: Res) => (res.body.data?.products.edges as { node: { id: string } }[]).map((e) => e.node.id);
      expect(ids(await warm(list))).not.toContain(id);
      await Product.findOneAndUpdate({ _id: id }, { $set: { category: target } });
      expect(ids(await t.gql(list))).toContain(id);
    } finally {
      await connection.close();
    }
  });
});
