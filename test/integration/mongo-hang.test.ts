import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedMongo, type EmbeddedMongo } from '../../src/dev/embedded-mongo.js';
import { createLogger } from '../../src/logger.js';
import { OrderModel, ProductModel, ReservationModel, ReviewModel } from '../../src/models/index.js';
import { recoverReservations } from '../../src/services/order.service.js';
import { startMongoProxy, type MongoProxy } from '../helpers/mongo-proxy.js';
import { USER_PASSWORD, errorCodes, startTestApp, type GqlResponse, type TestApp } from '../helpers/test-app.js';
import { until } from '../helpers/wait.js';

// A MongoDB that stops answering (a stalled server, a network partition) must not hang requests:
// every operation fails within MONGODB_TIMEOUT_MS, and a write whose reply never came says its
// outcome is unknown instead of "nothing was changed".
const TIMEOUT_MS = 1_500;
/**
 * Slack for this shared 2-core machine: HTTP, Redis, the driver's retry back-off (2.5 s seen
 * under a loaded CI). Without the timeout the requests would wait for the whole stall, which
 * ends only when the test resumes MongoDB.
 */
const MARGIN_MS = 2_000;

const product = (n: number): string => `5eed0001${n.toString(16).padStart(16, '0')}`;

let mongo: EmbeddedMongo;
let proxy: MongoProxy;
let t: TestApp;
let stopped = false;
beforeAll(async () => {
  // A FerretDB of this test's own (to pause it), behind a proxy that can lose a chosen reply.
  mongo = await startEmbeddedMongo({ logger: createLogger({ level: 'silent' }), prefer: 'ferretdb' });
  proxy = await startMongoProxy(mongo.uri.replace('mongodb://', ''));
  t = await startTestApp({
    // REQUEST_TRACE=writes, as in production: only requests that may write count their MongoDB
    // commands, and a failed one must still know whether it wrote (trace.ts).
    env: { MONGODB_URI: `${proxy.uri}/hang`, MONGODB_TIMEOUT_MS: String(TIMEOUT_MS), REQUEST_TRACE: 'writes' },
    seed: { users: 4, products: 12, reviews: 20, orders: 0 },
  });
});
afterAll(async () => {
  if (stopped && mongo.pid) process.kill(mongo.pid, 'SIGCONT');
  await t.stop().catch(() => undefined);
  await proxy.stop();
  await mongo.stop();
});

/** A request and how long it took to answer, in milliseconds. */
async function timed<T>(request: () => Promise<GqlResponse<T>>): Promise<{ res: GqlResponse<T>; ms: number }> {
  const started = Date.now();
  const res = await request();
  return { res, ms: Date.now() - started };
}

function extensionsOf(res: GqlResponse): Record<string, unknown> {
  return res.body.errors?.[0]?.extensions ?? {};
}

describe('a hung MongoDB (SIGSTOP)', () => {
  it('answers DATABASE_UNAVAILABLE within MONGODB_TIMEOUT_MS for the whole stall, and recovers after it', async () => {
    expect(mongo.pid).toBeTruthy();
    const token = await t.login('user1@example.com', USER_PASSWORD);
    // The viewer and a product in Redis, so that createReview reaches its insert.
    await t.gql('{ viewer { id } }', {}, token);
    await t.gql(`{ product(id: "${product(2)}") { id reviewCount } }`);

    process.kill(mongo.pid ?? 0, 'SIGSTOP');
    stopped = true;
    try {
      const stalledAt = Date.now();
      const [login, read, view, review] = await Promise.all([
        timed(() =>
          t.gql('mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }', {
            e: 'user2@example.com',
            p: USER_PASSWORD,
          }),
        ),
        timed(() => t.gql(`{ product(id: "${product(5)}") { id name } }`)),
        timed(() => t.gql(`mutation { recordProductView(id: "${product(6)}") { viewCount } }`)),
        timed(() => t.gql(`mutation { createReview(input: { productId: "${product(2)}", rating: 4 }) { id } }`, {}, token)),
      ]);
      for (const { res, ms } of [login, read, view, review]) {
        expect(errorCodes(res)).toEqual(['DATABASE_UNAVAILABLE']);
        expect(ms).toBeLessThan(TIMEOUT_MS + MARGIN_MS);
        expect(JSON.stringify(res.body)).not.toMatch(/Mongo\w*Error|stacktrace/);
      }
      // Nothing was sent for these: they failed reading.
      for (const { res } of [login, read, view]) {
        expect(res.body.errors?.[0]?.message).toMatch(/nothing was changed/);
        expect(extensionsOf(res).reason).toBeUndefined();
      }
      // The review's insert was sent and never answered: it may or may not be applied.
      expect(extensionsOf(review.res).reason).toBe('OUTCOME_UNKNOWN');
      expect(review.res.body.errors?.[0]?.message).toMatch(/may or may not have been applied/);

      // Later in the stall too (once the driver has marked the server unknown: its heartbeat is 10 s).
      let n = 7;
      while (Date.now() - stalledAt < 12_000) {
        const { res, ms } = await timed(() => t.gql(`{ product(id: "${product(n)}") { id } }`));
        expect(errorCodes(res)).toEqual(['DATABASE_UNAVAILABLE']);
        expect(ms).toBeLessThan(TIMEOUT_MS + MARGIN_MS);
        n = n === 11 ? 7 : n + 1;
      }
    } finally {
      process.kill(mongo.pid ?? 0, 'SIGCONT');
      stopped = false;
    }
    await until(async () => (await t.gql(`{ product(id: "${product(5)}") { id } }`)).body.data?.product?.id === product(5), {
      what: 'reads to recover',
      timeoutMs: 15_000,
    });
    expect((await t.login('user2@example.com', USER_PASSWORD)).length).toBeGreaterThan(10);
    const viewed = await t.gql(`mutation { recordProductView(id: "${product(6)}") { viewCount } }`);
    expect(viewed.body.errors).toBeUndefined();
  }, 60_000);
});

describe('a write whose reply is lost', () => {
  it('createReview: an insert whose reply is lost is read back, counted once, and the cached count follows', async () => {
    const token = await t.login('user3@example.com', USER_PASSWORD);
    await t.gql('{ viewer { id } }', {}, token);
    const query = `{ product(id: "${product(3)}") { reviewCount } }`;
    const before = (await t.gql<{ product: { reviewCount: number } }>(query)).body.data?.product.reviewCount ?? -1;
    expect(before).toBeGreaterThanOrEqual(0);

    const lost = proxy.loseReplyTo('insert', 'reviews');
    const { res, ms } = await timed(() =>
      t.gql<{ createReview: { id: string } }>(
        `mutation { createReview(input: { productId: "${product(3)}", rating: 5 }) { id } }`,
        {},
        token,
      ),
    );
    await lost;
    // The insert was applied: the service reads it back and answers with it, after the deadline.
    expect(res.body.errors).toBeUndefined();
    expect(ms).toBeGreaterThanOrEqual(TIMEOUT_MS - MARGIN_MS);
    expect(await ReviewModel.countDocuments({ product: product(3) })).toBe(before + 1);
    expect((await ReviewModel.findById(res.body.data?.createReview.id).lean().exec())?.counting ?? null).toBeNull();
    expect((await ProductModel.findById(product(3)).lean().exec())?.reviewCount).toBe(before + 1);
    expect((await t.gql<{ product: { reviewCount: number } }>(query)).body.data?.product.reviewCount).toBe(before + 1);
  });

  it('placeOrder: an order insert that committed is not reported as "nothing was changed"', async () => {
    const token = await t.login('user1@example.com', USER_PASSWORD);
    const stockOf = async (): Promise<number> =>
      (await t.gql<{ product: { stock: number } }>(`{ product(id: "${product(4)}") { stock } }`)).body.data?.product.stock ?? -1;
    const stock = await stockOf();
    expect(stock).toBeGreaterThan(1);

    const lost = proxy.loseReplyTo('insert', 'orders');
    const res = await t.gql<{ placeOrder: { id: string; totalCents: number } }>(
      `mutation { placeOrder(items: [{ productId: "${product(4)}", quantity: 1 }]) { id totalCents } }`,
      {},
      token,
    );
    await lost;
    // The order exists: the service reads it back and answers with it.
    expect(res.body.errors).toBeUndefined();
    const id = res.body.data?.placeOrder.id ?? '';
    expect(await OrderModel.exists({ _id: id })).not.toBeNull();
    expect(await ReservationModel.exists({ _id: id })).toBeNull();
    expect((await ProductModel.findById(product(4)).lean().exec())?.holds ?? []).toEqual([]);
    expect(await stockOf()).toBe(stock - 1);
    const orders = await t.gql<{ viewer: { orders: { id: string }[] } }>('{ viewer { orders(first: 50) { id } } }', {}, token);
    expect(orders.body.data?.viewer.orders.map((o) => o.id)).toContain(id);
  });

  it('placeOrder: a reservation whose reply is lost is left to recovery, and the order says it was not placed', async () => {
    const token = await t.login('user2@example.com', USER_PASSWORD);
    const stockOf = async (): Promise<number> =>
      (await t.gql<{ product: { stock: number } }>(`{ product(id: "${product(8)}") { stock } }`)).body.data?.product.stock ?? -1;
    const stock = await stockOf();
    const ordersBefore = await OrderModel.countDocuments({});

    const lost = proxy.loseReplyTo('findAndModify', 'products'); // the reservation (services/update-by-id.ts);
    const res = await t.gql(`mutation { placeOrder(items: [{ productId: "${product(8)}", quantity: 2 }]) { id } }`, {}, token);
    await lost;
    expect(errorCodes(res)).toEqual(['DATABASE_UNAVAILABLE']);
    expect(res.body.errors?.[0]?.message).toMatch(/not placed/);
    expect(await OrderModel.countDocuments({})).toBe(ordersBefore);
    // The reservation was applied and is held for recovery, which gives the stock back.
    expect(await ReservationModel.countDocuments({})).toBe(1);
    expect((await ProductModel.findById(product(8)).lean().exec())?.stock).toBe(stock - 2);
    const recovered = await recoverReservations({
      logger: createLogger({ level: 'silent' }),
      documentLock: t.app.documentLock,
      cache: t.app.cache,
      olderThanMs: 0,
    });
    expect(recovered).toBe(1);
    expect(await stockOf()).toBe(stock);
  });
});
