import { afterEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import {
  ask,
  connectionsOf,
  freeze,
  fleetWorld,
  fromCache,
  PRODUCT,
  productId,
  readFor,
  UPDATE,
  type Answer,
  type FleetWorld,
} from '../helpers/fleet.js';
import type { ServerProcess } from '../helpers/server-process.js';
import { sleep, until } from '../helpers/wait.js';

// The fleet's faults that reach one instance or Redis itself, with two server processes (A and
// B) on a private Redis: B paused across a write on A, B's subscription killed, and Redis
// restarted empty. Whatever B held (in Redis or, with an L1, in its memory), no answer after a
// write on A returned may be the value that write replaced.

const LEASE_MS = 1_500; // CACHE_FLEET_LEASE_MS's default

type ProductData = { product: { id: string; name: string; priceCents: number } | null };

let world: FleetWorld | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

/** A fresh world with A and B started, the admin logged in on A, and product 1 warm on B (its name returned). */
async function warmPair(): Promise<{ w: FleetWorld; a: ServerProcess; b: ServerProcess; token: string; oldName: string }> {
  const w = await fleetWorld({ products: 2 });
  world = w;
  const a = await w.start();
  const b = await w.start();
  const token = await w.adminToken(a);
  await ask(b, PRODUCT, { id: productId(1) });
  const warm = await ask<ProductData>(b, PRODUCT, { id: productId(1) });
  expect(fromCache(warm), JSON.stringify(warm.cache)).toBe(true);
  return { w, a, b, token, oldName: warm.data?.product?.name ?? '' };
}

/** Where each answer stood: when it was sent (ms after `t0`), what it served, how, or why it failed. */
function described(answers: readonly Answer<ProductData>[], t0: number): string[] {
  return answers.map((r) => `+${Math.round(r.sentAt - t0)}ms ${r.error ?? r.data?.product?.name} ${JSON.stringify(r.cache)}`);
}

describe('the fleet under faults of one instance or of Redis', () => {
  it('an instance paused past its lease across a write answers its queued requests with the new value', { timeout: 120_000 }, async () => {
    const { a, b, token, oldName } = await warmPair();
    const id = productId(1);
    const t0 = performance.now();
    freeze(b.process.pid ?? 0, true);
    try {
      // Queued on B's socket before the write, and after it returned.
      const before = Array.from({ length: 3 }, () => ask<ProductData>(b, PRODUCT, { id }, { timeoutMs: 30_000 }));
      const write = await ask<{ updateProduct: { name: string } }>(a, UPDATE, { id, input: { name: 'renamed while B slept' } }, { token });
      expect(write.error).toBeNull();
      const after = Array.from({ length: 3 }, () => ask<ProductData>(b, PRODUCT, { id }, { timeoutMs: 30_000 }));
      console.log(`B paused: updateProduct on A returned in ${Math.round(write.ms)} ms`);
      // An unresponsive instance delays a write by at most about one lease, never forever.
      expect(write.ms).toBeLessThan(3 * LEASE_MS);
      // The fault itself: B stays paused for 4 s, longer than its lease.
      await sleep(Math.max(0, 4_000 - (performance.now() - t0)));
      freeze(b.process.pid ?? 0, false);
      const answers = await Promise.all([...before, ...after]);
      const stale = answers.filter((r) => r.error === null && r.data?.product?.name === oldName);
      console.log(`B resumed: ${answers.length} queued reads answered:\n  ${described(answers, t0).join('\n  ')}`);
      expect(described(stale, t0)).toEqual([]);
      expect(answers.filter((r) => r.error === null).length).toBeGreaterThan(0);
    } finally {
      freeze(b.process.pid ?? 0, false);
    }
    const tally = await readFor(
      1_000,
      () => ask<ProductData>(b, PRODUCT, { id }),
      (r) => r.data?.product?.name === oldName,
    );
    expect(tally.stale).toEqual([]);
  });

  it(
    'an instance whose fleet subscription was killed never serves the value a write on the other replaced',
    { timeout: 120_000 },
    async () => {
      const { w, a, b, token, oldName } = await warmPair();
      const id = productId(1);
      const client = w.redis.client;
      const ofB = connectionsOf(b.process.pid ?? 0, w.redis.port);
      const pubsubOf = async (addrs: readonly string[]): Promise<string[]> =>
        ((await client.call('CLIENT', 'LIST', 'TYPE', 'pubsub')) as string)
          .split('\n')
          .map((line) => /addr=(\S+)/.exec(line)?.[1] ?? '')
          .filter((addr) => addrs.includes(addr));
      const [subscription] = await pubsubOf(ofB);
      expect(subscription, `B's connections ${ofB.join(', ')}`).toBeDefined();

      const t0 = performance.now();
      // Reads on B all along, from just before the kill.
      let writeReturnedAt = Infinity;
      const reads: Answer<ProductData>[] = [];
      let reading = true;
      const reader = (async () => {
        while (reading) reads.push(await ask<ProductData>(b, PRODUCT, { id }));
      })();
      await client.call('CLIENT', 'KILL', 'TYPE', 'pubsub', 'ADDR', subscription ?? '');
      const write = await ask<{ updateProduct: { name: string } }>(
        a,
        UPDATE,
        { id, input: { name: 'renamed while B was unsubscribed' } },
        { token },
      );
      writeReturnedAt = performance.now();
      expect(write.error).toBeNull();
      const tally = await readFor(
        2_000,
        () => ask<ProductData>(b, PRODUCT, { id }),
        (r) => r.data?.product?.name === oldName,
      );
      reading = false;
      await reader;
      const stale = [...reads.filter((r) => r.sentAt > writeReturnedAt && r.data?.product?.name === oldName), ...tally.stale];
      console.log(
        `subscription killed: the write returned in ${Math.round(write.ms)} ms; ${reads.length + tally.reads} reads on B, ` +
          `${stale.length} stale, ${reads.filter((r) => r.error).length + tally.errors} errors`,
      );
      expect(described(stale, t0)).toEqual([]);
      // B subscribed again, and serves from the cache again.
      await until(async () => (await pubsubOf(connectionsOf(b.process.pid ?? 0, w.redis.port))).length > 0, {
        what: 'B to subscribe again',
      });
      await until(async () => fromCache(await ask(b, PRODUCT, { id })), { what: 'B to serve from the cache again', timeoutMs: 10_000 });
    },
  );

  it('after Redis restarted empty under both instances, writes and reads are never stale', { timeout: 120_000 }, async () => {
    const { w, a, b, token, oldName } = await warmPair();
    const id = productId(1);
    // A ready check of our own: the new server answers.
    await w.restartRedisEmpty();
    const probe = new Redis(w.redis.url, { maxRetriesPerRequest: 1 });
    try {
      await until(async () => (await probe.ping().catch(() => '')) === 'PONG', { what: 'the new Redis to answer' });
    } finally {
      probe.disconnect();
    }
    const t0 = performance.now();
    // One writer, on either instance in turn, each write a new name; after each one returned,
    // a read on both: nothing older than the newest acknowledged name.
    let acked = -1;
    let writes = 0;
    let writeErrors = 0;
    const stale: Answer<ProductData>[] = [];
    let reads = 0;
    let readErrors = 0;
    const nameOf = (n: number): string => `after the restart #${n}`;
    const counterOf = (name: string | undefined): number =>
      name === oldName ? -1 : name?.startsWith('after the restart #') ? Number(name.slice(19)) : -3;
    for (let n = 0; performance.now() - t0 < 5_000 || acked < 3; n += 1) {
      if (n > 200) break;
      const write = await ask(n % 2 ? b : a, UPDATE, { id, input: { name: nameOf(n) } }, { token });
      writes += 1;
      if (write.error === null) acked = n;
      else writeErrors += 1;
      for (const server of [b, a]) {
        const read = await ask<ProductData>(server, PRODUCT, { id });
        reads += 1;
        if (read.error !== null) readErrors += 1;
        else if (counterOf(read.data?.product?.name) < acked) stale.push(read);
      }
    }
    console.log(
      `Redis restarted empty: ${writes} writes (${writeErrors} failed), ${reads} reads, ${stale.length} stale, ${readErrors} errors`,
    );
    expect(described(stale, t0)).toEqual([]);
    expect(acked).toBeGreaterThanOrEqual(3);
    await until(async () => fromCache(await ask(b, PRODUCT, { id })), { what: 'B to serve from the cache again', timeoutMs: 10_000 });
  });
});
