import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { ReviewModel, SessionModel } from '../../src/models/index.js';
import { hashToken } from '../../src/services/auth.service.js';
import { createTrace, currentTrace, runTraced, type RequestTrace } from '../../src/trace.js';
import { startMongoProxy, type MongoProxy } from '../helpers/mongo-proxy.js';
import { USER_PASSWORD, startTestApp, type TestApp } from '../helpers/test-app.js';
import { gate, sleep } from '../helpers/wait.js';

// REQUEST_TRACE=writes (trace.ts, server.ts), the cases a hostile review found: requests that
// write although they are queries (a session renewal), and a traced request that outlives its
// client (tracing must not end before the request does).

const TIMEOUT_MS = 1_500;
let proxy: MongoProxy;
let t: TestApp;
beforeAll(async () => {
  proxy = await startMongoProxy(inject('mongoBaseUri').replace('mongodb://', ''));
  t = await startTestApp({
    env: {
      MONGODB_URI: `${proxy.uri}/t_${randomBytes(6).toString('hex')}`,
      MONGODB_TIMEOUT_MS: String(TIMEOUT_MS),
      REQUEST_TRACE: 'writes',
    },
    seed: { users: 6, products: 6, reviews: 10, orders: 0 },
  });
});
afterAll(async () => {
  await t.stop();
  await proxy.stop();
});

const restores: (() => void)[] = [];
afterEach(() => {
  for (const restore of restores.splice(0).reverse()) restore();
});

const product = (i: number): string => `5eed0001${i.toString(16).padStart(16, '0')}`;

/** Makes the session of `token` due for renewal: older expiry in MongoDB, not cached. */
async function ageSession(token: string): Promise<Date> {
  const tokenHash = hashToken(token);
  const old = new Date(Date.now() + 60_000);
  await SessionModel.updateOne({ tokenHash }, { $set: { expiresAt: old } });
  await t.app.cache.core.invalidate([t.app.cache.values('session').key(tokenHash)]);
  return old;
}

async function getQuery(query: string, token?: string) {
  const response = await fetch(`${t.url}/graphql?query=${encodeURIComponent(query)}`, {
    headers: { 'apollo-require-preflight': 'true', ...(token ? { authorization: `Bearer ${token}` } : {}) },
  });
  return (await response.json()) as { data?: any; errors?: { message: string; extensions?: Record<string, unknown> }[]; extensions?: any };
}

describe('REQUEST_TRACE=writes: every request that writes runs traced', () => {
  it('an authenticated query (GET or POST), which may renew its session, runs traced', async () => {
    const token = await t.login('user1@example.com', USER_PASSWORD);
    const tokenHash = hashToken(token);
    const old = await ageSession(token);
    const { result, commands } = await t.countMongoCommands(() => getQuery('{ viewer { id } }', token));
    expect(result.errors).toBeUndefined();
    const renewed = await SessionModel.findOne({ tokenHash }).lean();
    // MongoDB was written (the session's expiry slid forward) ...
    expect(renewed!.expiresAt.getTime()).toBeGreaterThan(old.getTime());
    expect(commands).toBeGreaterThan(0);
    // ... by a request that ran traced: its MongoDB commands are counted.
    expect(result.extensions?.cache?.mongoCommands).not.toBeNull();
  });

  it('a query whose session renewal lost its reply does not say "nothing was changed"', async () => {
    const token = await t.login('user2@example.com', USER_PASSWORD);
    const tokenHash = hashToken(token);
    const old = await ageSession(token);
    const passed = proxy.loseReplyTo('update', 'sessions');
    const res = await t.gql('{ viewer { id } }', {}, token);
    await passed;
    const renewed = await SessionModel.findOne({ tokenHash }).lean();
    expect(renewed!.expiresAt.getTime()).toBeGreaterThan(old.getTime()); // the write was applied
    const error = res.body.errors?.[0];
    expect(error?.extensions?.code).toBe('DATABASE_UNAVAILABLE');
    // The renewal was sent and may have landed: OUTCOME_UNKNOWN, not "nothing was changed".
    expect({ message: error?.message, reason: error?.extensions?.reason }).toEqual({
      message: expect.not.stringContaining('nothing was changed'),
      reason: 'OUTCOME_UNKNOWN',
    });
  });

  it('a traced mutation whose client disconnects stays traced while it keeps writing', async () => {
    const token = await t.login('user3@example.com', USER_PASSWORD);
    await t.gql(`{ product(id: "${product(2)}") { id } }`);
    let trace: RequestTrace | undefined;
    let after: RequestTrace | undefined;
    const held = gate();
    const inserted = gate();
    const orig = ReviewModel.create.bind(ReviewModel);
    (ReviewModel as any).create = async (...args: any[]) => {
      trace = currentTrace();
      await held.pass();
      const result = await (orig as any)(...args);
      after = currentTrace();
      inserted.reach();
      return result;
    };
    restores.push(() => delete (ReviewModel as any).create);
    const abort = new AbortController();
    const request = fetch(`${t.url}/graphql`, {
      method: 'POST',
      signal: abort.signal,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: `mutation { createReview(input: { productId: "${product(2)}", rating: 2 }) { id } }` }),
    }).catch(() => undefined);
    await held.reached;
    expect(trace?.traced).toBe(true);
    const writesBefore = trace!.mongoWrites;
    abort.abort();
    await request;
    await sleep(200); // the server sees the socket close; the request goes on
    held.open();
    await inserted.reached;
    await sleep(500); // the settle steps
    // The insert and the settle were sent by this request, in its trace.
    expect(after).toBe(trace);
    expect(trace!.mongoWrites).toBeGreaterThan(writesBefore);
  });
});
