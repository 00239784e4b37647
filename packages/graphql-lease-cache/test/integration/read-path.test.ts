import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createKeyspace } from '../../src/keys.js';
import { InMemorySource } from '../../src/testing/index.js';
import { collect, createTestCore, type TestCore, type TestCoreOptions, type User } from '../helpers/cache.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { gate, until } from '../helpers/wait.js';

// The read path's hard cases (src/read-path.ts, core.ts, source-loads.ts,
// pending-invalidations.ts) against a real Redis and an in-memory source, each interleaving
// forced: a load held at a gate, a store call held or failed by the fault-injecting store.

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

let run = 0;
const opened: TestCore[] = [];
afterEach(() => {
  for (const core of opened.splice(0)) core.close();
});

/** A fresh keyspace per test (no test sees another's keys), and its cores. */
function scenario(): { core(options?: Omit<TestCoreOptions, 'redisUrl' | 'keys'>): Promise<TestCore> } {
  const keys = createKeyspace({ namespace: `read${(run += 1)}`, version: 1 });
  return {
    async core(options = {}) {
      const made = await createTestCore({ redisUrl: redis.url, keys, ...options });
      opened.push(made);
      return made;
    },
  };
}

const ada = (version = 1, name = 'Ada'): User => ({ id: 'u1', name, version });

/** A source of one user whose first load is held at the returned gate (it returns what it read before). */
function heldSource(): { source: InMemorySource<User>; held: ReturnType<typeof gate> } {
  const source = new InMemorySource<User>({ u1: ada() });
  const held = gate();
  let first = true;
  source.onLoad = () => {
    if (!first) return;
    first = false;
    return held.pass();
  };
  return { source, held };
}

describe('a reader that finds another process’s lease', () => {
  it('waits for its fill and gets its value, without reading the source', async () => {
    const s = scenario();
    const [filler, waiter] = [await s.core(), await s.core({ core: { leaseRetries: 20, leaseWaitMs: 1 } })];
    const { source, held } = heldSource();
    const leases = collect('lease', waiter.events);
    const first = filler.users.getMany(['u1'], source.load);
    await held.reached;
    const second = waiter.users.getMany(['u1'], source.load);
    await until(() => leases.length > 0, { what: 'the second reader to wait on the lease' });
    held.open();
    expect(await second).toEqual([ada()]);
    expect(await first).toEqual([ada()]);
    leases.stop();
    expect(source.loads).toBe(1);
    expect(leases.every((e) => e.outcome === 'wait')).toBe(true);
  });

  it('gives up after its bound and reads the source, without filling over the holder', async () => {
    const s = scenario();
    const [filler, waiter] = [await s.core(), await s.core({ core: { leaseRetries: 2, leaseWaitMs: 1 } })];
    const { source, held } = heldSource();
    const [leases, fills, holderFills] = [collect('lease', waiter.events), collect('fill', waiter.events), collect('fill', filler.events)];
    const first = filler.users.getMany(['u1'], source.load);
    await held.reached;
    expect(await waiter.users.getMany(['u1'], source.load)).toEqual([ada()]);
    expect(leases.map((e) => e.outcome)).toEqual(['wait', 'wait', 'timeout']);
    expect(source.loads).toBe(2);
    held.open();
    await first;
    expect(fills).toHaveLength(0);
    expect(holderFills.map((e) => e.outcome)).toEqual(['stored']);
    for (const events of [leases, fills, holderFills]) events.stop();
  });
});

describe('in one process', () => {
  it('two reads of one key make one source call: the second joins the first’s load (single flight)', async () => {
    const t = await scenario().core();
    const { source, held } = heldSource();
    const leases = collect('lease', t.events);
    const first = t.users.getMany(['u1'], source.load);
    await held.reached;
    const second = t.users.getMany(['u1'], source.load);
    // The second read's get-or-lease answered "busy" with the first's token: it has joined.
    await until(() => t.store.settled.getOrLease === 2, { what: 'the second get-or-lease to answer' });
    held.open();
    expect(await Promise.all([first, second])).toEqual([[ada()], [ada()]]);
    leases.stop();
    expect(source.loads).toBe(1);
    expect(leases).toHaveLength(0); // joined, never waited on the lease
  });
});

describe('an unreadable stored value', () => {
  it('reads as a miss served from the source, and is replaced through the protocol', async () => {
    const t = await scenario().core();
    const source = new InMemorySource<User>({ u1: ada() });
    const [errors, lookups] = [collect('error', t.events), collect('lookup', t.events)];
    await t.redis.refresh([{ key: t.users.key('u1'), version: 1, payload: Buffer.from('x: no codec wrote this'), ttlMs: 60_000 }], 'bad');
    expect(await t.users.getMany(['u1'], source.load)).toEqual([ada()]);
    expect(errors.map((e) => [e.op, (e.error as Error).name])).toEqual([['decode', 'CodecError']]);
    // Invalidated: the next read leases and fills it, and the one after hits.
    expect(await t.users.getMany(['u1'], source.load)).toEqual([ada()]);
    expect(await t.users.getMany(['u1'], source.load)).toEqual([ada()]);
    errors.stop();
    lookups.stop();
    expect(source.loads).toBe(2);
    expect(lookups.map((e) => [e.hits, e.misses])).toEqual([
      [0, 1],
      [0, 1],
      [1, 0],
    ]);
  });
});

describe('an invalidation that could not be delivered', () => {
  it('makes its key bypass the cache (never the stale value) until it is delivered', async () => {
    const t = await scenario().core({ core: { retryIntervalMs: 20 } });
    const source = new InMemorySource<User>({ u1: ada() });
    await t.users.getMany(['u1'], source.load); // cached: version 1
    const grace = source.update('u1', { name: 'Grace' });
    t.store.fail('invalidate');
    await t.users.invalidate(['u1']); // never throws
    expect(t.core.pendingInvalidations).toBe(1);
    const asked = t.store.calls.getOrLease;
    expect(await t.users.getMany(['u1'], source.load)).toEqual([grace]);
    expect(t.store.calls.getOrLease).toBe(asked); // not looked up in Redis at all
    const [stale] = await t.redis.getOrLease([{ key: t.users.key('u1') }], { token: 'probe', leaseTtlMs: 1_000 });
    expect(stale?.kind === 'hit' && stale.version).toBe(1); // Redis still has version 1
    t.store.heal();
    await until(() => t.core.pendingInvalidations === 0, { what: 'the retry timer to deliver the invalidation' });
    expect(await t.users.getMany(['u1'], source.load)).toEqual([grace]);
    expect(t.store.calls.getOrLease).toBe(asked + 1); // through the cache again
  });

  it('keeps bypassing while its delivery is held (a paused Redis), and stops once it lands', async () => {
    const t = await scenario().core();
    const source = new InMemorySource<User>({ u1: ada() });
    await t.users.getMany(['u1'], source.load);
    const grace = source.update('u1', { name: 'Grace' });
    t.store.failNext('invalidate');
    await t.users.invalidate(['u1']);
    t.store.pause('invalidate');
    const delivery = t.core.deliverPending();
    await t.store.whenHeld('invalidate');
    const asked = t.store.calls.getOrLease;
    expect(await t.users.getMany(['u1'], source.load)).toEqual([grace]);
    expect(t.store.calls.getOrLease).toBe(asked);
    t.store.resume();
    await delivery;
    expect(t.core.pendingInvalidations).toBe(0);
    expect(await t.users.getMany(['u1'], source.load)).toEqual([grace]);
    expect(t.store.calls.getOrLease).toBe(asked + 1);
  });
});

describe('a fill racing a write', () => {
  for (const write of ['invalidate', 'refresh'] as const) {
    it(`never stores the value read before the write (the write is ${write})`, async () => {
      const t = await scenario().core();
      const source = new InMemorySource<User>({ u1: ada() });
      const fills = collect('fill', t.events);
      t.store.pause('setIfLeased');
      const reader = t.users.getMany(['u1'], source.load); // reads version 1; its fill is held
      await t.store.whenHeld('setIfLeased');
      const grace = source.update('u1', { name: 'Grace' });
      await (write === 'invalidate' ? t.users.invalidate(['u1']) : t.users.refresh([grace]));
      t.store.resume();
      expect(await reader).toEqual([ada()]); // it read before the write returned
      expect(fills.map((e) => e.outcome)).toEqual(['lost']);
      expect(await t.users.getMany(['u1'], source.load)).toEqual([grace]);
      fills.stop();
    });
  }
});

describe('the circuit breaker', () => {
  it('opens after consecutive Redis failures (reads go to the source without calling Redis), and closes on a probe that succeeds', async () => {
    let now = 0;
    const states: string[] = [];
    const t = await scenario().core({
      breaker: { failureThreshold: 2, openMs: 1_000, now: () => now, onStateChange: (state) => states.push(state) },
    });
    const source = new InMemorySource<User>({ u1: ada() });
    await t.users.getMany(['u1'], source.load);
    const errors = collect('error', t.events);
    t.client.disconnect(); // Redis unreachable from this process
    for (let i = 0; i < 3; i += 1) expect(await t.users.getMany(['u1'], source.load)).toEqual([ada()]);
    expect(states).toEqual(['open']);
    // Two calls reached the closed connection; the third was refused by the breaker.
    expect(errors.map((e) => (e.error as Error).name)).toEqual(['Error', 'Error', 'BreakerOpenError']);
    await until(() => t.client.status === 'end', { what: 'the connection to close' });
    await t.client.connect();
    expect(await t.users.getMany(['u1'], source.load)).toEqual([ada()]);
    expect(errors.map((e) => (e.error as Error).name).at(-1)).toBe('BreakerOpenError'); // still open: not probed yet
    now += 1_000;
    expect(await t.users.getMany(['u1'], source.load)).toEqual([ada()]);
    errors.stop();
    expect(states).toEqual(['open', 'half-open', 'closed']);
    expect(source.loads).toBe(5); // the first read and the four without Redis; the probe hit
  });
});
