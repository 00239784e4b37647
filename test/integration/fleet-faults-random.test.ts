import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyspace } from 'graphql-lease-cache';
import { ask, freeze, fleetWorld, fromCache, kill, PRODUCT, productId, UPDATE, type Answer, type FleetWorld } from '../helpers/fleet.js';
import type { ServerProcess } from '../helpers/server-process.js';
import { sleep, until } from '../helpers/wait.js';
import { ProductModel } from '../../src/models/index.js';

// The randomised readers-and-writers test with two server processes, A and B, on a private
// Redis: one writer per product (writes of one product never overlap, so the newest
// acknowledged value is the one MongoDB holds) sets its name (`v<n>`) or its price (n) to the
// next value of one counter, on A or B at random; readers read random products on A and B. A
// read is stale when a field it returns is older than the newest value of that field whose
// mutation had RETURNED before the read was SENT. Runs in order, on the same two instances:
// (a) no fault; (b) B paused for 3 s; (c) Redis paused for 2 s; (e) Redis killed and restarted
// empty; (d) Redis paused, A (then the only writer) killed once a write sent to it during the
// pause had returned, Redis resumed, and only B read from then on. Between (b) and (c), (f):
// write-behind views racing the updates on a pair of their own, C and D, in a cache namespace
// of their own and on products of their own (4–7), D paused 3 s.
//
// A's writes take its in-process document lock (FERRETDB_DOCUMENT_LOCK=process), as on MongoDB,
// where writes take no lock in Redis; B's take the lock in Redis, so that B's writes fail (and
// write nothing) while Redis is paused, and A's go on.

/** The products A and B write and read. */
const PRODUCTS = [0, 1, 2, 3].map(productId);
/**
 * Run (f)'s products, written and read only through C and D. Never A and B's: a write through
 * one cache namespace invalidates that namespace's keys only, so A and B would go on serving
 * the values they cached before (f) (their next run read them as stale).
 */
const F_PRODUCTS = [4, 5, 6, 7].map(productId);
const READERS = 6;
const RUN_MS = 8_000;
/** When a run's fault begins, ms after the run's start. */
const FAULT_AT_MS = 2_500;

type Field = 'name' | 'priceCents';
type ProductData = { product: { id: string; name: string; priceCents: number } | null };

/** Per product and field: the newest acknowledged value and when its write returned (performance.now()). */
const acked = new Map<string, Record<Field, { value: number; at: number }>>();
let counter = 0;

/** One run: where writes and reads go, and what happened. */
interface Run {
  label: string;
  /** The products its writers, readers and viewers pick from. */
  products: string[];
  t0: number;
  writeTo: ServerProcess[];
  readFrom: ServerProcess[];
  stopping: boolean;
  reads: number;
  /** Reads served from the cache (extensions.cache). */
  cached: number;
  readErrors: number;
  writes: number;
  writeErrors: number;
  /** Acknowledged writes, and when the latest-sent of them was sent (performance.now()). */
  acks: number;
  lastAckSentAt: number;
  stale: string[];
  /** Views (write-behind, racing the synchronous updates) acknowledged per product, and those that failed. */
  views: Map<string, number>;
  viewErrors: number;
  /** Writes and views the server refused saying nothing was changed (their messages). */
  refused: string[];
}

const VIEW = 'mutation($id: ID!) { recordProductView(id: $id) { viewCount } }';
const VIEWERS = 2;

let world: FleetWorld;
let a: ServerProcess;
let b: ServerProcess;
let token: string;
/** A, B, and run (f)'s C and D, for the logs. */
const names = new Map<ServerProcess, string>();
const nameOf = (server: ServerProcess): string => names.get(server) ?? '?';
const pick = <T>(items: readonly T[]): T | undefined => items[Math.floor(Math.random() * items.length)];

beforeAll(async () => {
  world = await fleetWorld({ products: PRODUCTS.length + F_PRODUCTS.length });
  a = await world.start({ FERRETDB_DOCUMENT_LOCK: 'process' });
  b = await world.start();
  names.set(a, 'A').set(b, 'B');
  token = await world.adminToken(a);
  await startAtZero(a, PRODUCTS);
}, 120_000);
afterAll(async () => {
  await world.close();
});

/** Sets each of `products` to v0 and 0 through `server`, acknowledged. */
async function startAtZero(server: ServerProcess, products: readonly string[]): Promise<void> {
  for (const id of products) {
    const res = await ask(server, UPDATE, { id, input: { name: 'v0', priceCents: 0 } }, { token });
    expect(res.error).toBeNull();
    acked.set(id, { name: { value: 0, at: performance.now() }, priceCents: { value: 0, at: performance.now() } });
  }
}

/** Writes `id` again and again, one write at a time, until the run stops. */
async function writer(run: Run, id: string): Promise<void> {
  for (let server = pick(run.writeTo); !run.stopping && server; server = pick(run.writeTo)) {
    const field: Field = Math.random() < 0.5 ? 'name' : 'priceCents';
    counter += 1;
    const value = counter;
    const input = field === 'name' ? { name: `v${value}` } : { priceCents: value };
    // No client timeout: a write given up on could still land after a newer one.
    const res = await ask(server, UPDATE, { id, input }, { token, timeoutMs: 120_000 });
    run.writes += 1;
    if (res.error !== null) {
      // Refused with "nothing was changed" (a paused instance's lock timing out on resume, say):
      // no value to expect; the exact check afterwards holds the server to that word.
      if (res.refused) run.refused.push(res.error);
      else run.writeErrors += 1;
      continue;
    }
    const entry = acked.get(id);
    if (entry && value > entry[field].value) entry[field] = { value, at: performance.now() };
    run.acks += 1;
    run.lastAckSentAt = Math.max(run.lastAckSentAt, res.sentAt);
  }
}

/** Records views of random products through random instances (write-behind, racing the writers' updates), until the run stops. */
async function viewer(run: Run): Promise<void> {
  for (let server = pick(run.writeTo); !run.stopping && server; server = pick(run.writeTo)) {
    const id = pick(run.products) ?? '';
    const res = await ask(server, VIEW, { id }, { timeoutMs: 120_000 });
    if (res.error !== null && res.refused) run.refused.push(res.error);
    else if (res.error !== null) run.viewErrors += 1;
    else run.views.set(id, (run.views.get(id) ?? 0) + 1);
  }
}

/**
 * After a run with no failed write: once the write-behind queue is drained, MongoDB holds exactly
 * the newest acknowledged name and price and every acknowledged view, and both instances read
 * what MongoDB holds (the cache equals the database).
 */
async function expectExact(run: Run, viewsBefore: Map<string, number>, servers: ServerProcess[], namespace: string): Promise<void> {
  expect(run.writeErrors + run.viewErrors).toBe(0);
  const { stream } = createKeyspace({ namespace }).writeQueue;
  await until(async () => (await world.redis.client.xlen(stream)) === 0, { what: 'the write-behind queue to drain', timeoutMs: 30_000 });
  for (const id of run.products) {
    const doc = await ProductModel.findById(id).lean();
    const entry = acked.get(id);
    expect(doc?.name).toBe(`v${entry?.name.value ?? -1}`);
    expect(doc?.priceCents).toBe(entry?.priceCents.value);
    expect(doc?.viewCount).toBe((viewsBefore.get(id) ?? 0) + (run.views.get(id) ?? 0));
  }
  await expectReadsOfDatabase(servers, run.products);
}

/** Each of `servers` reads each of `products` as MongoDB holds it now (the cache equals the database). */
async function expectReadsOfDatabase(servers: readonly ServerProcess[], products: readonly string[]): Promise<void> {
  for (const id of products) {
    const doc = await ProductModel.findById(id).lean();
    for (const server of servers) {
      const res = await ask<ProductData>(server, PRODUCT, { id }, { timeoutMs: 20_000 });
      expect(res.data?.product, `${nameOf(server)} reads product ${id.slice(-1)}`).toEqual({
        id,
        name: doc?.name,
        priceCents: doc?.priceCents,
      });
    }
  }
}

/** Each of `products`' view count in MongoDB now. */
async function viewCounts(products: readonly string[]): Promise<Map<string, number>> {
  const docs = await ProductModel.find({ _id: { $in: products } }).lean();
  return new Map(docs.map((doc) => [doc._id.toHexString(), doc.viewCount]));
}

/** Reads random products on `readFrom`'s instance `k` (modulo), until the run stops. */
async function reader(run: Run, k: number): Promise<void> {
  while (!run.stopping) {
    const server = run.readFrom[k % run.readFrom.length];
    const id = pick(run.products) ?? '';
    const entry = acked.get(id);
    if (!server || !entry) return;
    const atSend = { name: entry.name.value, priceCents: entry.priceCents.value };
    const res = await ask<ProductData>(server, PRODUCT, { id }, { timeoutMs: 20_000 });
    run.reads += 1;
    if (fromCache(res)) run.cached += 1;
    if (res.error !== null || !res.data?.product) {
      run.readErrors += 1;
      continue;
    }
    const { name, priceCents } = res.data.product;
    const seen = { name: /^v\d+$/.test(name) ? Number(name.slice(1)) : -1, priceCents };
    for (const field of ['name', 'priceCents'] as const) {
      if (seen[field] < atSend[field]) run.stale.push(describeStale(run, server, id, field, atSend[field], seen[field], res));
    }
  }
}

function describeStale(
  run: Run,
  server: ServerProcess,
  id: string,
  field: Field,
  expected: number,
  got: number,
  res: Answer<ProductData>,
): string {
  const at = (t: number): string => `+${Math.round(t - run.t0)}ms`;
  const ackedAt = acked.get(id)?.[field].at ?? 0;
  return (
    `${run.label}: sent ${at(res.sentAt)} to ${nameOf(server)}, answered ${at(res.sentAt + res.ms)}: product ${id.slice(-1)} ${field} ` +
    `${got} < ${expected} (acknowledged by ${at(ackedAt)} at the latest) ${JSON.stringify(res.cache)}`
  );
}

/**
 * Runs the workload with `fault` (which may change where writes and reads go) for RUN_MS, and at
 * least `afterFaultMs` after the fault's end, and reports the counts.
 */
async function runWorkload(
  label: string,
  fault: (run: Run) => Promise<void>,
  afterFaultMs = 0,
  options: { servers?: ServerProcess[]; products?: string[]; views?: boolean } = {},
): Promise<Run> {
  const servers = options.servers ?? [a, b];
  const run: Run = {
    label,
    products: options.products ?? PRODUCTS,
    t0: performance.now(),
    writeTo: [...servers],
    readFrom: [...servers],
    stopping: false,
    ...{ reads: 0, cached: 0, readErrors: 0, writes: 0, writeErrors: 0, acks: 0, lastAckSentAt: 0, stale: [] },
    views: new Map(),
    viewErrors: 0,
    refused: [],
  };
  const loops = [
    ...run.products.map((id) => writer(run, id)),
    ...Array.from({ length: READERS }, (_, k) => reader(run, k)),
    ...Array.from({ length: options.views ? VIEWERS : 0 }, () => viewer(run)),
  ];
  await fault(run);
  // The workload's length (not a state): it runs until then, whatever happens.
  const end = Math.max(run.t0 + RUN_MS, performance.now() + afterFaultMs);
  await sleep(Math.max(0, end - performance.now()));
  run.stopping = true;
  await Promise.all(loops);
  console.log(
    `fleet random ${label}: ${run.reads} reads (${run.cached} from the cache), ${run.writes} writes, ${run.readErrors} read errors, ` +
      `${run.writeErrors} write errors, ${run.refused.length} refused (nothing changed)${run.refused.length ? ` [${run.refused.join('; ')}]` : ''}, ` +
      `${run.stale.length} stale${run.stale.length ? `\n  ${run.stale.join('\n  ')}` : ''}`,
  );
  return run;
}

/** Holds a fault from FAULT_AT_MS for `forMs` (the fault's length, not a state): `pid` paused, then resumed. */
function pauseDuring(pid: () => number, forMs: number): (run: Run) => Promise<void> {
  return async (run) => {
    await sleep(FAULT_AT_MS);
    freeze(pid(), true);
    try {
      await sleep(forMs);
    } finally {
      freeze(pid(), false);
    }
    console.log(`${run.label}: paused from +${FAULT_AT_MS}ms to +${Math.round(performance.now() - run.t0)}ms`);
  };
}

describe('randomised readers and writers on two instances', { timeout: 60_000 }, () => {
  it('(a) no fault: 0 stale', async () => {
    const run = await runWorkload('(a) no fault', async () => undefined);
    expect(run.stale).toEqual([]);
    expect(run.acks).toBeGreaterThan(0);
  });

  it('(b) one instance paused for 3 s mid-run: 0 stale', async () => {
    const run = await runWorkload(
      '(b) B paused 3 s',
      pauseDuring(() => b.process.pid ?? 0, 3_000),
    );
    expect(run.stale).toEqual([]);
  });

  it('(f) views (write-behind) racing the updates on a pair of their own, one paused 3 s: 0 stale, MongoDB and the cache exact afterwards, A and B untouched', async () => {
    // A pair of their own, C and D, both with the document locks in Redis (the default), in a
    // namespace of their own (so that their own worker flushes the views): on FerretDB an update
    // is a read-modify-write, and the worker's flush must hold the same lock as an update on the
    // other instance (A runs FERRETDB_DOCUMENT_LOCK=process, which supports no second writer).
    // The two pairs share Redis and the database, as two applications may, but no document, as
    // two cache namespaces must: neither hears the other's invalidations.
    const namespace = `${world.dbName}-f`;
    const c = await world.start({ CACHE_NAMESPACE: namespace });
    const d = await world.start({ CACHE_NAMESPACE: namespace });
    names.set(c, 'C').set(d, 'D');
    try {
      await startAtZero(c, F_PRODUCTS);
      const before = await viewCounts(F_PRODUCTS);
      const run = await runWorkload(
        '(f) views racing updates, D paused 3 s',
        pauseDuring(() => d.process.pid ?? 0, 3_000),
        0,
        {
          servers: [c, d],
          products: F_PRODUCTS,
          views: true,
        },
      );
      expect(run.stale).toEqual([]);
      expect([...run.views.values()].reduce((x, y) => x + y, 0)).toBeGreaterThan(0);
      await expectExact(run, before, [c, d], namespace);
      // A and B's products, which (f) never wrote, read on A and B as MongoDB holds them.
      await expectReadsOfDatabase([a, b], PRODUCTS);
    } finally {
      await kill(c);
      await kill(d);
    }
  });

  it('(c) Redis paused for 2 s mid-run: 0 stale', async () => {
    const run = await runWorkload(
      '(c) Redis paused 2 s',
      pauseDuring(() => world.redisPid(), 2_000),
    );
    expect(run.stale).toEqual([]);
  });

  it('(e) Redis restarted empty mid-run: 0 stale', async () => {
    const run = await runWorkload('(e) Redis restarted empty', async (r) => {
      await sleep(FAULT_AT_MS);
      await world.restartRedisEmpty();
      console.log(`${r.label}: Redis killed at +${FAULT_AT_MS}ms, a new one listening at +${Math.round(performance.now() - r.t0)}ms`);
    });
    expect(run.stale).toEqual([]);
  });

  it('(d) the writing instance killed during a Redis pause: 0 stale on the survivor', async () => {
    let acksBefore = 0;
    let pausedAt = 0;
    const run = await runWorkload(
      '(d) writer killed in a Redis pause',
      async (r) => {
        r.writeTo = [a];
        await sleep(FAULT_AT_MS);
        freeze(world.redisPid(), true);
        pausedAt = performance.now();
        acksBefore = r.acks;
        try {
          // A write sent during the pause has returned: its invalidation could not reach Redis, A owes it.
          await until(() => r.lastAckSentAt > pausedAt, { what: 'a write sent to A during the pause to return', timeoutMs: 15_000 });
          r.writeTo = [];
          r.readFrom = [b];
          await kill(a);
        } finally {
          freeze(world.redisPid(), false);
        }
        console.log(
          `${r.label}: Redis paused at +${Math.round(pausedAt - r.t0)}ms, A killed and Redis resumed at +${Math.round(performance.now() - r.t0)}ms`,
        );
      },
      4_000,
    );
    expect(run.stale).toEqual([]);
    expect(run.acks).toBeGreaterThan(acksBefore);
    await until(async () => (await world.intents()) === 0, { what: 'cacheintents to be empty', timeoutMs: 15_000 });
  });
});
