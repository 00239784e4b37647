// The mixed workload: readers under load while a few sequential writers change the hot
// products, and every read checked against what the writers had been told before it began.
//
// A read is stale when a hot product it shows has an older value than one a mutation had
// acknowledged before the read was sent: a price below the last price acknowledged (each
// product's prices only grow: one writer, increasing values), or a reviewCount or viewCount
// below the count a createReview or recordProductView had answered. Times are taken in this
// process: a read's when it is handed to the socket, an acknowledgement's when its answer is
// read, so a race between the two can only excuse a read, never accuse it.
import autocannon from 'autocannon';
import type { Contender } from './contenders.js';
import { graphql } from './load.js';
import { CREATE_REVIEW, HOT_CATALOG, HOT_PRODUCT, LOGIN, RECORD_VIEW, UPDATE_PRICE, seededId } from './queries.js';

/** The request headers of the writers' sessions on one contender. */
export interface Sessions {
  admin: Record<string, string>;
  reviewers: Record<string, string>[];
}

/** Options of {@link runMixed}. */
export interface MixedOptions {
  contender: Contender;
  sessions: Sessions;
  /** The products the writers change, all on the first catalog page of 20. */
  hotIds: readonly string[];
  /** Readers (connections); the reference shape has 10. */
  readers: number;
  seconds: number;
  /**
   * Each writer's interval between the starts of its writes, in milliseconds; the reference
   * shape has 100. The writers run open loop, on this schedule, so every contender that keeps
   * up gets the same writes: a closed loop gave a contender with faster writes more of them, and
   * with them more invalidations. A writer stays sequential (one product, one writer: its
   * acknowledged values only grow); one that falls behind writes as soon as its previous write
   * returns, and {@link MixedResult.writesDue} shows what it missed.
   */
  writeIntervalMs: number;
  /** The next price to write: larger than every price written before, on any contender. */
  nextPrice: () => number;
}

/** A stale read, for the report. */
export interface StaleRead {
  read: 'product' | 'catalog';
  productId: string;
  field: keyof Floor;
  shown: number;
  /** The least value the read should have shown. */
  floor: number;
  /** How long before the read began that value was acknowledged, in milliseconds. */
  ackedMsBefore: number;
}

/** One contender's mixed figures. */
export interface MixedResult {
  reads: number;
  readsPerSec: number;
  writes: { price: number; review: number; view: number };
  writesPerSec: number;
  /** The writes the schedule asked for: a contender with fewer writes fell behind it. */
  writesDue: number;
  /** Mutations / (reads + mutations). */
  mutationShare: number;
  /** Reads with at least one stale value, and the stale values by field. */
  stale: { reads: number; price: number; reviewCount: number; viewCount: number };
  /** The first few stale reads, with their details. */
  examples: StaleRead[];
  /** The stale value acknowledged longest before its read began. */
  oldest: StaleRead | null;
  /** Writes that failed, reads that failed or showed no hot product, and acknowledgements that did not add exactly one. */
  errors: { writes: number; reads: number; acks: number; first: string | null };
  /** The project's MongoDB commands and Redis round trips per request, reads and writes together (its /metrics). */
  costs?: { mongoPerRequest: number; redisPerRequest: number };
}

/** The least value of each checked field a read may show. */
interface Floor {
  priceCents: number;
  reviewCount: number;
  viewCount: number;
}

interface ShownProduct {
  id: string;
  priceCents: number;
  reviewCount: number;
  /** Absent from the catalog read. */
  viewCount?: number;
}

/** Logs in the project's admin and reviewers; the peers take a user id as their bearer (see bench/peers/apollo-peer.ts). */
export async function openSessions(contender: Contender, reviewers: number): Promise<Sessions> {
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const users = Array.from({ length: reviewers }, (_, i) => i + 1);
  if (!contender.spec.project) {
    return { admin: bearer(seededId('users', 0)), reviewers: users.map((i) => bearer(seededId('users', i))) };
  }
  const login = async (email: string, password: string) =>
    bearer((await graphql<{ login: { token: string } }>(contender.url, LOGIN, { email, password })).login.token);
  return {
    admin: await login('admin@example.com', 'admin-password'),
    reviewers: await Promise.all(users.map((i) => login(`user${i}@example.com`, 'password123'))),
  };
}

/** Warms the reads, then runs readers and writers together for `seconds` and checks every read. */
export async function runMixed(options: MixedOptions): Promise<MixedResult> {
  const { contender, hotIds, sessions } = options;
  const { url, urls } = contender;
  // Writes alternate between the instances (one for most contenders), write by write.
  const urlOf = (n: number): string => urls[n % urls.length] as string;
  // One pass over the reads on each instance: what a cache serves warm, it then has.
  for (const instance of urls) {
    await graphql(instance, HOT_CATALOG);
    for (const id of hotIds) await graphql(instance, HOT_PRODUCT, { id });
  }

  const floors = new Map(hotIds.map((id) => [id, { priceCents: -Infinity, reviewCount: -Infinity, viewCount: -Infinity }]));
  const ackedAt = new Map(hotIds.map((id) => [id, { priceCents: 0, reviewCount: 0, viewCount: 0 }]));
  const floorOf = (id: string): Floor => floors.get(id) as Floor;
  const acknowledge = (id: string, field: keyof Floor, value: number): void => {
    const floor = floorOf(id);
    if (value > floor[field]) {
      floor[field] = value;
      (ackedAt.get(id) as Floor)[field] = performance.now();
    }
  };
  const result: MixedResult = {
    reads: 0,
    readsPerSec: 0,
    writes: { price: 0, review: 0, view: 0 },
    writesPerSec: 0,
    writesDue: 0,
    mutationShare: 0,
    stale: { reads: 0, price: 0, reviewCount: 0, viewCount: 0 },
    examples: [],
    oldest: null,
    errors: { writes: 0, reads: 0, acks: 0, first: null },
  };
  const fail = (kind: 'writes' | 'reads' | 'acks', message: string): void => {
    result.errors[kind] += 1;
    result.errors.first ??= message;
  };

  // Writers: one per hot product re-pricing it, one adding reviews, one counting views.
  let stopped = false;
  const interval = options.writeIntervalMs;
  const writer = async (write: (n: number) => Promise<void>): Promise<void> => {
    for (let n = 0; ; n += 1) {
      const due = started + n * interval;
      if (due > performance.now()) await sleep(due - performance.now());
      if (stopped) return;
      try {
        await write(n);
      } catch (error) {
        fail('writes', error instanceof Error ? error.message : String(error));
      }
    }
  };
  const counted = (id: string, field: 'reviewCount' | 'viewCount', value: number): void => {
    const before = floorOf(id)[field];
    // One writer per counter: each acknowledgement adds exactly one to the previous.
    if (before !== -Infinity && value !== before + 1) fail('acks', `${field} of ${id}: acknowledged ${value} after ${before}`);
    acknowledge(id, field, value);
  };
  const started = performance.now();
  const writers = [
    ...hotIds.map((id, i) =>
      writer(async (n) => {
        const price = options.nextPrice();
        const data = await graphql<{ updateProduct: { priceCents: number } }>(urlOf(n + i), UPDATE_PRICE, { id, price }, sessions.admin);
        if (data.updateProduct.priceCents !== price)
          fail('acks', `updateProduct ${id}: wrote ${price}, answered ${data.updateProduct.priceCents}`);
        acknowledge(id, 'priceCents', price);
        result.writes.price += 1;
      }),
    ),
    writer(async (n) => {
      const id = hotIds[n % hotIds.length] as string;
      const reviewer = sessions.reviewers[Math.floor(n / hotIds.length) % sessions.reviewers.length] as Record<string, string>;
      const data = await graphql<{ createReview: { product: { reviewCount: number } } }>(
        urlOf(n),
        CREATE_REVIEW,
        { id, rating: 1 + (n % 5) },
        reviewer,
      );
      counted(id, 'reviewCount', data.createReview.product.reviewCount);
      result.writes.review += 1;
    }),
    writer(async (n) => {
      const id = hotIds[n % hotIds.length] as string;
      const data = await graphql<{ recordProductView: { viewCount: number } }>(urlOf(n + 1), RECORD_VIEW, { id });
      counted(id, 'viewCount', data.recordProductView.viewCount);
      result.writes.view += 1;
    }),
  ];

  // Readers: five product reads (one per hot product) for each catalog page read.
  interface ReadContext {
    read?: 'product' | 'catalog';
    startedAt?: number;
    /** Per hot product the read shows: the floors, and when each was acknowledged, as the read began. */
    floors?: Map<string, { floor: Floor; ackedAt: Floor }>;
  }
  let next = 0;
  let lastRead = started;
  const check = (
    read: 'product' | 'catalog',
    shown: ShownProduct,
    { floor, ackedAt: at }: { floor: Floor; ackedAt: Floor },
    startedAt: number,
  ): boolean => {
    let stale = false;
    for (const field of ['priceCents', 'reviewCount', 'viewCount'] as const) {
      // A field the read does not select (the catalog's viewCount) cannot be stale.
      if (shown[field] === undefined || shown[field] >= floor[field]) continue;
      stale = true;
      result.stale[field === 'priceCents' ? 'price' : field] += 1;
      const example: StaleRead = {
        read,
        productId: shown.id,
        field,
        shown: shown[field],
        floor: floor[field],
        ackedMsBefore: Math.round(startedAt - at[field]),
      };
      if (result.examples.length < 3) result.examples.push(example);
      if (!result.oldest || example.ackedMsBefore > result.oldest.ackedMsBefore) result.oldest = example;
    }
    return stale;
  };
  // Two instances: the connections are spread over them (autocannon's round-robin by connection).
  const readers = autocannon({
    // (autocannon takes an array of URLs; its types say only a string.)
    url: (urls.length === 1 ? `${url}/graphql` : urls.map((instance) => `${instance}/graphql`)) as string,
    connections: options.readers,
    duration: options.seconds,
    timeout: 60,
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        setupRequest: (request, context: ReadContext) => {
          const n = next++;
          const id = hotIds[n % (hotIds.length + 1)];
          context.read = id ? 'product' : 'catalog';
          context.floors = new Map(
            (id ? [id] : hotIds).map((hot) => [hot, { floor: { ...floorOf(hot) }, ackedAt: { ...(ackedAt.get(hot) as Floor) } }]),
          );
          context.startedAt = performance.now();
          return { ...request, body: JSON.stringify(id ? { query: HOT_PRODUCT, variables: { id } } : { query: HOT_CATALOG }) };
        },
        onResponse: (status, body, context: ReadContext) => {
          const { read, floors: readFloors, startedAt } = context;
          if (!read || !readFloors || startedAt === undefined) return;
          lastRead = performance.now();
          let shown: ShownProduct[];
          try {
            const parsed = JSON.parse(body) as {
              data?: { product?: ShownProduct | null; products?: { edges: { node: ShownProduct }[] } };
              errors?: unknown;
            };
            if (status !== 200 || parsed.errors || !parsed.data) throw new Error(`HTTP ${status}: ${body.slice(0, 300)}`);
            shown = read === 'product' ? [parsed.data.product as ShownProduct] : (parsed.data.products?.edges.map((e) => e.node) ?? []);
          } catch (error) {
            fail('reads', error instanceof Error ? error.message : String(error));
            return;
          }
          let stale = false;
          for (const [id, floor] of readFloors) {
            const product = shown.find((p) => p?.id === id);
            if (!product) fail('reads', `${read} read without hot product ${id}`);
            else stale = check(read, product, floor, startedAt) || stale;
          }
          result.reads += 1;
          if (stale) result.stale.reads += 1;
        },
      },
    ],
  });
  const load = await readers;
  stopped = true;
  // Each writer had a slot every interval until now.
  result.writesDue = writers.length * Math.ceil((performance.now() - started) / interval);
  await Promise.all(writers);
  const writersSeconds = (performance.now() - started) / 1_000;
  const elapsedSeconds = (lastRead - started) / 1_000;
  if (load.errors) fail('reads', `${load.errors} connection errors or timeouts`);
  // What was in flight when the readers stopped finishes before the next contender starts.
  await graphql(url, HOT_CATALOG);
  const writes = result.writes.price + result.writes.review + result.writes.view;
  result.readsPerSec = result.reads / Math.max(elapsedSeconds, 1e-3);
  result.writesPerSec = writes / Math.max(writersSeconds, 1e-3);
  result.mutationShare = writes / Math.max(writes + result.reads, 1);
  return result;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
