import mongoose, { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReviewModel } from '../../src/models/index.js';
import { metricValue } from '../helpers/metrics.js';
import { ADMIN, errorCodes, startTestApp, type GqlResponse, type TestApp } from '../helpers/test-app.js';

// A storm of anonymous reads of a product's reviews (allowed by the cost limit) must not fail
// writes: on FerretDB, 16 readers of reviews(first: 100), each a scan of every review, took the
// server from the writes, and updateProduct, updateUser and recordProductView failed with
// DATABASE_UNAVAILABLE. Now the query uses the product index (children-index.test.ts) and at most
// MONGODB_MAX_CONCURRENT_READS reads of queries run at once per instance; the rest wait, then get
// SERVER_BUSY; a mutation's reads and writes never wait there.

const product = (i: number): string => `5eed0001${i.toString(16).padStart(16, '0')}`;
const READERS = 16;

/** Adds `count` reviews of `productId` straight into the test's own database. */
async function addReviews(productId: string, count: number): Promise<void> {
  const author = new Types.ObjectId();
  const docs = Array.from({ length: count }, (_, i) => ({
    product: new Types.ObjectId(productId),
    author,
    rating: 1 + (i % 5),
    body: 'A review long enough to be parsed like a real one. '.repeat(4),
    version: 1,
    createdAt: new Date(1_700_000_000_000 + i * 1_000),
    updatedAt: new Date(1_700_000_000_000 + i * 1_000),
  }));
  for (let start = 0; start < docs.length; start += 1_000) await ReviewModel.collection.insertMany(docs.slice(start, start + 1_000));
}

/** A product's newest reviews, anonymously; `first` varies so that no cache layer holds the answer. */
const readReviews = (t: TestApp, id: string, first: number): Promise<GqlResponse> =>
  t.gql(`query($id: ID!, $first: Int) { product(id: $id) { id reviews(first: $first) { id rating } } }`, { id, first });

describe('a storm of review reads', () => {
  let t: TestApp;
  beforeAll(async () => {
    // A deadline of 2 s (1 s a reply, db.ts driverTimeouts) rather than 5: the storm is short.
    t = await startTestApp({ seed: { users: 2, products: 4, reviews: 0, orders: 0 }, env: { MONGODB_TIMEOUT_MS: '2000' } });
    // 40,000 reviews, 1,000 of them the read product's: a scan parses all of them.
    await addReviews(product(0), 1_000);
    for (let i = 1; i < 4; i++) await addReviews(product(i), 13_000);
  }, 120_000);
  afterAll(async () => {
    await t?.stop();
  });

  it('fails no write: updateProduct and recordProductView all succeed while 16 readers run', async () => {
    const token = await t.login(ADMIN.email, ADMIN.password);
    let writing = true;
    let reads = 0;
    const readers = Array.from({ length: READERS }, async (_, reader) => {
      for (let round = 0; writing; round++) {
        // 100 values of `first` per reader and product: every read misses the caches.
        await readReviews(t, product(0), 1 + ((reader * 7 + round) % 100));
        reads++;
      }
    });
    const failed: unknown[] = [];
    const write = async (query: string, variables: Record<string, unknown>) => {
      const res = await t.gql(query, variables, token);
      if (res.status !== 200 || res.body.errors?.length) failed.push(res.body.errors ?? res.status);
    };
    const writers = [
      (async () => {
        for (let i = 0; i < 20; i++)
          await write('mutation($id: ID!, $n: String) { updateProduct(id: $id, input: { name: $n }) { id name } }', {
            id: product(i % 4),
            n: `Storm ${i}`,
          });
      })(),
      (async () => {
        for (let i = 0; i < 40; i++)
          await write('mutation($id: ID!) { recordProductView(id: $id) { id viewCount } }', { id: product(i % 4) });
      })(),
    ];
    await Promise.all(writers);
    writing = false;
    await Promise.all(readers);
    expect(reads).toBeGreaterThanOrEqual(READERS);
    expect({ failed: failed.length, errors: failed.slice(0, 3) }).toEqual({ failed: 0, errors: [] });
  }, 180_000);
});

describe('the read bulkhead', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      seed: { users: 1, products: 1, reviews: 0, orders: 0 },
      env: { MONGODB_MAX_CONCURRENT_READS: '2', MONGODB_MAX_QUEUED_READS: '2', MONGODB_READ_QUEUE_MS: '30000' },
    });
    await addReviews(product(0), 2_000);
  }, 120_000);
  afterAll(async () => {
    await t?.stop();
  });

  it('runs at most MONGODB_MAX_CONCURRENT_READS reads at once, and refuses those beyond the queue with SERVER_BUSY, 503 and Retry-After', async () => {
    // The product itself in the entity cache: each request's one MongoDB read is its reviews.
    expect((await t.gql(`{ product(id: "${product(0)}") { id } }`)).body.data?.product).toBeTruthy();
    const client = mongoose.connection.getClient();
    const inFlight = new Set<number>();
    let most = 0;
    const started = (event: { requestId: number; commandName: string; command: Record<string, unknown> }) => {
      if (event.commandName !== 'find' || event.command.find !== 'reviews') return;
      inFlight.add(event.requestId);
      most = Math.max(most, inFlight.size);
    };
    const ended = (event: { requestId: number }) => inFlight.delete(event.requestId);
    client.on('commandStarted', started).on('commandSucceeded', ended).on('commandFailed', ended);
    let responses: GqlResponse[];
    try {
      responses = await Promise.all(Array.from({ length: READERS }, (_, i) => readReviews(t, product(0), 50 + i)));
    } finally {
      client.off('commandStarted', started).off('commandSucceeded', ended).off('commandFailed', ended);
    }

    expect(most).toBeGreaterThanOrEqual(1);
    expect(most).toBeLessThanOrEqual(2);
    const busy = responses.filter((r) => r.status === 503);
    const answered = responses.filter((r) => r.status === 200);
    expect(busy.length + answered.length).toBe(READERS);
    // Two run and two wait (30 s is ample): at least those four are answered.
    expect(answered.length).toBeGreaterThanOrEqual(4);
    expect(busy.length).toBeGreaterThanOrEqual(1);
    responses.forEach((res, i) => {
      if (res.status === 200) expect((res.body.data?.product as { reviews: unknown[] }).reviews).toHaveLength(50 + i);
    });
    for (const res of busy) {
      expect(errorCodes(res)).toEqual(['SERVER_BUSY']);
      expect(res.body.errors?.[0]?.extensions?.retryAfterSeconds).toBe(30);
      expect(res.headers.get('retry-after')).toBe('30');
    }
    expect(await metricValue(t, 'mongodb_reads_rejected_total', { reason: 'queue_full' })).toBe(busy.length);
  }, 60_000);
});
