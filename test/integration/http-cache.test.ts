import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, USER_PASSWORD, startTestApp, type TestApp } from '../helpers/test-app.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.stop());

/** A GET query (Apollo's CSRF protection wants a preflight-forcing header on GETs). */
function get(params: Record<string, unknown>, headers: Record<string, string> = {}): Promise<Response> {
  const search = new URLSearchParams(
    Object.entries(params).map(([k, v]): [string, string] => [k, typeof v === 'string' ? v : JSON.stringify(v)]),
  );
  return fetch(`${t.url}/graphql?${search}`, { headers: { 'apollo-require-preflight': 'true', ...headers } });
}

describe('HTTP caching', () => {
  it('Cache-Control follows the hints: public for public data, private and revalidated once a PRIVATE field is touched', async () => {
    const publicRes = await t.gql('{ product(id: "5eed00010000000000000001") { name reviewCount } }');
    // Kept, but revalidated on every reuse: a max-age would let a browser show a replaced value.
    expect(publicRes.headers.get('cache-control')).toBe('no-cache, public');
    const token = await t.login('user1@example.com', USER_PASSWORD);
    const privateRes = await t.gql('{ user(id: "5eed00000000000000000001") { name email } }', {}, token);
    // No max-age: a browser asks again (If-None-Match) rather than answer the next user from it.
    expect(privateRes.headers.get('cache-control')).toBe('private, no-cache');
    const viewer = await t.gql('{ viewer { name } }', {}, token);
    expect(viewer.headers.get('cache-control')).toBe('no-store');
    const mutation = await t.gql('mutation { recordProductView(id: "5eed00010000000000000001") { viewCount } }');
    expect(mutation.headers.get('cache-control')).toBe('no-store');
    const withOrders = await t.gql('{ user(id: "5eed00000000000000000001") { orders { id } } }', {}, token);
    expect(withOrders.headers.get('cache-control')).toMatch(/private|no-store/);
  });

  it('every /graphql response varies by Authorization: executed, stored (the fast path), 304, errors', async () => {
    const token = await t.login('user1@example.com', USER_PASSWORD);
    const privateQuery = '{ user(id: "5eed00000000000000000001") { email orders { id } } }';
    const executed = await get({ query: privateQuery }, { authorization: `Bearer ${token}` });
    expect(executed.headers.get('cache-control')).toBe('private, no-cache');
    const etag = executed.headers.get('etag') ?? '';
    const notModified = await get({ query: privateQuery }, { authorization: `Bearer ${token}`, 'if-none-match': etag });
    expect(notModified.status).toBe(304);
    // POSTed twice: the second is a stored response, sent by the fast path before Apollo.
    const publicQuery = '{ product(id: "5eed00010000000000000004") { name } }';
    await t.gql(publicQuery);
    const stored = await t.gql(publicQuery);
    expect(stored.body.extensions?.cache?.response).toBe('HIT');
    const storedPrivate = await t.gql(privateQuery, {}, token);
    const storedPrivateAgain = await t.gql(privateQuery, {}, token);
    expect(storedPrivateAgain.body.extensions?.cache?.response).toBe('HIT');
    const failed = await get({ query: '{ nope }' });
    const unprotected = await fetch(`${t.url}/graphql?query=${encodeURIComponent(publicQuery)}`);
    const responses = { executed, notModified, stored, storedPrivate, storedPrivateAgain, failed, unprotected };
    const seen = Object.fromEntries(
      Object.entries(responses).map(([name, res]) => [name, { status: res.status, vary: res.headers.get('vary') }]),
    );
    expect(seen).toEqual({
      executed: { status: 200, vary: 'Authorization' },
      notModified: { status: 304, vary: 'Authorization' },
      stored: { status: 200, vary: 'Authorization' },
      storedPrivate: { status: 200, vary: 'Authorization' },
      storedPrivateAgain: { status: 200, vary: 'Authorization' },
      failed: { status: 400, vary: 'Authorization' },
      unprotected: { status: 400, vary: 'Authorization' },
    });
    // A stored private response says what the executed one says.
    expect(storedPrivateAgain.headers.get('cache-control')).toBe('private, no-cache');
    expect(notModified.headers.get('cache-control')).toBe('private, no-cache');
  });

  it('GET queries get an ETag, and If-None-Match is answered 304 until the data changes, as fetch sends it', async () => {
    const query = '{ product(id: "5eed00010000000000000002") { name reviewCount priceCents } }';
    const first = await get({ query });
    expect(first.status).toBe(200);
    const etag = first.headers.get('etag') ?? '';
    expect(etag).toMatch(/^"[\w-]{32}"$/);
    // fetch sends Cache-Control: no-cache with a conditional request (the Fetch standard); the
    // origin answers by the validator all the same.
    const again = await get({ query }, { 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
    const token = await t.login('user2@example.com', USER_PASSWORD);
    await t.gql('mutation { createReview(input: { productId: "5eed00010000000000000002", rating: 3 }) { id } }', {}, token);
    const changed = await get({ query }, { 'if-none-match': etag });
    expect(changed.status).toBe(200);
    expect(changed.headers.get('etag')).not.toBe(etag);
    const admin = await t.login(ADMIN.email, ADMIN.password);
    const updated = await t.gql<{ updateProduct: { priceCents: number } }>(
      'mutation { updateProduct(id: "5eed00010000000000000002", input: { priceCents: 10947 }) { priceCents } }',
      {},
      admin,
    );
    expect(updated.body.data?.updateProduct.priceCents).toBe(10947);
    const priced = await get({ query }, { 'if-none-match': changed.headers.get('etag') ?? '' });
    const body = (await priced.json()) as { data: { product: { priceCents: number } } };
    expect({ status: priced.status, priceCents: body.data.product.priceCents }).toEqual({ status: 200, priceCents: 10947 });
    expect(priced.headers.get('etag')).not.toBe(changed.headers.get('etag'));
  });

  it('an unmatched If-None-Match is a 200; a weak one of the same tag matches (If-None-Match compares weakly)', async () => {
    const query = '{ product(id: "5eed00010000000000000003") { name } }';
    const etag = (await get({ query })).headers.get('etag') ?? '';
    expect((await get({ query }, { 'if-none-match': '"not-this-one"' })).status).toBe(200);
    expect((await get({ query }, { 'if-none-match': `W/${etag}` })).status).toBe(304);
  });
});

describe('POST answers', () => {
  it('carry no ETag, executed or stored (Express would add a weak one to every body)', async () => {
    const query = '{ product(id: "5eed00010000000000000004") { id name } }';
    const post = () =>
      fetch(`${t.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) });
    const executed = await post();
    const stored = await post();
    expect(((await stored.json()) as { extensions?: { cache?: { response?: string } } }).extensions?.cache?.response).toBe('HIT');
    expect([executed.headers.get('etag'), stored.headers.get('etag')]).toEqual([null, null]);
    // A GET still has its strong one.
    expect((await get({ query })).headers.get('etag')).toMatch(/^"[\w-]{32}"$/);
  });
});

describe('automatic persisted queries in Redis', () => {
  it('registers a query by hash, then serves it by hash alone, over GET too', async () => {
    const query = '{ product(id: "5eed00010000000000000003") { id name } }';
    const sha256Hash = createHash('sha256').update(query).digest('hex');
    const extensions = { persistedQuery: { version: 1, sha256Hash } };
    const unknown = await get({ extensions });
    expect(((await unknown.json()) as { errors: { extensions: { code: string } }[] }).errors[0]?.extensions.code).toBe(
      'PERSISTED_QUERY_NOT_FOUND',
    );
    const register = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query, extensions }),
    });
    expect(((await register.json()) as { data: { product: { id: string } } }).data.product.id).toBe('5eed00010000000000000003');
    expect(await t.app.redis?.exists(t.app.cache.keys.persistedQuery(`apq:${sha256Hash}`))).toBe(1);
    const byHash = await get({ extensions });
    expect(byHash.status).toBe(200);
    expect(((await byHash.json()) as { data: { product: { name: string } } }).data.product.name).toBeTruthy();
    expect(byHash.headers.get('cache-control')).toBe('no-cache, public');
  });
});
