import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EntityCache } from '../../src/entity-cache.js';
import { ResponseStore } from '../../src/response-store.js';
import { createKeyspace } from '../../src/keys.js';
import { InMemorySource } from '../../src/testing/index.js';
import { collect, createTestCore, type TestCore, type TestCoreOptions, type User } from '../helpers/cache.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { gate, until } from '../helpers/wait.js';

// Grace and early refresh (src/expiry.ts, scripts/get-or-lease.ts) against a real Redis: values
// kept past their TTL are served only when the source says it cannot answer, and never once
// invalidated, tag-invalidated or owed an invalidation; a hit near its end is reloaded once, in
// the background, under its lease. Short TTLs, and waits on the keys' PTTL, not on sleeps.

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

/** The error of a source that cannot answer. */
class SourceDown extends Error {}

const GRACE_MS = 20_000;
const TTL_MS = 1_000;

/** One process's cache with a grace and an early refresh, and its `User` entity cache of TTL {@link TTL_MS}. */
async function processOf(
  keys: ReturnType<typeof createKeyspace>,
  core: TestCoreOptions['core'] = {},
): Promise<TestCore & { short: EntityCache<User> }> {
  const made = await createTestCore({
    redisUrl: redis.url,
    keys,
    core: { graceMs: GRACE_MS, ttlJitter: 0, isSourceUnavailable: (error) => error instanceof SourceDown, ...core },
  });
  opened.push(made);
  const short = new EntityCache<User>({ core: made.core, keys, type: 'User', ttlMs: TTL_MS, negativeTtlMs: TTL_MS });
  return { ...made, short };
}

/** A fresh keyspace, a source of user u1, and a load that fails as `down` says. */
function scenario(): {
  keys: ReturnType<typeof createKeyspace>;
  source: InMemorySource<User>;
  load(ids: readonly string[]): Promise<(User | null)[]>;
  state: { down: Error | null };
} {
  const keys = createKeyspace({ namespace: `expiry${(run += 1)}`, version: 1 });
  const source = new InMemorySource<User>({ u1: { id: 'u1', name: 'Ada', version: 1 } });
  const state: { down: Error | null } = { down: null };
  const load = async (ids: readonly string[]): Promise<(User | null)[]> => {
    const documents = await source.load(ids);
    if (state.down) throw state.down;
    return documents;
  };
  return { keys, source, load, state };
}

/** Waits until `key` is past its logical life: less than the grace left of its expiry. */
async function expired(t: TestCore, key: string): Promise<void> {
  await until(async () => (await t.client.pttl(key)) <= GRACE_MS, { what: `${key} past its TTL`, timeoutMs: 5_000 });
}

describe('grace', () => {
  it('keeps a value for its TTL plus the grace, and serves it past its TTL when the source is unavailable', async () => {
    const s = scenario();
    const t = await processOf(s.keys);
    expect(await t.short.getMany(['u1'], s.load)).toEqual([{ id: 'u1', name: 'Ada', version: 1 }]);
    expect(await t.client.pttl(t.short.key('u1'))).toBeGreaterThan(GRACE_MS);
    await expired(t, t.short.key('u1'));
    const grace = collect('expiry', t.events);
    s.state.down = new SourceDown('no MongoDB');
    expect(await t.short.getMany(['u1'], s.load)).toEqual([{ id: 'u1', name: 'Ada', version: 1 }]);
    expect(grace.filter((e) => e.kind === 'grace')).toEqual([expect.objectContaining({ name: 'User', count: 1 })]);
    expect(s.source.loads).toBe(2); // it did ask the source first
    grace.stop();
    // Back up: the next read is still served at once (the source was seen down just now) and
    // reloads in the background, which fills; the reads after it show the source's value.
    s.state.down = null;
    s.source.update('u1', { name: 'Ada L.' });
    await until(async () => (await t.short.getMany(['u1'], s.load))[0]?.name === 'Ada L.', {
      what: 'the reloaded value',
      timeoutMs: 5_000,
    });
    await t.core.expiry.idle();
  });

  it('while the source is known down, serves an expired value without asking it, and a background probe finds it back', async () => {
    const s = scenario();
    s.source.put('u2', { id: 'u2', name: 'Bob', version: 1 });
    const t = await processOf(s.keys);
    await t.short.getMany(['u1', 'u2'], s.load);
    await Promise.all([expired(t, t.short.key('u1')), expired(t, t.short.key('u2'))]);
    s.state.down = new SourceDown('no MongoDB');
    // The first read asks the source (which fails: served from the grace), and so learns it is down.
    expect(await t.short.getMany(['u1'], s.load)).toEqual([{ id: 'u1', name: 'Ada', version: 1 }]);
    const asked = s.source.loads;
    // The next read of another expired key is served at once; only its background probe asks.
    const answered = gate();
    const stalled = async (ids: readonly string[]): Promise<(User | null)[]> => {
      await answered.pass();
      return s.load(ids);
    };
    expect(await t.short.getMany(['u2'], stalled)).toEqual([{ id: 'u2', name: 'Bob', version: 1 }]);
    answered.open();
    await t.core.expiry.idle();
    expect(s.source.loads).toBe(asked + 1);
    // The source back: a probe that loads fills, and the source is asked again.
    s.state.down = null;
    s.source.update('u2', { name: 'Bob B.' });
    await until(async () => (await t.short.getMany(['u2'], s.load))[0]?.name === 'Bob B.', {
      what: 'the reloaded value',
      timeoutMs: 5_000,
    });
    await t.core.expiry.idle();
    s.source.update('u1', { name: 'Ada L.' });
    expect(await t.short.getMany(['u1'], s.load)).toEqual([{ id: 'u1', name: 'Ada L.', version: 2 }]);
  });

  it('never serves a value within its TTL instead of the source, nor past its TTL when the source answers', async () => {
    const s = scenario();
    const t = await processOf(s.keys);
    await t.short.getMany(['u1'], s.load);
    await expired(t, t.short.key('u1'));
    s.source.update('u1', { name: 'Ada L.' });
    expect(await t.short.getMany(['u1'], s.load)).toEqual([{ id: 'u1', name: 'Ada L.', version: 2 }]);
  });

  it('does not hide any other error of the source', async () => {
    const s = scenario();
    const t = await processOf(s.keys);
    await t.short.getMany(['u1'], s.load);
    await expired(t, t.short.key('u1'));
    s.state.down = new Error('a bad query');
    await expect(t.short.getMany(['u1'], s.load)).rejects.toThrow('a bad query');
  });

  it('serves nothing of a key that was never cached, nor of a batch that holds one', async () => {
    const s = scenario();
    s.source.put('u2', { id: 'u2', name: 'Bob', version: 1 });
    const t = await processOf(s.keys);
    await t.short.getMany(['u1'], s.load);
    await expired(t, t.short.key('u1'));
    s.state.down = new SourceDown('no MongoDB');
    await expect(t.short.getMany(['u2'], s.load)).rejects.toBeInstanceOf(SourceDown);
    await expect(t.short.getMany(['u1', 'u2'], s.load)).rejects.toBeInstanceOf(SourceDown);
  });

  it('serves nothing of an invalidated key', async () => {
    const s = scenario();
    const t = await processOf(s.keys);
    await t.short.getMany(['u1'], s.load);
    await expired(t, t.short.key('u1'));
    await t.short.invalidate(['u1']);
    s.state.down = new SourceDown('no MongoDB');
    await expect(t.short.getMany(['u1'], s.load)).rejects.toBeInstanceOf(SourceDown);
  });

  it('serves nothing of a key whose tag was invalidated since it was stored', async () => {
    const s = scenario();
    const t = await processOf(s.keys);
    const key = t.short.key('u1');
    const tag = s.keys.tag('User', 'u1', 'reviews');
    const read = () =>
      t.core.fetch<User>({
        name: 'User',
        keys: [key],
        tags: [[tag]],
        load: () => s.load(['u1']),
        versionOf: (user) => user.version,
        ttlMs: () => TTL_MS,
        grace: true,
      });
    expect(await read()).toEqual([{ id: 'u1', name: 'Ada', version: 1 }]);
    await expired(t, key);
    await t.core.invalidate([], [tag]);
    expect(await t.client.exists(key)).toBe(1); // still stored: only its stamp is void
    s.state.down = new SourceDown('no MongoDB');
    await expect(read()).rejects.toBeInstanceOf(SourceDown);
  });

  it('serves nothing of a key whose invalidation this process still owes', async () => {
    const s = scenario();
    const t = await processOf(s.keys);
    await t.short.getMany(['u1'], s.load);
    await expired(t, t.short.key('u1'));
    t.store.fail('invalidate');
    await t.short.invalidate(['u1']);
    expect(t.core.invalidationPending(t.short.key('u1'))).toBe(true);
    s.state.down = new SourceDown('no MongoDB');
    await expect(t.short.getMany(['u1'], s.load)).rejects.toBeInstanceOf(SourceDown);
  });

  it('serves nothing of a key held after a write of unknown outcome', async () => {
    const s = scenario();
    const t = await processOf(s.keys);
    await t.short.getMany(['u1'], s.load);
    await expired(t, t.short.key('u1'));
    await t.short.invalidate(['u1'], { holdMs: 60_000 });
    s.state.down = new SourceDown('no MongoDB');
    await expect(t.short.getMany(['u1'], s.load)).rejects.toBeInstanceOf(SourceDown);
  });

  it('keeps no grace for keyed values (sessions)', async () => {
    const s = scenario();
    const t = await processOf(s.keys);
    const sessions = t.core;
    const key = s.keys.entity('Session', 's1');
    const read = () =>
      sessions.fetch<User>({ name: 'Session', keys: [key], load: () => s.load(['u1']), versionOf: (u) => u.version, ttlMs: () => TTL_MS });
    await read();
    expect(await t.client.pttl(key)).toBeLessThanOrEqual(TTL_MS);
    await until(async () => (await t.client.exists(key)) === 0, { what: 'the session to expire', timeoutMs: 5_000 });
    s.state.down = new SourceDown('no MongoDB');
    await expect(read()).rejects.toBeInstanceOf(SourceDown);
  });
});

describe('early refresh', () => {
  it('serves a hit near its end at once and reloads it once in the background, across concurrent readers of two processes', async () => {
    const s = scenario();
    const [a, b] = [await processOf(s.keys, { graceMs: 0, earlyRefresh: 0.5 }), await processOf(s.keys, { graceMs: 0, earlyRefresh: 0.5 })];
    const key = a.short.key('u1');
    await a.short.getMany(['u1'], s.load);
    expect(s.source.loads).toBe(1);
    await until(async () => (await a.client.pttl(key)) < TTL_MS / 2, { what: 'u1 in its last half', timeoutMs: 5_000 });
    s.source.update('u1', { name: 'Ada L.' });
    const held = gate();
    s.source.onLoad = () => held.pass();
    const refreshes = collect('expiry', a.events);
    const reads = await Promise.all([
      ...Array.from({ length: 5 }, () => a.short.getMany(['u1'], s.load)),
      ...Array.from({ length: 5 }, () => b.short.getMany(['u1'], s.load)),
    ]);
    // Every reader was served the stored value at once, with the reload still held.
    expect(reads.map(([user]) => user?.name)).toEqual(Array.from({ length: 10 }, () => 'Ada'));
    await held.reached;
    held.open();
    await Promise.all([a.core.expiry.idle(), b.core.expiry.idle()]);
    expect(s.source.loads).toBe(2);
    expect(refreshes.filter((e) => e.kind === 'source-wait')).toEqual([]);
    refreshes.stop();
    expect(await a.client.pttl(key)).toBeGreaterThan(TTL_MS / 2);
    expect(await b.short.getMany(['u1'], s.load)).toEqual([{ id: 'u1', name: 'Ada L.', version: 2 }]);
    expect(s.source.loads).toBe(2);
  });

  it('refuses the background fill of a reload that an invalidation raced', async () => {
    const s = scenario();
    const t = await processOf(s.keys, { graceMs: 0, earlyRefresh: 0.5 });
    const key = t.short.key('u1');
    await t.short.getMany(['u1'], s.load);
    await until(async () => (await t.client.pttl(key)) < TTL_MS / 2, { what: 'u1 in its last half', timeoutMs: 5_000 });
    const held = gate();
    s.source.onLoad = () => held.pass();
    const fills = collect('fill', t.events);
    expect(await t.short.getMany(['u1'], s.load)).toEqual([{ id: 'u1', name: 'Ada', version: 1 }]);
    await held.reached; // the reload read version 1
    s.source.update('u1', { name: 'Ada L.' });
    await t.short.invalidate(['u1']);
    held.open();
    await t.core.expiry.idle();
    expect(fills.map((e) => e.outcome)).toEqual(['lost']);
    fills.stop();
    s.source.onLoad = undefined;
    expect(await t.short.getMany(['u1'], s.load)).toEqual([{ id: 'u1', name: 'Ada L.', version: 2 }]);
  });

  it('keeps a failed reload from surfacing: the value is served, the failure counted', async () => {
    const s = scenario();
    const t = await processOf(s.keys, { graceMs: 0, earlyRefresh: 0.5 });
    const key = t.short.key('u1');
    await t.short.getMany(['u1'], s.load);
    await until(async () => (await t.client.pttl(key)) < TTL_MS / 2, { what: 'u1 in its last half', timeoutMs: 5_000 });
    s.state.down = new SourceDown('no MongoDB');
    const events = collect('expiry', t.events);
    expect(await t.short.getMany(['u1'], s.load)).toEqual([{ id: 'u1', name: 'Ada', version: 1 }]);
    await t.core.expiry.idle();
    expect(events.map((e) => e.kind)).toEqual(['early-refresh', 'refresh-error']);
    events.stop();
  });
});

describe('grace of whole responses', () => {
  /** A response store on a fresh keyspace, with a grace whose "source down" the test sets. */
  async function responsesOf(): Promise<{
    responses: ResponseStore;
    grace: { down: boolean; served: number };
    t: TestCore;
    key(hash: string): string;
  }> {
    const s = scenario();
    const t = await processOf(s.keys);
    const responses = new ResponseStore({ store: t.redis, keys: s.keys, shards: 1, buckets: 1_024 });
    const grace = { down: false, served: 0 };
    responses.useGrace({
      policy: { graceMs: GRACE_MS },
      sourceRecentlyDown: () => grace.down,
      servedResponse: () => {
        grace.served += 1;
      },
    });
    return { responses, grace, t, key: (hash) => s.keys.response(0, hash) };
  }

  async function stored(responses: ResponseStore, hash: string, dependencies: string[]): Promise<void> {
    const found = await responses.lookup(hash);
    if (found.kind !== 'miss') throw new Error(`expected a miss for ${hash}`);
    expect(await responses.store(found.ticket, dependencies, '{"data":1}', TTL_MS)).toBe(true);
  }

  it('keeps a response past its TTL: a miss while the source answers, served (and said so) while it is down', async () => {
    const { responses, grace, t, key } = await responsesOf();
    await stored(responses, 'h1', ['{User:u1}']);
    expect((await responses.lookup('h1')).kind).toBe('hit');
    expect(await t.client.pttl(key('h1'))).toBeGreaterThan(GRACE_MS);
    await expired(t, key('h1'));
    expect((await responses.lookup('h1')).kind).toBe('miss');
    grace.down = true;
    expect(await responses.lookup('h1')).toEqual({ kind: 'hit', body: Buffer.from('{"data":1}'), l1: false, grace: true });
    expect(grace.served).toBe(1);
  });

  it('never serves an invalidated response, source down or not', async () => {
    const { responses, grace, t, key } = await responsesOf();
    await stored(responses, 'h2', ['{User:u1}']);
    await expired(t, key('h2'));
    await responses.invalidate(['{User:u1}']);
    grace.down = true;
    expect((await responses.lookup('h2')).kind).toBe('miss');
    expect(grace.served).toBe(0);
  });
});
