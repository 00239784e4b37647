import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ResponseStore, ResponseTicket } from 'graphql-lease-cache';
import { ADMIN, USER_PASSWORD, type GqlResponse } from '../helpers/test-app.js';
import { metricsText } from '../helpers/metrics.js';
import { usePrivateRedisApp } from '../helpers/private-redis-app.js';
import { gate, sleep } from '../helpers/wait.js';

// The whole-response layer (CACHE_RESPONSES=true): a warm repeat is one Redis round trip and no
// MongoDB command, and no query returns a response older than a mutation that had returned.

const { redis, t } = usePrivateRedisApp({
  env: { CACHE_RESPONSES: 'true', WRITE_BEHIND_WORKER: 'false' },
  seed: { users: 12, products: 30, reviews: 120, orders: 10 },
});
let admin: string;
beforeAll(async () => {
  admin = await t.login(ADMIN.email, ADMIN.password);
});

const product = (i: number): string => `5eed0001${i.toString(16).padStart(16, '0')}`;
const user = (i: number): string => `5eed0000${i.toString(16).padStart(16, '0')}`;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the test helper's own default
type Res = GqlResponse<Record<string, any>>;
const responseOf = (res: GqlResponse): unknown => res.body.extensions?.cache?.response;

/** Runs `query` until it is a response-cache hit (at most 3 times), and returns that hit. */
async function warm(query: string, token?: string): Promise<Res> {
  for (let i = 0; i < 3; i += 1) {
    const res = await t.gql(query, {}, token);
    expect(res.body.errors).toBeUndefined();
    if (responseOf(res) === 'HIT') return res;
  }
  throw new Error(`never a response-cache hit: ${query}`);
}

describe('whole responses', () => {
  it('a warm repeat is one Redis round trip, no MongoDB command, and the same data and headers', async () => {
    const query =
      '{ products(first: 10) { edges { node { id name priceCents reviewCount reviews(first: 2) { rating author { name } } } } } }';
    const executed = await t.gql(query);
    expect(responseOf(executed)).toBe('MISS');
    await redis.resetStats();
    const { result: hit, commands } = await t.countMongoCommands(() => t.gql(query));
    expect(responseOf(hit)).toBe('HIT');
    expect(await redis.scriptCalls()).toBe(1);
    expect(commands).toBe(0);
    expect(hit.body.data).toEqual(executed.body.data);
    // The same headers as the executed response (answered before Apollo's pipeline, as a JSON POST is).
    const headersOf = (res: Res) =>
      Object.fromEntries([...res.headers].filter(([name]) => !['date', 'etag', 'content-length'].includes(name)));
    expect(headersOf(hit)).toEqual(headersOf(executed));
    expect(hit.headers.get('cache-control')).toBe('no-cache, public');
    // GET: the same ETag, and 304 for it
    const url = `${t.url}/graphql?query=${encodeURIComponent(query)}`;
    const first = await fetch(url, { headers: { 'apollo-require-preflight': 'true' } });
    const again = await fetch(url, { headers: { 'apollo-require-preflight': 'true' } });
    expect(again.headers.get('etag')).toBe(first.headers.get('etag'));
    // A revalidation as fetch sends it (with Cache-Control: no-cache): a 304 from the stored
    // response, one Redis round trip and no MongoDB command.
    await redis.resetStats();
    const { result: notModified, commands: revalidationCommands } = await t.countMongoCommands(() =>
      fetch(url, { headers: { 'apollo-require-preflight': 'true', 'if-none-match': first.headers.get('etag') ?? '' } }),
    );
    expect({ status: notModified.status, scripts: await redis.scriptCalls(), commands: revalidationCommands }).toEqual({
      status: 304,
      scripts: 1,
      commands: 0,
    });
  });

  it('every mutation is seen by the next query, never a stored older response', async () => {
    const reviewer = await t.login('user3@example.com', USER_PASSWORD);
    const steps: {
      query: string;
      mutate: () => Promise<Res>;
      read: (res: Res) => unknown;
      expected: (before: unknown) => unknown;
    }[] = [
      {
        query: `{ product(id: "${product(2)}") { priceCents } }`,
        mutate: () => t.gql(`mutation { updateProduct(id: "${product(2)}", input: { priceCents: 424242 }) { id } }`, {}, admin),
        read: (res) => res.body.data?.product.priceCents,
        expected: () => 424242,
      },
      {
        query: `{ product(id: "${product(3)}") { reviewCount reviews(first: 1) { rating } } }`,
        mutate: () => t.gql(`mutation { createReview(input: { productId: "${product(3)}", rating: 1 }) { id } }`, {}, reviewer),
        read: (res) => res.body.data?.product.reviewCount,
        expected: (before) => (before as number) + 1,
      },
      {
        query: `{ product(id: "${product(4)}") { viewCount } }`,
        mutate: () => t.gql(`mutation { recordProductView(id: "${product(4)}") { viewCount } }`),
        read: (res) => res.body.data?.product.viewCount,
        expected: (before) => (before as number) + 1,
      },
      {
        query: '{ products(first: 3) { edges { node { name } } } }',
        mutate: () =>
          t.gql('mutation { createProduct(input: { name: "Brand new", priceCents: 5, category: "toys", stock: 1 }) { id } }', {}, admin),
        read: (res) => res.body.data?.products.edges[0].node.name,
        expected: () => 'Brand new',
      },
      {
        query: `{ user(id: "${user(5)}") { name } }`,
        mutate: async () =>
          t.gql(
            `mutation { updateUser(id: "${user(5)}", input: { name: "Renamed Five" }) { id } }`,
            {},
            await t.login('user5@example.com', USER_PASSWORD),
          ),
        read: (res) => res.body.data?.user.name,
        expected: () => 'Renamed Five',
      },
      {
        query: `{ product(id: "${product(7)}") { stock } }`,
        mutate: () =>
          t.gql(
            'mutation($items: [OrderItemInput!]!) { placeOrder(items: $items) { id } }',
            { items: [{ productId: product(7), quantity: 2 }] },
            reviewer,
          ),
        read: (res) => res.body.data?.product.stock,
        expected: (before) => (before as number) - 2,
      },
      {
        query: `{ product(id: "${product(6)}") { id } }`,
        mutate: () => t.gql(`mutation { deleteProduct(id: "${product(6)}") }`, {}, admin),
        read: (res) => res.body.data?.product,
        expected: () => null,
      },
      {
        query: `{ user(id: "${user(9)}") { name reviewCount } }`,
        mutate: () => t.gql(`mutation { deleteUser(id: "${user(9)}") }`, {}, admin),
        read: (res) => res.body.data?.user,
        expected: () => null,
      },
    ];
    for (const step of steps) {
      const before = step.read(await warm(step.query));
      const mutated = await step.mutate();
      expect(mutated.body.errors).toBeUndefined();
      const after = await t.gql(step.query);
      expect({ query: step.query, value: step.read(after), response: responseOf(after) }).toEqual({
        query: step.query,
        value: step.expected(before),
        response: 'MISS',
      });
    }
  });

  it('PRIVATE responses are kept per viewer, never cross, never reach an anonymous request, and end with the session', async () => {
    const query = `{ user(id: "${user(1)}") { email } }`;
    const owner = await t.login('user1@example.com', USER_PASSWORD);
    const other = await t.login('user2@example.com', USER_PASSWORD);
    const mine = await warm(query, owner);
    expect(mine.body.data?.user.email).toBe('user1@example.com');
    expect(mine.headers.get('cache-control')).toMatch(/private/);
    const theirs = await warm(query, other);
    expect(theirs.body.data?.user.email).toBeNull();
    expect(responseOf(await t.gql(query, {}, owner))).toBe('HIT');
    for (let i = 0; i < 2; i += 1) {
      // Never stored for an anonymous request, so never served to one.
      const anonymous = await t.gql(query);
      expect({ response: responseOf(anonymous), email: anonymous.body.data?.user.email }).toEqual({ response: 'MISS', email: null });
    }
    // Signing out voids the stored response with the session: the token now opens nothing.
    expect((await t.gql('mutation { logout }', {}, owner)).body.data?.logout).toBe(true);
    const after = await t.gql(query, {}, owner);
    expect({ response: responseOf(after), email: after.body.data?.user.email }).toEqual({ response: 'MISS', email: null });
    // A PUBLIC query of an authenticated request is kept per token.
    const name = `{ user(id: "${user(1)}") { name } }`;
    expect(responseOf(await warm(name, other))).toBe('HIT');
    expect(responseOf(await t.gql(name, {}, await t.login('user3@example.com', USER_PASSWORD)))).toBe('MISS');
  });

  it('a hash-only persisted query (GET) is answered from the stored response', async () => {
    const query = `{ product(id: "${product(12)}") { name priceCents reviewCount } }`;
    const sha256Hash = createHash('sha256').update(query).digest('hex');
    const extensions = JSON.stringify({ persistedQuery: { version: 1, sha256Hash } });
    const get = () =>
      fetch(`${t.url}/graphql?extensions=${encodeURIComponent(extensions)}`, { headers: { 'apollo-require-preflight': 'true' } });
    const unknown = (await (await get()).json()) as { errors?: { extensions?: { code?: string } }[] };
    expect(unknown.errors?.[0]?.extensions?.code).toBe('PERSISTED_QUERY_NOT_FOUND');
    const registered = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query, extensions: { persistedQuery: { version: 1, sha256Hash } } }),
    });
    const executed = (await registered.json()) as Res['body'];
    expect(responseOf({ body: executed } as Res)).toBe('MISS');
    await redis.resetStats();
    const { result, commands } = await t.countMongoCommands(async () => {
      const res = await get();
      return { status: res.status, cacheControl: res.headers.get('cache-control'), body: (await res.json()) as Res['body'] };
    });
    expect({ status: result.status, response: result.body.extensions?.cache?.response, commands }).toEqual({
      status: 200,
      response: 'HIT',
      commands: 0,
    });
    expect(result.body.data).toEqual(executed.data);
    expect(result.cacheControl).toBe('no-cache, public');
    // One round trip for the persisted query's text, one for the response (its script).
    expect(result.body.extensions?.cache?.redisRoundTrips).toBe(2);
    expect(await redis.scriptCalls()).toBe(1);
  });

  it('a view voids only the responses that show the view count', async () => {
    const id = product(11);
    const withoutViews = `{ product(id: "${id}") { name priceCents } }`;
    const page = '{ products(first: 20) { edges { node { id name } } } }';
    const withViews = `{ product(id: "${id}") { name viewCount } }`;
    const throughFragment = `query { product(id: "${id}") { ...Counted } } fragment Counted on Product { viewCount }`;
    for (const query of [withoutViews, page, withViews, throughFragment]) await warm(query);
    const before = (await t.gql(withViews)).body.data?.product.viewCount as number;
    const viewed = await t.gql(`mutation { recordProductView(id: "${id}") { viewCount } }`);
    expect(viewed.body.data?.recordProductView.viewCount).toBe(before + 1);
    expect(responseOf(await t.gql(withoutViews))).toBe('HIT');
    expect(responseOf(await t.gql(page))).toBe('HIT');
    for (const query of [withViews, throughFragment]) {
      const res = await t.gql(query);
      expect({ query, response: responseOf(res), views: res.body.data?.product.viewCount }).toEqual({
        query,
        response: 'MISS',
        views: before + 1,
      });
    }
    // A change of another field (the name) voids them all.
    const renamed = await t.gql(`mutation { updateProduct(id: "${id}", input: { name: "Renamed eleven" }) { name } }`, {}, admin);
    expect(renamed.body.errors).toBeUndefined();
    for (const query of [withoutViews, withViews]) {
      const res = await t.gql(query);
      expect({ query, response: responseOf(res), name: res.body.data?.product.name }).toEqual({
        query,
        response: 'MISS',
        name: 'Renamed eleven',
      });
    }
  });

  it('a response whose computation overlapped a returned mutation is not stored (forced)', async () => {
    const query = `{ product(id: "${product(8)}") { priceCents } }`;
    const responses = t.app.cache.core.responses as ResponseStore;
    const original = responses.store.bind(responses);
    const held = gate();
    // The computation is held after its reads, just before it stores its response.
    responses.store = async (
      ticket: ResponseTicket,
      ...rest: Parameters<ResponseStore['store']> extends [unknown, ...infer R] ? R : never
    ) => {
      await held.pass();
      return original(ticket, ...rest);
    };
    try {
      const reading = t.gql(query);
      await held.reached;
      const updated = await t.gql(`mutation { updateProduct(id: "${product(8)}", input: { priceCents: 777 }) { priceCents } }`, {}, admin);
      expect(updated.body.data?.updateProduct.priceCents).toBe(777);
      held.open();
      expect((await reading).body.data?.product.priceCents).not.toBe(777); // it read before the write
    } finally {
      responses.store = original;
    }
    const after = await t.gql(query);
    expect(after.body.data?.product.priceCents).toBe(777);
    expect(responseOf(after)).toBe('MISS');
  });

  it('hits and misses are counted under their own name', async () => {
    const stats = (await t.gql('{ cacheStats { byType { name hits misses } } }')).body.data?.cacheStats.byType;
    const response = stats.find((s: { name: string }) => s.name === 'Response');
    expect(response.hits).toBeGreaterThan(5);
    expect(response.misses).toBeGreaterThan(5);
    const metrics = await metricsText(`${t.url}/metrics`);
    expect(metrics).toMatch(/^cache_hits_total\{name="Response"\} \d+/m);
  });

  // Last in this file: it pauses the Redis that the others use.
  it('a Redis that does not answer: the query is executed (BYPASS) and answers from MongoDB', async () => {
    const query = `{ product(id: "${product(11)}") { name priceCents } }`;
    const warmed = await warm(query);
    await redis.client.call('CLIENT', 'PAUSE', '1500', 'ALL');
    try {
      const res = await t.gql(query);
      expect(res.body.errors).toBeUndefined();
      expect(res.body.data).toEqual(warmed.body.data);
      expect(responseOf(res)).not.toBe('HIT');
    } finally {
      await sleep(1_600);
    }
  });
});
