import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../../src/breaker.js';
import { CacheEvents } from '../../src/events.js';
import { createKeyspace } from '../../src/keys.js';
import { SILENT_LOGGER } from '../../src/logger.js';
import { createRedisClient, type RedisClient } from '../../src/redis-client.js';
import { RedisStore } from '../../src/redis-store.js';
import { CacheStats } from '../../src/stats.js';
import {
  FaultInjectingStore,
  InjectedFaultError,
  InMemorySource,
  InMemoryWriteTarget,
  type WritableDocument,
} from '../../src/testing/index.js';
import type { TargetUpdate } from '../../src/write-behind/index.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { gate } from '../helpers/wait.js';

// What graphql-lease-cache/testing gives other tests: the fault-injecting store (over the Redis
// store, on a private Redis), the in-memory source and the in-memory write target.

let redis: TestRedis;
let client: RedisClient;
let inner: RedisStore;
beforeAll(async () => {
  redis = await startRedis();
  client = createRedisClient({ url: redis.url, logger: SILENT_LOGGER });
  await client.connect();
  inner = new RedisStore({
    client,
    breaker: new CircuitBreaker(),
    events: new CacheEvents('test', new CacheStats()),
    leaseSuffix: ':lease',
  });
});
afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
});

const keys = createKeyspace({ namespace: 'faults', version: 1 });
let run = 0;
const fresh = (): string => keys.entity('User', `u${(run += 1)}`);
const value = (key: string, version = 1) => ({ key, version, payload: Buffer.from(`v${version}`), ttlMs: 60_000 });
const kindOf = async (store: FaultInjectingStore, key: string): Promise<string | undefined> =>
  (await store.getOrLease([{ key }], { token: `t${(run += 1)}`, leaseTtlMs: 1_000 }))[0]?.kind;

describe('FaultInjectingStore', () => {
  it('fails the chosen operations without reaching the store, until healed; the others pass', async () => {
    const store = new FaultInjectingStore(inner);
    const key = fresh();
    store.fail('refresh');
    await expect(store.refresh([value(key)], 'R')).rejects.toBeInstanceOf(InjectedFaultError);
    expect(await kindOf(store, key)).toBe('lease'); // nothing was stored
    store.heal();
    expect(await store.refresh([value(key, 2)], 'R')).toEqual([true]);
    expect(await kindOf(store, key)).toBe('hit');
    expect(store.calls).toMatchObject({ refresh: 2, getOrLease: 2 });
    expect(store.settled).toMatchObject({ refresh: 2, getOrLease: 2 });
  });

  it('fails the next calls only, with the test’s own error when given', async () => {
    const store = new FaultInjectingStore(inner);
    const down = new Error('Connection is closed.');
    store.failNext('invalidate', 2, down);
    await expect(store.invalidate([fresh()])).rejects.toBe(down);
    await expect(store.invalidate([fresh()])).rejects.toBe(down);
    await expect(store.invalidate([fresh()])).resolves.toBeUndefined();
  });

  it('holds paused calls before they reach the store, and lets them go in order on resume', async () => {
    const store = new FaultInjectingStore(inner);
    const key = fresh();
    store.pause(['refresh', 'invalidate']);
    const refreshed = store.refresh([value(key, 1)], 'R');
    const invalidated = store.invalidate([key]);
    await store.whenHeld('invalidate');
    expect([store.held(), store.held('refresh'), store.settled.refresh]).toEqual([2, 1, 0]);
    expect(await kindOf(store, key)).toBe('lease'); // getOrLease is not paused; nothing stored yet
    store.resume('refresh');
    expect(await refreshed).toEqual([true]);
    expect(store.held()).toBe(1);
    store.heal();
    await invalidated;
    expect(await kindOf(store, key)).toBe('lease');
  });

  it('delays the chosen operations by the given time', async () => {
    const store = new FaultInjectingStore(inner);
    store.delay(30, 'pending');
    const started = performance.now();
    await store.pending([keys.pending('User', 'x')]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(29);
    expect(() => store.delay(-1)).toThrow(TypeError);
  });
});

describe('InMemorySource', () => {
  it('loads one copy per id in order (null where none), counting the calls', async () => {
    const source = new InMemorySource({ a: { version: 1, n: 1 } });
    const [a] = await source.load(['a']);
    if (a) a.n = 99; // a copy: the stored document is unchanged
    expect(await source.load(['b', 'a'])).toEqual([null, { version: 1, n: 1 }]);
    expect([source.loads, source.loaded]).toEqual([2, [['a'], ['b', 'a']]]);
    expect(source.update('a', { n: 2 })).toEqual({ version: 2, n: 2 });
    expect(() => source.update('b', { n: 1 })).toThrow(RangeError);
  });

  it('returns what a held load read, even when the document changes meanwhile', async () => {
    const source = new InMemorySource({ a: { version: 1, n: 1 } });
    const held = gate();
    source.onLoad = () => held.pass();
    const loading = source.load(['a']);
    await held.reached;
    source.update('a', { n: 2 });
    held.open();
    expect(await loading).toEqual([{ version: 1, n: 1 }]);
  });
});

describe('InMemoryWriteTarget', () => {
  const update = (guard: Partial<TargetUpdate['guard']> = {}): TargetUpdate => ({
    id: 'p1',
    guard: { wbSeq: null, notDone: [], fences: {}, ...guard },
    set: { name: 'new' },
    inc: { views: 2 },
    seq: '000000000000002-0000000000',
  });

  it('applies an update whose guard holds (setting wbSeq, incrementing version), and reports a conflict otherwise', async () => {
    const source = new InMemorySource<WritableDocument>({ p1: { version: 1, name: 'old', views: 1, wbAt: { name: 5 } } });
    const target = new InMemoryWriteTarget({ source });
    expect(await target.apply([update({ wbSeq: '000000000000001-0000000000' })])).toEqual([{ kind: 'conflict' }]);
    expect(await target.apply([update({ fences: { name: null } })])).toEqual([{ kind: 'conflict' }]);
    expect(await target.apply([update({ fences: { name: 5 } })])).toEqual([{ kind: 'applied', version: 2 }]);
    expect(source.get('p1')).toMatchObject({ version: 2, name: 'new', views: 3, wbSeq: '000000000000002-0000000000' });
    source.put('p1', { ...(source.get('p1') as WritableDocument), wbDone: ['u1'] });
    expect(await target.apply([update({ wbSeq: '000000000000002-0000000000', notDone: ['u1'] })])).toEqual([{ kind: 'conflict' }]);
    expect([target.applies, target.written.length, target.attempts.get('p1')]).toEqual([4, 1, 4]);
    expect(await target.load(['p1', 'p2'])).toEqual(
      new Map([['p1', { version: 2, wbSeq: '000000000000002-0000000000', wbAt: { name: 5 }, wbDone: ['u1'] }]]),
    );
  });

  it("is the entity writer's synchronous write: sets, adds, fences the fields set, records the done id; null for no document", async () => {
    const source = new InMemorySource<WritableDocument>({ p1: { version: 1, name: 'old', views: 1, wbDone: ['u0'] } });
    const target = new InMemoryWriteTarget({ source });
    const written = await target.write({ id: 'p1', set: { name: 'new' }, inc: { views: 2 }, doneId: 'u1', before: true });
    expect(written?.before).toEqual({ version: 1, name: 'old', views: 1, wbDone: ['u0'] });
    expect(written?.after).toEqual({ version: 2, name: 'new', views: 3, wbDone: ['u0', 'u1'], wbAt: { name: expect.any(Number) } });
    expect(source.get('p1')).toEqual(written?.after);
    expect(await target.write({ id: 'p2', set: { name: 'x' }, inc: {} })).toBeNull();
    target.failWith('p1', 'refused');
    await expect(target.write({ id: 'p1', set: {}, inc: { views: 1 } })).rejects.toThrow('refused');
    expect([target.directWrites, source.get('p1')?.version]).toEqual([1, 2]);
  });

  it('fails the updates of a chosen document, and refuses changes of fields it was not given', async () => {
    const source = new InMemorySource<WritableDocument>({ p1: { version: 1, views: 1 } });
    const target = new InMemoryWriteTarget({ source, fields: { set: ['name'], inc: ['views'] } });
    target.failWith('p1', 'refused');
    expect(await target.apply([update()])).toEqual([{ kind: 'failed', error: 'refused' }]);
    target.failWith('p1', null);
    expect(await target.apply([update()])).toEqual([{ kind: 'applied', version: 2 }]);
    expect(target.refuse('p1', { set: { price: 1 }, at: 0 })).toBe('field "price" cannot be written behind');
    expect(target.refuse('p1', { inc: { stock: 1 }, at: 0 })).toBe('counter "stock" cannot be written behind');
    expect(target.refuse('p1', { set: { name: 'x' }, inc: { views: 1 }, at: 0 })).toBeNull();
  });
});
